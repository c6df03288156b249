import { kindOf as kindOfValue } from '../model/kind.js';

/**
 * Values a template works on: plain data (strings, numbers, booleans, null, lists, maps) as YAML
 * and the inventory give it. Nothing here calls into the data: maps are read through their own
 * keys only, so `__proto__` or `constructor` are just missing keys, and a function is a value
 * berth refuses, never runs.
 */

/** A value that is not there, with why, so the error says which step found nothing. */
export class Undefined {
  constructor(readonly why: string) {}
}

export type Value = unknown;

export function isMap(v: Value): v is Record<string, Value> {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Undefined) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** A string, number or boolean: what can stand in text as it is. */
export function isScalar(v: Value): v is string | number | boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

/** A value's kind in the words of a YAML file. Never the value itself: it may be a secret. */
export function kindOf(v: Value): string {
  if (v instanceof Undefined) return 'undefined';
  const kind = kindOfValue(v);
  return kind === 'a value YAML cannot hold' ? 'a value templates cannot use' : kind;
}

/** `object.key` / `object[key]`; `objectText` is how the user wrote the object, for the reason. */
export function fieldOf(object: Value, key: string | number, objectText: string): Value {
  if (object instanceof Undefined) return object;
  let v: Value;
  if (Array.isArray(object)) {
    if (typeof key !== 'number' || !Number.isInteger(key)) {
      return new Undefined(`${objectText} is a list: index it with a number, as [0]`);
    }
    const i = key < 0 ? object.length + key : key;
    if (i < 0 || i >= object.length) {
      return new Undefined(`${objectText} has ${object.length} item(s), so there is no [${key}]`);
    }
    v = object[i];
  } else if (isMap(object)) {
    const k = String(key);
    if (!Object.hasOwn(object, k)) return new Undefined(`${objectText} has no key ${JSON.stringify(k)}`);
    v = object[k];
  } else {
    return new Undefined(`${objectText} is ${kindOf(object)}, which has no keys`);
  }
  return v === undefined ? new Undefined(`${objectText}.${key} is not set`) : v;
}

/** A scalar as text: booleans as YAML writes them. */
export function scalarText(v: string | number | boolean): string {
  return String(v);
}

/**
 * Python's truth, as Jinja's `if` uses it: false, 0, "", an empty list or map and null are
 * false, anything else true. An undefined value is never asked: it is the caller's error.
 */
export function isTrue(v: Value): boolean {
  if (v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isMap(v)) return Object.keys(v).length > 0;
  return true;
}

/**
 * Equal by value, through lists and maps; no conversion, so `1` is not `'1'` nor `true`. Only
 * plain data is compared, by its own keys.
 */
export function equal(a: Value, b: Value): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => equal(x, b[i]));
  }
  if (isMap(a)) {
    if (!isMap(b)) return false;
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && equal(a[k], b[k]));
  }
  return false;
}
