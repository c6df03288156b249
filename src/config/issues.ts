import type * as z from 'zod';
import type { ConfigIssue } from '../model/errors.js';
import { kindOf as kindOfValue } from '../model/kind.js';
import { issueAt, type YamlFile, type YamlPath } from './yaml-file.js';

type Path = (string | number)[];
type ZodIssue = z.core.$ZodIssue;

/** Issues in file order: by file, then line and column. */
export function byPosition(a: ConfigIssue, b: ConfigIssue): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  return (a.line ?? 0) - (b.line ?? 0) || (a.col ?? 0) - (b.col ?? 0);
}

/** A value's kind, with the details a config message needs (`an integer`, `a boolean (true)`). */
export function kindOf(v: unknown): string {
  return kindOfValue(v, { detail: true });
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'a map',
  record: 'a map',
  array: 'a list',
};

function expectedName(e: string): string {
  return EXPECTED[e] ?? e;
}

/** Edit distance counting a swap of neighbours as one edit, since "imgae" is one slip from "image". */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest of `known` to `word`, if it is close enough to be a typo. */
export function suggest(word: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const w = word.toLowerCase();
  for (const k of known) {
    // "prod" for "production": an abbreviation is as likely as a typo.
    if (w.length >= 3 && k.toLowerCase().startsWith(w)) return k;
    const d = distance(word.toLowerCase(), k.toLowerCase());
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(Math.min(word.length, best.length) / 3))
    ? best
    : undefined;
}

interface Def {
  type: string;
  shape?: Record<string, { _zod: { def: Def } }>;
  innerType?: { _zod: { def: Def } };
  in?: { _zod: { def: Def } };
  valueType?: { _zod: { def: Def } };
  element?: { _zod: { def: Def } };
  options?: { _zod: { def: Def } }[];
}

/** Keys an object schema accepts at `path`, gathered through wrappers and unions. */
function knownKeys(schema: z.ZodType, path: YamlPath): string[] {
  const out = new Set<string>();
  const walk = (def: Def, rest: YamlPath): void => {
    const inner = def.innerType ?? def.in;
    if (inner) return walk(inner._zod.def, rest);
    if (def.type === 'union') return def.options?.forEach((o) => walk(o._zod.def, rest));
    if (rest.length === 0) {
      if (def.type === 'object') Object.keys(def.shape ?? {}).forEach((k) => out.add(k));
      return;
    }
    const [seg, ...tail] = rest;
    if (def.type === 'object') {
      const next = def.shape?.[String(seg)];
      if (next) walk(next._zod.def, tail);
    } else if (def.type === 'record' && def.valueType) walk(def.valueType._zod.def, tail);
    else if (def.type === 'array' && def.element) walk(def.element._zod.def, tail);
  };
  walk((schema as unknown as { _zod: { def: Def } })._zod.def, path);
  return [...out];
}

function valueAt(data: unknown, path: YamlPath): unknown {
  let v = data;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

function describeValues(values: readonly unknown[]): string {
  return values.map((v) => JSON.stringify(v)).join(', ');
}

/**
 * Turn zod's issues for one file (or one part of it, under `prefix`) into located issues with
 * messages a person reads: `expected a string, got a map`, `unknown key "imgae" (did you mean
 * "image"?)`.
 */
export function fromZod(
  y: YamlFile,
  schema: z.ZodType,
  error: z.ZodError,
  prefix: YamlPath = [],
  data: unknown = valueAt(y.data, prefix),
): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const at = (rel: YamlPath, message: string, where: 'key' | 'value' = 'value', shown: YamlPath = rel) =>
    out.push(issueAt(y, [...prefix, ...rel], message, { at: where, pathShown: [...prefix, ...shown] }));

  const one = (iss: ZodIssue, base: Path): void => {
    const path: Path = [...base, ...(iss.path as Path)];
    const input = 'input' in iss ? iss.input : valueAt(data, path);
    switch (iss.code) {
      case 'unrecognized_keys': {
        const known = knownKeys(schema, path);
        for (const key of iss.keys) {
          const hint = suggest(key, known);
          at(
            [...path, key],
            `unknown key ${JSON.stringify(key)}${hint ? ` (did you mean "${hint}"?)` : ''}`,
            'key',
            path,
          );
        }
        return;
      }
      case 'invalid_type': {
        if (input === undefined) {
          const key = path[path.length - 1];
          at(path.slice(0, -1), `missing required key ${JSON.stringify(key)}`);
        } else {
          at(path, `expected ${expectedName(iss.expected)}, got ${kindOf(input)}`);
        }
        return;
      }
      case 'invalid_union': {
        // Report the branch whose type matched (its real complaint), else the types on offer.
        const typed = iss.errors.find(
          (errs) => !errs.some((e) => e.code === 'invalid_type' && e.path.length === 0),
        );
        if (typed) return typed.forEach((e) => one(e, path));
        const names = new Set(
          iss.errors.flatMap((errs) => errs.filter((e) => e.code === 'invalid_type').map((e) => e.expected)),
        );
        // A string field that also takes numbers and booleans is a string to the user.
        if (names.has('string')) ['number', 'boolean', 'int'].forEach((n) => names.delete(n));
        const list = [...names].map(expectedName);
        const want =
          list.length > 1 ? `${list.slice(0, -1).join(', ')} or ${list[list.length - 1]}` : list[0];
        at(path, `expected ${want ?? 'another value'}, got ${kindOf(input)}`);
        return;
      }
      case 'invalid_key': {
        const first = iss.issues[0];
        at(path, first?.message ?? `invalid key ${JSON.stringify(path[path.length - 1])}`, 'key');
        return;
      }
      case 'invalid_value':
        at(path, `expected one of ${describeValues(iss.values)}, got ${JSON.stringify(input)}`);
        return;
      case 'too_small':
        at(
          path,
          iss.origin === 'string' && iss.minimum === 1
            ? 'must not be empty'
            : iss.origin === 'array'
              ? `needs at least ${iss.minimum} item(s)`
              : `must be at least ${iss.minimum}, got ${JSON.stringify(input)}`,
        );
        return;
      case 'too_big':
        at(path, `must be at most ${iss.maximum}, got ${JSON.stringify(input)}`);
        return;
      default:
        at(path, iss.message);
    }
  };
  for (const iss of error.issues) one(iss, []);
  return out;
}
