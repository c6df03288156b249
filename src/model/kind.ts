/**
 * A value's kind in the words of a YAML file: the one rule every message about "what was
 * found" uses. Never the value itself (it may be a secret), except a boolean's own word when
 * `detail` asks for it, which a person who wrote `yes` for a string needs to see.
 */
export function kindOf(v: unknown, opts: { detail?: boolean } = {}): string {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null (an empty value)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'number') return opts.detail && Number.isInteger(v) ? 'an integer' : 'a number';
  if (typeof v === 'boolean') return opts.detail ? `a boolean (${v})` : 'a boolean';
  if (typeof v === 'object') {
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto === Object.prototype || proto === null) return 'a map';
  }
  return 'a value YAML cannot hold';
}
