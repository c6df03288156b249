import {
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  type Document,
  type Node,
  type Pair,
} from 'yaml';
import type { ConfigIssue } from '../model/errors.js';
import type { TemplateSource } from '../model/service.js';

/** A path into a YAML document: map keys and list indexes. */
export type YamlPath = ReadonlyArray<string | number>;

/** One parsed state-repo file, kept with its positions so any problem can be pointed at. */
export interface YamlFile {
  file: string;
  doc: Document.Parsed;
  lines: LineCounter;
  /** The document as plain data; undefined for an empty file. */
  data: unknown;
  /** The file's text, to find a scalar as written. */
  source: string;
}

const KIND_OF_ERROR: Record<string, (text: string) => string> = {
  DUPLICATE_KEY: (text) => `duplicate key ${JSON.stringify(text)}`,
  MULTIPLE_DOCS: () => 'more than one YAML document in this file; remove the extra "---"',
};

/**
 * Parse one file. Syntax errors come back as issues and `file` is undefined, so later checks
 * never run on a half-understood document.
 */
export function parseYamlFile(
  file: string,
  content: string,
  stringish: (path: YamlPath) => boolean,
): { yaml?: YamlFile; issues: ConfigIssue[] } {
  const lines = new LineCounter();
  const doc = parseDocument(content, { uniqueKeys: true, lineCounter: lines, prettyErrors: false });
  const issues: ConfigIssue[] = [];
  for (const [severity, list] of [
    ['error', doc.errors],
    ['warning', doc.warnings],
  ] as const) {
    for (const e of list) {
      const { line, col } = lines.linePos(e.pos[0]);
      // The error's span is one character; the message wants the whole key.
      const text = /^(?:"[^"]*"|'[^']*'|[^:\s,{}[\]]+)/.exec(content.slice(e.pos[0]))?.[0] ?? '';
      const message = KIND_OF_ERROR[e.code]?.(text) ?? `invalid YAML: ${lowerFirst(e.message)}`;
      issues.push({ file, line, col, message, severity });
    }
  }
  if (doc.errors.length) return { issues };
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    issues.push({
      file,
      line: 1,
      col: 1,
      message: `invalid YAML: ${(e as Error).message}`,
      severity: 'error',
    });
    return { issues };
  }
  keepScalarText(doc.contents, data, [], stringish);
  return { yaml: { file, doc, lines, data, source: content }, issues };
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

/**
 * Where string values are expected, put back what the user wrote for YAML numbers and
 * booleans: `VERSION: 1.10` must reach the container as "1.10", not "1.1", and `ZIP: 01234`
 * keep its zero.
 */
function keepScalarText(
  node: unknown,
  value: unknown,
  path: (string | number)[],
  stringish: (path: YamlPath) => boolean,
): void {
  if (value === null || typeof value !== 'object') return;
  const container = value as Record<string | number, unknown>;
  const visit = (key: string | number, child: unknown): void => {
    const p = [...path, key];
    if (isScalar(child) && (typeof child.value === 'number' || typeof child.value === 'boolean')) {
      if (stringish(p) && child.source !== undefined) container[key] = child.source;
    } else if (isMap(child) || isSeq(child)) {
      keepScalarText(child, container[key], p, stringish);
    }
  };
  if (isMap(node) && !Array.isArray(value)) {
    for (const pair of node.items) {
      if (!isScalar(pair.key)) continue;
      const key = String(pair.key.value);
      if (Object.hasOwn(container, key)) visit(key, pair.value);
    }
  } else if (isSeq(node) && Array.isArray(value)) {
    node.items.forEach((item, i) => visit(i, item));
  }
}

/** Where a path points: the value's node and, inside a map, its pair (for the key's position). */
function find(doc: Document.Parsed, path: YamlPath): { node?: Node; pair?: Pair; depth: number } {
  let node: unknown = doc.contents;
  let pair: Pair | undefined;
  let depth = 0;
  for (const seg of path) {
    let next: unknown;
    let nextPair: Pair | undefined;
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      nextPair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      next = nextPair?.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      next = node.items[seg];
    }
    if (!nextPair && next === undefined) break;
    node = next;
    pair = nextPair;
    depth++;
    // A key with no value (`env_vars:`) has a null value node; point at the key then.
    if (next === null || next === undefined) break;
  }
  return { node: (node ?? undefined) as Node | undefined, pair: depth > 0 ? pair : undefined, depth };
}

/**
 * 1-based line and column of what `path` names in the file. `at: 'key'` points at the map key
 * (unknown or invalid keys); otherwise at the value. A path that does not exist (a missing
 * key) points at the deepest part that does.
 */
export function positionOf(
  y: YamlFile,
  path: YamlPath,
  at: 'key' | 'value' = 'value',
): { line: number; col: number } {
  const { node, pair, depth } = find(y.doc, path);
  let offset: number | undefined;
  if (depth === path.length && at === 'key' && pair && isNodeWithRange(pair.key)) offset = pair.key.range[0];
  else if (isNodeWithRange(node)) offset = node.range[0];
  else if (pair && isNodeWithRange(pair.key)) offset = pair.key.range[0];
  if (offset === undefined) return { line: 1, col: 1 };
  return y.lines.linePos(offset);
}

function isNodeWithRange(n: unknown): n is { range: [number, number, number] } {
  return (
    n !== null &&
    typeof n === 'object' &&
    !isPair(n) &&
    Array.isArray((n as { range?: unknown }).range) &&
    typeof (n as { range: unknown[] }).range[0] === 'number'
  );
}

/** "env_vars.FOO", "volumes[0]": how people read a place in a file. */
export function dotted(path: YamlPath): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out === '' ? seg : `.${seg}`;
  return out;
}

/** An issue pointing at `path` inside `y`. */
export function issueAt(
  y: YamlFile,
  path: YamlPath,
  message: string,
  opts: { at?: 'key' | 'value'; severity?: 'error' | 'warning'; pathShown?: YamlPath } = {},
): ConfigIssue {
  const { line, col } = positionOf(y, path, opts.at);
  const shown = dotted(opts.pathShown ?? path);
  const issue: ConfigIssue = { file: y.file, line, col, message, severity: opts.severity ?? 'error' };
  if (shown) issue.path = shown;
  return issue;
}

/**
 * The scalar at `path` as written, with where it starts, so an offset into its value can be
 * mapped to a column. A value that is not a plain scalar node (an alias) gives an empty `raw`,
 * which maps every offset to the value's start.
 */
export function scalarSource(y: YamlFile, path: YamlPath): TemplateSource {
  const { node, depth } = find(y.doc, path);
  if (depth === path.length && isScalar(node) && isNodeWithRange(node)) {
    const [start, end] = node.range;
    return { file: y.file, path: dotted(path), ...y.lines.linePos(start), raw: y.source.slice(start, end) };
  }
  return { file: y.file, path: dotted(path), ...positionOf(y, path), raw: '' };
}
