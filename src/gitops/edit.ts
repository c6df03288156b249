/**
 * Editing a service file the way a careful person would: change the values asked for and not one
 * byte besides. Pure: text in, text out.
 *
 * The yaml package's Document API finds each value and its exact place in the text; the new value
 * is spliced in there, written in the style of the old one (plain, quoted, folded), and a new key
 * goes on a line of its own beside its neighbours. Re-serialising the whole document instead
 * would reflow flow maps, comment spacing and quotes all over the file, which is noise in every
 * diff a reviewer reads. Each edit is checked by parsing the result again: everything but the
 * edited keys must read exactly as before.
 */
import { isDeepStrictEqual } from 'node:util';
import { isMap, isScalar, parseDocument, Scalar, type Pair, type YAMLMap } from 'yaml';
import { keyedFormKey } from '../config/load.js';

/** The fields CI writes: what one build of a service is. */
export interface Release {
  image: string;
  gitCommit?: string;
  buildNumber?: string;
}

/** The release fields in the order a new key is placed after its predecessor. */
export const RELEASE_FIELDS = ['image', 'gitCommit', 'buildNumber'] as const;
export type ReleaseField = (typeof RELEASE_FIELDS)[number];

/** Top-level fields of a service body to set (a string) or remove (null). */
export type FieldEdits = Partial<Record<string, string | null>>;

/** The file cannot be edited as asked: not a service file, or a value that is not a plain scalar. */
export class EditError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EditError';
  }
}

interface Located {
  /** The map holding the service's fields: the root, or the keyed form's one value. */
  body: YAMLMap;
  /** Path of the body from the root: [] or [key]. */
  prefix: string[];
  /** The body as plain data. */
  data: Record<string, unknown>;
}

function locate(text: string): Located {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length) throw new EditError(`not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  const root = doc.contents;
  const data: unknown = doc.toJS({ maxAliasCount: 1000 });
  if (!isMap(root) || data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new EditError('not a map of service settings');
  }
  const key = keyedFormKey(data as Record<string, unknown>);
  if (key === undefined) return { body: root as YAMLMap, prefix: [], data: data as Record<string, unknown> };
  const pair = (root as YAMLMap).items.find((p) => isScalar(p.key) && String(p.key.value) === key);
  if (!pair || !isMap(pair.value)) throw new EditError(`the body under "${key}" is not a map`);
  return {
    body: pair.value as YAMLMap,
    prefix: [key],
    data: (data as Record<string, Record<string, unknown>>)[key]!,
  };
}

/** The release as the file writes it (before berth.yaml defaults); undefined parts are absent. */
export function readRelease(text: string): Partial<Release> {
  const { data } = locate(text);
  const out: Partial<Release> = {};
  for (const f of RELEASE_FIELDS) {
    const v = data[f];
    if (v !== undefined && v !== null) out[f] = String(v);
  }
  return out;
}

/**
 * Apply `edits` to the service file `text` (canonical or keyed form). Returns the new text,
 * identical to `text` outside the edited values and the lines of added or removed keys.
 * @throws EditError when the file is not a service file or a value to replace is not a scalar.
 */
export function editServiceFile(text: string, edits: FieldEdits): string {
  const before = locate(text).data;
  let out = text;
  for (const [key, value] of Object.entries(edits)) {
    if (value === undefined) continue;
    out = value === null ? removeKey(out, key) : setKey(out, key, value);
  }
  // Everything not asked for must read exactly as before.
  const after = locate(out);
  const expected: Record<string, unknown> = { ...before };
  for (const [key, value] of Object.entries(edits)) {
    if (value === null) delete expected[key];
    else if (value !== undefined) expected[key] = value;
  }
  const got: Record<string, unknown> = { ...after.data };
  for (const key of Object.keys(edits)) if (typeof got[key] === 'number') got[key] = String(got[key]);
  if (!isDeepStrictEqual(got, expected)) {
    throw new EditError('the edit would change more than the values asked for (this is a bug)');
  }
  return out;
}

function findPair(body: YAMLMap, key: string): Pair | undefined {
  return body.items.find((p) => isScalar(p.key) && String(p.key.value) === key) as Pair | undefined;
}

function eol(text: string): string {
  return text.includes('\r\n') ? '\r\n' : '\n';
}

/** Whether `value` written plain after `key: ` reads back as the same string. */
function readsBack(written: string, value: string, flow: boolean, asNumber: boolean): boolean {
  const src = flow ? `{k: ${written}}` : `k: ${written}\n`;
  const doc = parseDocument(src);
  if (doc.errors.length || doc.warnings.length) return false;
  const v = (doc.toJS() as { k?: unknown } | null)?.k;
  // `buildNumber: 123` stays unquoted when the file wrote it so (the loader keeps its text).
  return v === value || (asNumber && typeof v === 'number' && /^[1-9][0-9]*$/.test(value));
}

function singleQuoted(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** `value` written in the style of `old` (plain, quoted, block), or a fitting style for a new key. */
function render(value: string, old: Scalar | undefined, flow: boolean, oldRaw: string): string {
  switch (old?.type) {
    case Scalar.QUOTE_SINGLE:
      return singleQuoted(value);
    case Scalar.QUOTE_DOUBLE:
      // A JSON string is a valid YAML double-quoted scalar.
      return JSON.stringify(value);
    case Scalar.BLOCK_FOLDED:
    case Scalar.BLOCK_LITERAL: {
      // Keep the header (`>-`) and the content's indentation; the value is one line.
      const [header, ...lines] = oldRaw.split(/\r?\n/);
      const indent = /^[ ]*/.exec(lines.find((l) => l.trim()) ?? '')?.[0] || '  ';
      const nl = oldRaw.includes('\r\n') ? '\r\n' : '\n';
      return `${header}${nl}${indent}${value}${oldRaw.endsWith('\n') ? nl : ''}`;
    }
    default:
      return readsBack(value, value, flow, typeof old?.value === 'number') ? value : singleQuoted(value);
  }
}

function setKey(text: string, key: string, value: string): string {
  const { body } = locate(text);
  const pair = findPair(body, key);
  if (pair) {
    const node = pair.value;
    if (!isScalar(node) || !node.range) throw new EditError(`"${key}" is not a plain value; edit it by hand`);
    const [start, end] = node.range;
    const current = node.value === null || node.value === undefined ? undefined : String(node.value);
    if (current === value) return text;
    let written = render(value, node, Boolean(body.flow), text.slice(start, end));
    let out = text.slice(0, start) + written + text.slice(end);
    if (String(locate(out).data[key]) !== value) {
      // The old style cannot carry the new value (a plain scalar that would read as a number).
      written = singleQuoted(value);
      out = text.slice(0, start) + written + text.slice(end);
    }
    return out;
  }
  return insertKey(text, body, key, value);
}

/** Where a new key goes: after the release field before it, else after the body's last key. */
function anchorFor(body: YAMLMap, key: string): Pair {
  const order: readonly string[] = RELEASE_FIELDS;
  const i = order.indexOf(key);
  for (let j = i - 1; j >= 0; j--) {
    const p = findPair(body, order[j]!);
    if (p) return p;
  }
  const last = body.items[body.items.length - 1];
  if (!last) throw new EditError('the service has no settings to place a new key beside');
  return last as Pair;
}

function insertKey(text: string, body: YAMLMap, key: string, value: string): string {
  const anchor = anchorFor(body, key);
  const keyNode = anchor.key as Scalar;
  const valueNode = anchor.value as { range?: [number, number, number] } | null;
  const valueEnd = valueNode?.range?.[1] ?? keyNode.range![1];
  const written = render(value, undefined, Boolean(body.flow), '');
  if (body.flow) {
    return `${text.slice(0, valueEnd)}, ${key}: ${written}${text.slice(valueEnd)}`;
  }
  const nl = eol(text);
  // The new line goes after the anchor's whole line (its value and any comment on it).
  let at: number;
  let lead = '';
  if (text[valueEnd - 1] === '\n') at = valueEnd;
  else {
    const next = text.indexOf('\n', valueEnd);
    if (next < 0) {
      at = text.length;
      lead = nl;
    } else at = next + 1;
  }
  const keyStart = keyNode.range![0];
  const lineStart = text.lastIndexOf('\n', keyStart - 1) + 1;
  const before = text.slice(lineStart, keyStart);
  const indent = /^[ ]*$/.test(before) ? before : ' '.repeat(before.length);
  return `${text.slice(0, at)}${lead}${indent}${key}: ${written}${nl}${text.slice(at)}`;
}

function removeKey(text: string, key: string): string {
  const { body } = locate(text);
  const pair = findPair(body, key);
  if (!pair) return text;
  const keyStart = (pair.key as Scalar).range![0];
  const valueNode = pair.value as { range?: [number, number, number] } | null;
  const valueEnd = valueNode?.range?.[1] ?? (pair.key as Scalar).range![1];
  if (body.flow) {
    // `a: 1, key: v, b: 2` → drop the pair and one comma next to it.
    const after = /^\s*,[ \t]*/.exec(text.slice(valueEnd));
    if (after) return text.slice(0, keyStart) + text.slice(valueEnd + after[0].length);
    const before = /,\s*$/.exec(text.slice(0, keyStart));
    const from = before ? keyStart - before[0].length : keyStart;
    return text.slice(0, from) + text.slice(valueEnd);
  }
  const lineStart = text.lastIndexOf('\n', keyStart - 1) + 1;
  if (!/^[ ]*$/.test(text.slice(lineStart, keyStart))) {
    throw new EditError(`"${key}" does not start its own line; remove it by hand`);
  }
  let end: number;
  if (text[valueEnd - 1] === '\n') end = valueEnd;
  else {
    const next = text.indexOf('\n', valueEnd);
    end = next < 0 ? text.length : next + 1;
  }
  return text.slice(0, lineStart) + text.slice(end);
}
