import type { Expr, FilterArg, Part, Template, TemplateError } from './ast.js';

export type ParseResult = { ok: true; template: Template } | { ok: false; error: TemplateError };

/**
 * Parse text with `{{ expression | filter(args) }}` parts. Text without `{{` is one literal part.
 * `{%` and `{#` are errors rather than literal text: someone who writes `{% if %}` expects
 * Jinja's meaning, and silently keeping it would put the statement into a container's env.
 */
export function parseTemplate(text: string): ParseResult {
  try {
    return { ok: true, template: { source: text, parts: parseParts(text) } };
  } catch (e) {
    if (e instanceof ParseFailure) return { ok: false, error: { offset: e.offset, message: e.message } };
    throw e;
  }
}

/** True when the text holds anything the template language would read (cheap pre-check). */
export function looksLikeTemplate(text: string): boolean {
  return /\{[{%#]/.test(text);
}

class ParseFailure extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

function parseParts(text: string): Part[] {
  const parts: Part[] = [];
  let textStart = 0;
  const open = /\{([{%#])/g;
  for (;;) {
    open.lastIndex = textStart;
    const m = open.exec(text);
    if (!m) break;
    const at = m.index;
    if (m[1] === '%') {
      throw new ParseFailure(
        at,
        `statements ("{% ... %}") are not supported: a template holds only "{{ expression | filter }}"; ` +
          `to write "{%" literally, use {{ '{%' }}`,
      );
    }
    if (m[1] === '#') {
      throw new ParseFailure(
        at,
        `comments ("{# ... #}") are not supported; to write "{#" literally (as in a shell's \${#var}), use {{ '{#' }}`,
      );
    }
    if (at > textStart)
      parts.push({ kind: 'text', text: text.slice(textStart, at), start: textStart, end: at });
    const p = new ExprParser(text, at);
    const expr = p.parseBody();
    parts.push({ kind: 'expr', expr, start: at, end: p.pos });
    textStart = p.pos;
  }
  if (textStart < text.length || parts.length === 0) {
    parts.push({ kind: 'text', text: text.slice(textStart), start: textStart, end: text.length });
  }
  return parts;
}

type Token =
  | { t: 'name'; v: string; start: number; end: number }
  | { t: 'str'; v: string; start: number; end: number }
  | { t: 'num'; v: number; integer: boolean; start: number; end: number }
  | { t: 'op'; v: string; start: number; end: number }
  | { t: 'eof'; start: number; end: number };

const MAX_DEPTH = 32;
const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
const NUMBER = /-?\d+(\.\d+)?/y;
const SPACE = /[ \t\r\n]*/y;
const OPERATORS = new Set(['+', '-', '*', '/', '%', '~', '<', '>', '!', '&', '^', '?']);
// Jinja words that would start a test, condition or boolean expression.
const UNSUPPORTED_WORDS: Record<string, string> = {
  if: 'conditional expressions ("x if y else z") are not supported; use | default(...) for a fallback',
  else: 'conditional expressions ("x if y else z") are not supported; use | default(...) for a fallback',
  is: 'tests ("x is defined") are not supported; use | default(...) for a value that may be missing',
  and: 'boolean operators are not supported',
  or: 'boolean operators are not supported; use | default(...) for a fallback',
  not: 'boolean operators are not supported',
  in: '"in" is not supported',
};

function describe(t: Token): string {
  switch (t.t) {
    case 'eof':
      return 'the end of the text';
    case 'str':
      return 'a string';
    case 'num':
      return `the number ${t.v}`;
    default:
      return `"${t.v}"`;
  }
}

/** A recursive-descent parser for one `{{ ... }}`, reading tokens straight from the text. */
class ExprParser {
  pos: number;
  private readonly open: number;
  private depth = 0;

  constructor(
    private readonly text: string,
    open: number,
  ) {
    this.open = open;
    this.pos = open + 2;
  }

  parseBody(): Expr {
    const c = this.text[this.pos];
    if (c === '-' || c === '+') {
      throw new ParseFailure(this.pos, `whitespace control ("{{${c}") is not supported`);
    }
    const first = this.peek();
    if (first.t === 'op' && first.v === '}}') throw new ParseFailure(this.open, 'empty expression "{{ }}"');
    if (first.t === 'eof') throw this.unclosed();
    const expr = this.pipeline();
    const t = this.next();
    if (t.t === 'op' && t.v === '}}') return expr;
    if (t.t === 'eof') throw this.unclosed();
    if (t.t === 'name' && UNSUPPORTED_WORDS[t.v]) throw new ParseFailure(t.start, UNSUPPORTED_WORDS[t.v]!);
    throw new ParseFailure(t.start, `unexpected ${describe(t)}: expected "|" and a filter, or "}}"`);
  }

  private unclosed(): ParseFailure {
    return new ParseFailure(this.open, 'unclosed "{{": the expression has no "}}"');
  }

  private pipeline(): Expr {
    // Parentheses and arguments recurse; a bound keeps a hostile repo from overflowing the stack.
    if (++this.depth > MAX_DEPTH)
      throw new ParseFailure(this.pos, `expression nested more than ${MAX_DEPTH} deep`);
    const e = this.chain();
    this.depth--;
    return e;
  }

  private chain(): Expr {
    let e = this.postfix();
    while (this.peekOp('|')) {
      this.next();
      const name = this.next();
      if (name.t !== 'name') {
        throw new ParseFailure(name.start, `expected a filter name after "|", found ${describe(name)}`);
      }
      let args: FilterArg[] = [];
      let end = name.end;
      if (this.peekOp('(')) {
        this.next();
        args = this.args();
        end = this.pos;
      }
      e = { kind: 'filter', input: e, name: name.v, nameStart: name.start, args, start: e.start, end };
    }
    return e;
  }

  /** After the "(": arguments up to and including the ")". */
  private args(): FilterArg[] {
    const args: FilterArg[] = [];
    for (;;) {
      if (this.peekOp(')')) {
        this.next();
        return args;
      }
      const t = this.peek();
      const after = t.t === 'name' ? this.lex(t.end) : undefined;
      if (t.t === 'name' && after?.t === 'op' && after.v === '=') {
        this.pos = after.end;
        const value = this.pipeline();
        args.push({ name: t.v, value, start: t.start, end: value.end });
      } else {
        const value = this.pipeline();
        args.push({ value, start: value.start, end: value.end });
      }
      const sep = this.next();
      if (sep.t === 'op' && sep.v === ')') return args;
      if (!(sep.t === 'op' && sep.v === ',')) {
        if (sep.t === 'eof') throw this.unclosed();
        throw new ParseFailure(
          sep.start,
          `expected "," or ")" in the filter's arguments, found ${describe(sep)}`,
        );
      }
    }
  }

  private postfix(): Expr {
    let e = this.primary();
    for (;;) {
      if (this.peekOp('.')) {
        this.next();
        const k = this.next();
        if (k.t === 'name') {
          e = { kind: 'field', object: e, key: k.v, keyStart: k.start, start: e.start, end: k.end };
        } else if (k.t === 'num' && k.integer && k.v >= 0) {
          e = { kind: 'field', object: e, key: k.v, keyStart: k.start, start: e.start, end: k.end };
        } else {
          throw new ParseFailure(k.start, `expected a field name after ".", found ${describe(k)}`);
        }
      } else if (this.peekOp('[')) {
        const open = this.next();
        const k = this.next();
        if (!(k.t === 'str' || (k.t === 'num' && k.integer))) {
          throw new ParseFailure(
            k.t === 'eof' ? open.start : k.start,
            `inside "[ ]" write a quoted key or an integer index, as ['key'] or [0]; found ${describe(k)}`,
          );
        }
        const close = this.next();
        if (!(close.t === 'op' && close.v === ']')) {
          throw new ParseFailure(close.start, `expected "]", found ${describe(close)}`);
        }
        e = { kind: 'field', object: e, key: k.v, keyStart: k.start, start: e.start, end: close.end };
      } else if (this.peekOp('(')) {
        throw new ParseFailure(
          this.peek().start,
          'calls are not supported: only filters take arguments, as "value | filter(...)"',
        );
      } else {
        return e;
      }
    }
  }

  private primary(): Expr {
    const t = this.next();
    switch (t.t) {
      case 'name':
        return { kind: 'name', name: t.v, start: t.start, end: t.end };
      case 'str':
      case 'num':
        return { kind: 'literal', value: t.v, start: t.start, end: t.end };
      case 'eof':
        throw this.unclosed();
      case 'op':
        if (t.v === '(') {
          const inner = this.pipeline();
          const close = this.next();
          if (!(close.t === 'op' && close.v === ')')) {
            throw new ParseFailure(close.start, `expected ")", found ${describe(close)}`);
          }
          return inner;
        }
    }
    throw new ParseFailure(t.start, `expected a name, a quoted string or a number, found ${describe(t)}`);
  }

  private peekOp(v: string): boolean {
    const t = this.peek();
    return t.t === 'op' && t.v === v;
  }

  private peek(): Token {
    return this.lex(this.pos);
  }

  private next(): Token {
    const t = this.lex(this.pos);
    this.pos = t.end;
    return t;
  }

  /** The token at `from` (after whitespace). Pure: peeking is lexing without moving. */
  private lex(from: number): Token {
    const s = this.text;
    SPACE.lastIndex = from;
    SPACE.exec(s);
    const at = SPACE.lastIndex;
    if (at >= s.length) return { t: 'eof', start: at, end: at };
    const c = s[at]!;
    if (s.startsWith('}}', at)) return { t: 'op', v: '}}', start: at, end: at + 2 };
    if ((c === '-' || c === '+') && s.startsWith('}}', at + 1)) {
      throw new ParseFailure(at, `whitespace control ("${c}}}") is not supported`);
    }
    NAME.lastIndex = at;
    const name = NAME.exec(s);
    if (name) return { t: 'name', v: name[0], start: at, end: at + name[0].length };
    NUMBER.lastIndex = at;
    const num = NUMBER.exec(s);
    if (num) {
      return { t: 'num', v: Number(num[0]), integer: !num[1], start: at, end: at + num[0].length };
    }
    if (c === "'" || c === '"') return this.string(at, c);
    if ('.[](),|='.includes(c)) return { t: 'op', v: c, start: at, end: at + 1 };
    if (OPERATORS.has(c)) {
      throw new ParseFailure(
        at,
        `operator "${c}" is not supported: a template looks values up and filters them, it does not compute`,
      );
    }
    throw new ParseFailure(at, `unexpected character ${JSON.stringify(c)}`);
  }

  /** A quoted string. Only the quote and the backslash can be escaped: anything else is a typo. */
  private string(start: number, quote: string): Token {
    const s = this.text;
    let v = '';
    for (let i = start + 1; i < s.length; i++) {
      const c = s[i]!;
      if (c === quote) return { t: 'str', v, start, end: i + 1 };
      if (c === '\\') {
        const n = s[i + 1];
        if (n === '\\' || n === "'" || n === '"') {
          v += n;
          i++;
          continue;
        }
        throw new ParseFailure(
          i,
          `unsupported escape "\\${n ?? ''}" in a string: only \\\\, \\' and \\" are`,
        );
      }
      v += c;
    }
    throw new ParseFailure(start, `unterminated string: add the closing ${quote}`);
  }
}
