/**
 * The parsed form of a template. Offsets are 0-based indexes into the template's own text (the
 * string value as YAML parsed it, or a whole file), `end` exclusive, so a caller can map them to
 * file:line:col (`positionOf` for a file's own text).
 */

/** A problem in a template, at an offset into its text. */
export interface TemplateError {
  offset: number;
  message: string;
}

/** A parsed template: literal text, `{{ }}` expressions and `{% %}` blocks, in order. */
export interface Template {
  /** The text that was parsed. */
  source: string;
  parts: Part[];
}

export type Part = TextPart | ExprPart | IfPart | ForPart;

/**
 * Literal text between tags, after whitespace control: always `source.slice(start, end)`, so an
 * offset inside `text` is `start + i`. Text that whitespace control removes entirely is no part.
 */
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

/** One `{% if %}` or `{% elif %}` and the parts up to the next branch. */
export interface IfBranch {
  test: Expr;
  body: Part[];
  /** The tag: at its `{%`, just after its `%}`. */
  start: number;
  end: number;
}

/** `{% if %}...{% elif %}...{% else %}...{% endif %}`, from the `{%` of if to after endif's `%}`. */
export interface IfPart {
  kind: 'if';
  branches: IfBranch[];
  /** The parts after `{% else %}`, when there is one. */
  else?: Part[];
  start: number;
  end: number;
}

/** `{% for target in iterable %}...{% else %}...{% endfor %}`. */
export interface ForPart {
  kind: 'for';
  /** The loop variable's name, and where it is written. */
  target: string;
  targetStart: number;
  iterable: Expr;
  body: Part[];
  /** Rendered when the list is empty, as in Jinja. */
  else?: Part[];
  start: number;
  end: number;
}

interface Span {
  start: number;
  end: number;
}

export type Expr =
  NameExpr | LiteralExpr | ListExpr | FieldExpr | FilterExpr | CompareExpr | NotExpr | LogicExpr;

/** A root name (host, groups, service, env, secrets), a loop variable, or `loop`. */
export interface NameExpr extends Span {
  kind: 'name';
  name: string;
}

/** A quoted string, a number, or `true` / `false`. */
export interface LiteralExpr extends Span {
  kind: 'literal';
  value: string | number | boolean;
}

/** `[a, 'b', 3]`: a list written in the template. */
export interface ListExpr extends Span {
  kind: 'list';
  items: Expr[];
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

export type CompareOp = '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'not in';

/** `left OP right`: one comparison or membership test (they do not chain). */
export interface CompareExpr extends Span {
  kind: 'compare';
  op: CompareOp;
  opStart: number;
  left: Expr;
  right: Expr;
}

/** `not operand`. */
export interface NotExpr extends Span {
  kind: 'not';
  operand: Expr;
}

/** `left and right`, `left or right`: Python's meaning, the deciding operand is the value. */
export interface LogicExpr extends Span {
  kind: 'logic';
  op: 'and' | 'or';
  left: Expr;
  right: Expr;
}

/** The template's own text of an expression, as the user wrote it: what error messages quote. */
export function exprText(source: string, e: Expr): string {
  return source.slice(e.start, e.end);
}

/** The expressions directly inside `e`, left to right. */
export function childExprs(e: Expr): Expr[] {
  switch (e.kind) {
    case 'name':
    case 'literal':
      return [];
    case 'list':
      return e.items;
    case 'field':
      return [e.object];
    case 'filter':
      return [e.input, ...e.args.map((a) => a.value)];
    case 'compare':
    case 'logic':
      return [e.left, e.right];
    case 'not':
      return [e.operand];
  }
}

/**
 * Every top-level expression in the parts, blocks included, in the order of the text: each
 * `{{ }}`, each `if`/`elif` condition, each loop's list. Whatever names a secret is in one of them.
 */
export function templateExprs(parts: readonly Part[]): Expr[] {
  const out: Expr[] = [];
  const visit = (ps: readonly Part[]): void => {
    for (const p of ps) {
      switch (p.kind) {
        case 'text':
          break;
        case 'expr':
          out.push(p.expr);
          break;
        case 'if':
          for (const b of p.branches) {
            out.push(b.test);
            visit(b.body);
          }
          if (p.else) visit(p.else);
          break;
        case 'for':
          out.push(p.iterable);
          visit(p.body);
          if (p.else) visit(p.else);
          break;
      }
    }
  };
  visit(parts);
  return out;
}

/** Every `secrets.NAME` in an expression, innermost first: [the field expression, the name]. */
export function secretFields(e: Expr): Array<{ expr: FieldExpr; name: string | number }> {
  const out: Array<{ expr: FieldExpr; name: string | number }> = [];
  const visit = (x: Expr): void => {
    if (x.kind === 'field' && x.object.kind === 'name' && x.object.name === 'secrets') {
      out.push({ expr: x, name: x.key });
      return;
    }
    childExprs(x).forEach(visit);
  };
  visit(e);
  return out;
}

/**
 * 1-based line and column of `offset` in `source`, for a template that is a whole file. Lines
 * end at "\n" (a "\r" before it belongs to the line); columns count UTF-16 units, as the YAML
 * positions of the rest of berth do.
 */
export function positionOf(source: string, offset: number): { line: number; col: number } {
  const at = Math.max(0, Math.min(offset, source.length));
  let line = 1;
  let lineStart = 0;
  for (let i = source.indexOf('\n'); i >= 0 && i < at; i = source.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, col: at - lineStart + 1 };
}
