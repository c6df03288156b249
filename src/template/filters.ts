import type { Expr, FilterArg } from './ast.js';
import { fieldOf, isMap, isScalar, kindOf, scalarText, Undefined, type Value } from './value.js';

/** What a filter takes as input; checked before it runs, and statically where the shape is known. */
export type Accepts = 'any' | 'text' | 'list' | 'sequence' | 'sized';

/** What a filter gives, for the static check: its kind, or the input's element or the input itself. */
export type Output = 'text' | 'number' | 'list' | 'element' | 'any';

/** One parameter of a filter. */
export interface Param {
  name: string;
  required?: boolean;
  /** 'only': can be given only as `name=value`; 'never': only by position. */
  keyword?: 'only' | 'never';
  /** Collects the positional arguments left over (map's arguments for the filter it applies). */
  rest?: boolean;
}

/** A filter's failure, phrased for the user. Never quotes a value: it may come from a secret. */
export class FilterFailure {
  constructor(readonly message: string) {}
}

/** How a filter reads its arguments: evaluated only when asked, so an unused fallback costs nothing. */
export interface FilterCall {
  /** The argument's value, or undefined when it was not given. */
  arg(name: string): Value | undefined;
  /** Positional arguments beyond the named ones (for a `rest` parameter). */
  rest(): Value[];
}

/** One filter: its signature, the input it takes, and what it does. */
export interface FilterDef {
  name: string;
  /** As a user writes it: `join(separator='')`. */
  usage: string;
  summary: string;
  params: Param[];
  accepts: Accepts;
  output: Output;
  /** True for `default`: a missing or null input is its business, not an error. */
  takesMissing?: boolean;
  /** Rules across parameters, checked when binding: returns a message, or undefined when fine. */
  validate?(given: ReadonlySet<string>, restCount: number): string | undefined;
  /** `what` is how the user wrote the input (`groups.proxy_server`), for messages. */
  apply(input: Value, call: FilterCall, what: string): Value | FilterFailure;
}

const ACCEPTS_WORDS: Record<Accepts, string> = {
  any: 'any value',
  text: 'a string, number or boolean',
  list: 'a list',
  sequence: 'a list or a string',
  sized: 'a list, a map or a string',
};

function accepted(a: Accepts, v: Value): boolean {
  switch (a) {
    case 'any':
      return true;
    case 'text':
      return isScalar(v);
    case 'list':
      return Array.isArray(v);
    case 'sequence':
      return Array.isArray(v) || typeof v === 'string';
    case 'sized':
      return Array.isArray(v) || typeof v === 'string' || isMap(v);
  }
}

/** Words for what a filter takes, for static and runtime messages alike. */
export function acceptsWords(a: Accepts): string {
  return ACCEPTS_WORDS[a];
}

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
const utf8 = new TextEncoder();

/**
 * Percent-encode everything but RFC 3986's unreserved characters, so the result is safe in any
 * part of a URL: userinfo, path segment, query or fragment. Jinja's own urlencode leaves "/"
 * alone, which broke a password in a connection string in the setup berth replaces.
 */
export function urlencode(s: string): string {
  let out = '';
  for (const byte of utf8.encode(s)) {
    const c = String.fromCharCode(byte);
    out += byte < 0x80 && UNRESERVED.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function textOf(v: string | number | boolean): string {
  return scalarText(v);
}

function missingMessage(what: string, v: Undefined | null): string {
  return v === null
    ? `${what} is null (an empty value); add | default(...) if it may be empty`
    : `${what} is not defined (${v.why}); add | default(...) if it may be missing`;
}

const DEFS: FilterDef[] = [
  {
    name: 'urlencode',
    usage: 'urlencode',
    summary:
      'percent-encodes every character but A-Z a-z 0-9 - . _ ~ (UTF-8 for non-ASCII), for any part of a URL',
    params: [],
    accepts: 'text',
    output: 'text',
    apply: (v) => urlencode(textOf(v as string)),
  },
  {
    name: 'default',
    usage: 'default(value)',
    summary: 'the value itself, or `value` when it is missing (undefined) or null',
    params: [{ name: 'value', required: true }],
    accepts: 'any',
    output: 'any',
    takesMissing: true,
    apply: (v, call) => (v instanceof Undefined || v === null ? call.arg('value') : v),
  },
  {
    name: 'join',
    usage: "join(separator='')",
    summary: 'a list of strings or numbers as one string',
    params: [{ name: 'separator' }],
    accepts: 'list',
    output: 'text',
    apply: (v, call, what) => {
      const sep = call.arg('separator') ?? '';
      if (!isScalar(sep)) return new FilterFailure(`join's separator must be a string, not ${kindOf(sep)}`);
      const out: string[] = [];
      for (const [i, item] of (v as Value[]).entries()) {
        if (isScalar(item)) {
          out.push(textOf(item));
          continue;
        }
        const which = `item ${i + 1} of ${what}`;
        if (item instanceof Undefined || item === null) return new FilterFailure(missingMessage(which, item));
        const hint = isMap(item) ? "; pick one of its keys first, e.g. | map(attribute='address')" : '';
        return new FilterFailure(
          `join needs a list of strings or numbers, but ${which} is ${kindOf(item)}${hint}`,
        );
      }
      return out.join(textOf(sep));
    },
  },
  {
    name: 'map',
    usage: "map(attribute='key', default=...) or map('key') or map('filter', args...)",
    summary:
      "each item's key (a dotted path such as 'vars.lb_server' works too), or each item through a filter when the name is a filter's",
    params: [
      { name: 'name', keyword: 'never' },
      { name: 'args', rest: true },
      { name: 'attribute', keyword: 'only' },
      { name: 'default', keyword: 'only' },
    ],
    accepts: 'list',
    output: 'list',
    validate: (given, restCount) => {
      if (given.has('name') && given.has('attribute')) return "map takes a name or attribute='...', not both";
      if (!given.has('name') && !given.has('attribute')) {
        return "map needs the key to take from each item, as map(attribute='address') or map('address')";
      }
      if (restCount > 0 && given.has('attribute')) return "map(attribute='...') takes no further arguments";
      return undefined;
    },
    apply: (v, call, what) => {
      const items = v as Value[];
      const name = call.arg('name');
      const fallback = call.arg('default');
      let path: Value = call.arg('attribute');
      if (name !== undefined) {
        if (typeof name !== 'string')
          return new FilterFailure(`map's name must be a string, not ${kindOf(name)}`);
        const def = FILTERS.get(name);
        if (def) {
          const out: Value[] = [];
          for (const [i, item] of items.entries()) {
            const r = applyWith(def, item, call.rest(), `item ${i + 1} of ${what}`);
            if (r instanceof FilterFailure) return r;
            out.push(r);
          }
          return out;
        }
        if (call.rest().length > 0) {
          return new FilterFailure(
            `map('${name}', ...): there is no filter "${name}" to pass the arguments to`,
          );
        }
        path = name;
      }
      if (!isScalar(path)) return new FilterFailure(`map's attribute must be a string, not ${kindOf(path)}`);
      const segments = textOf(path)
        .split('.')
        .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
      return items.map((item, i) => {
        let got: Value = item;
        let at = `item ${i + 1} of ${what}`;
        for (const seg of segments) {
          got = fieldOf(got, seg, at);
          at += `.${seg}`;
        }
        return (got instanceof Undefined || got === null) && fallback !== undefined ? fallback : got;
      });
    },
  },
  {
    name: 'lower',
    usage: 'lower',
    summary: 'lower case',
    params: [],
    accepts: 'text',
    output: 'text',
    apply: (v) => textOf(v as string).toLowerCase(),
  },
  {
    name: 'upper',
    usage: 'upper',
    summary: 'upper case',
    params: [],
    accepts: 'text',
    output: 'text',
    apply: (v) => textOf(v as string).toUpperCase(),
  },
  {
    name: 'trim',
    usage: 'trim',
    summary: 'without leading and trailing whitespace',
    params: [],
    accepts: 'text',
    output: 'text',
    apply: (v) => textOf(v as string).trim(),
  },
  {
    name: 'b64encode',
    usage: 'b64encode',
    summary: 'standard base64 of the UTF-8 text (with padding)',
    params: [],
    accepts: 'text',
    output: 'text',
    apply: (v) => Buffer.from(textOf(v as string), 'utf8').toString('base64'),
  },
  {
    name: 'string',
    usage: 'string',
    summary: 'a number or boolean as text (true/false as YAML writes them); a list or map is an error',
    params: [],
    accepts: 'text',
    output: 'text',
    apply: (v) => textOf(v as string),
  },
  {
    name: 'first',
    usage: 'first',
    summary: "a list's first item, a string's first character",
    params: [],
    accepts: 'sequence',
    output: 'element',
    apply: (v, _call, what) => end(v as Value[] | string, 0, what),
  },
  {
    name: 'last',
    usage: 'last',
    summary: "a list's last item, a string's last character",
    params: [],
    accepts: 'sequence',
    output: 'element',
    apply: (v, _call, what) => end(v as Value[] | string, -1, what),
  },
  {
    name: 'length',
    usage: 'length',
    summary: 'how many items in a list, keys in a map, or characters in a string',
    params: [],
    accepts: 'sized',
    output: 'number',
    apply: (v) =>
      typeof v === 'string' ? [...v].length : Array.isArray(v) ? v.length : Object.keys(v as object).length,
  },
];

function end(v: Value[] | string, which: 0 | -1, what: string): Value {
  const items = typeof v === 'string' ? [...v] : v;
  if (items.length === 0) return new Undefined(`${what} is empty`);
  return items[which === 0 ? 0 : items.length - 1];
}

/** The filters, by name. One registry, so the parser, checker, renderer and README agree. */
export const FILTERS: ReadonlyMap<string, FilterDef> = new Map(DEFS.map((d) => [d.name, d]));

/**
 * Run a filter on an input after the checks every filter shares: a missing input is an error
 * (except for `default`), and so is an input of the wrong kind.
 */
export function runFilter(
  def: FilterDef,
  input: Value,
  call: FilterCall,
  what: string,
): Value | FilterFailure {
  if (!def.takesMissing && (input instanceof Undefined || input === null)) {
    return new FilterFailure(missingMessage(what, input));
  }
  if (!accepted(def.accepts, input)) {
    const hint = Array.isArray(input) && def.accepts === 'text' ? '; join it first, e.g. | join(",")' : '';
    return new FilterFailure(
      `${def.name} takes ${ACCEPTS_WORDS[def.accepts]}, but ${what} is ${kindOf(input)}${hint}`,
    );
  }
  return def.apply(input, call, what);
}

/** Run a filter with positional argument values already in hand (map's `map('lower')`). */
function applyWith(def: FilterDef, input: Value, values: Value[], what: string): Value | FilterFailure {
  const positional = def.params.filter((p) => p.keyword !== 'only' && !p.rest);
  const rest = def.params.some((p) => p.rest);
  if (values.length > positional.length && !rest) return new FilterFailure(arityMessage(def, values.length));
  const missing = positional.slice(values.length).find((p) => p.required);
  if (missing) return new FilterFailure(`${def.name} needs its argument "${missing.name}": ${def.usage}`);
  const given = new Set(positional.slice(0, values.length).map((p) => p.name));
  const problem = def.validate?.(given, Math.max(0, values.length - positional.length));
  if (problem) return new FilterFailure(problem);
  return runFilter(
    def,
    input,
    {
      arg: (name) => {
        const i = positional.findIndex((p) => p.name === name);
        return i >= 0 && i < values.length ? values[i] : undefined;
      },
      rest: () => values.slice(positional.length),
    },
    what,
  );
}

function arityMessage(def: FilterDef, count: number): string {
  const n = def.params.filter((p) => p.keyword !== 'only' && !p.rest).length;
  const takes = n === 0 ? 'takes no arguments' : `takes at most ${n} argument${n === 1 ? '' : 's'}`;
  return `${def.name} ${takes}, got ${count}: ${def.usage}`;
}

/** A filter call's arguments matched to its parameters; the expressions are not evaluated yet. */
export interface BoundArgs {
  named: Map<string, Expr>;
  rest: Expr[];
}

export type BindResult = { ok: true; bound: BoundArgs } | { ok: false; offset: number; message: string };

/** Match written arguments to a filter's parameters, as Python does: positional, then keyword. */
export function bindArgs(def: FilterDef, args: FilterArg[], nameStart: number): BindResult {
  const positional = def.params.filter((p) => p.keyword !== 'only' && !p.rest);
  const hasRest = def.params.some((p) => p.rest);
  const named = new Map<string, Expr>();
  const rest: Expr[] = [];
  let positionalCount = 0;
  let sawKeyword = false;
  for (const a of args) {
    if (a.name === undefined) {
      if (sawKeyword) {
        return {
          ok: false,
          offset: a.start,
          message: 'a positional argument cannot follow a keyword argument',
        };
      }
      const p = positional[positionalCount];
      positionalCount++;
      if (p) named.set(p.name, a.value);
      else if (hasRest) rest.push(a.value);
      else {
        return { ok: false, offset: a.start, message: arityMessage(def, args.filter((x) => !x.name).length) };
      }
      continue;
    }
    sawKeyword = true;
    const p = def.params.find((q) => q.name === a.name && q.keyword !== 'never' && !q.rest);
    if (!p) {
      const known = def.params.filter((q) => q.keyword !== 'never' && !q.rest).map((q) => q.name);
      const list = known.length ? `; it takes ${known.join(', ')}` : '';
      return { ok: false, offset: a.start, message: `${def.name} has no argument "${a.name}"${list}` };
    }
    if (named.has(p.name)) {
      return { ok: false, offset: a.start, message: `argument "${p.name}" of ${def.name} is given twice` };
    }
    named.set(p.name, a.value);
  }
  const missing = def.params.find((p) => p.required && !named.has(p.name));
  if (missing) {
    return {
      ok: false,
      offset: nameStart,
      message: `${def.name} needs its argument "${missing.name}": ${def.usage}`,
    };
  }
  const problem = def.validate?.(new Set(named.keys()), rest.length);
  if (problem) return { ok: false, offset: nameStart, message: problem };
  return { ok: true, bound: { named, rest } };
}
