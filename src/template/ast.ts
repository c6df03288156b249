/**
 * The parsed form of a template. Offsets are 0-based indexes into the template's own text (the
 * string value as YAML parsed it), `end` exclusive, so the config layer can map them to
 * file:line:col.
 */

/** A problem in a template, at an offset into its text. */
export interface TemplateError {
  offset: number;
  message: string;
}

/** A parsed template: literal text and `{{ }}` expressions, in order. */
export interface Template {
  /** The text that was parsed. */
  source: string;
  parts: Part[];
}

export type Part = TextPart | ExprPart;

/** Literal text between expressions. */
export interface TextPart {
  kind: 'text';
  text: string;
  start: number;
  end: number;
}

/** One `{{ ... }}`; `start` is at the `{{`, `end` just after the `}}`. */
export interface ExprPart {
  kind: 'expr';
  expr: Expr;
  start: number;
  end: number;
}

interface Span {
  start: number;
  end: number;
}

export type Expr = NameExpr | LiteralExpr | FieldExpr | FilterExpr;

/** A root name: host, groups, service, env, secrets. */
export interface NameExpr extends Span {
  kind: 'name';
  name: string;
}

/** A quoted string or a number. */
export interface LiteralExpr extends Span {
  kind: 'literal';
  value: string | number;
}

/** `object.key`, `object['key']` or `object[0]`. Keys are always literals, so lookups are static. */
export interface FieldExpr extends Span {
  kind: 'field';
  object: Expr;
  key: string | number;
  /** Where the key is written, for "unknown key" errors. */
  keyStart: number;
}

/** `input | name` or `input | name(args)`. */
export interface FilterExpr extends Span {
  kind: 'filter';
  input: Expr;
  name: string;
  nameStart: number;
  args: FilterArg[];
}

/** One argument of a filter: positional (`join(',')`) or keyword (`map(attribute='address')`). */
export interface FilterArg extends Span {
  name?: string;
  value: Expr;
}

/** The template's own text of an expression, as the user wrote it: what error messages quote. */
export function exprText(source: string, e: Expr): string {
  return source.slice(e.start, e.end);
}
