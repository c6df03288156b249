import type { CompareOp, Expr, FilterArg, ForPart, IfPart, Part, Template, TemplateError } from './ast.js';
import { suggest } from '../config/issues.js';

export type ParseResult = { ok: true; template: Template } | { ok: false; error: TemplateError };

/**
 * Parse a template: literal text, `{{ expression | filter(args) }}` and the `{% %}` tags `if`,
 * `elif`, `else`, `endif`, `for`, `endfor`, `raw`, `endraw`. The same text may be one config
 * value or a whole file; offsets in the result and in errors index into `text`.
 *
 * Whitespace control is Ansible's template module's, which is Jinja's with `trim_blocks` on: the
 * first newline after a `{% %}` tag is dropped (`+%}` keeps it), `{%-`/`{{-` strip all
 * whitespace before the tag, `-%}`/`-}}` all whitespace after it; nothing strips the indentation
 * before a tag on its own (`lstrip_blocks` off), and the text's last newline stays.
 *
 * `{#` is an error rather than literal text: someone who writes a Jinja comment expects it to
 * vanish, and silently keeping it would put it into a container's env.
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

/** The tags berth knows, in the order the README lists them. */
export const TAGS = ['if', 'elif', 'else', 'endif', 'for', 'endfor', 'raw', 'endraw'] as const;
// Jinja tags a template from Ansible may hold; berth templates only look values up.
const JINJA_ONLY_TAGS = new Set([
  'set',
  'endset',
  'macro',
  'endmacro',
  'call',
  'endcall',
  'filter',
  'endfilter',
  'include',
  'import',
  'from',
  'extends',
  'block',
  'endblock',
  'with',
  'endwith',
  'autoescape',
  'endautoescape',
  'do',
  'break',
  'continue',
  'trans',
  'endtrans',
]);
/** Blocks nested deeper than this are an error: rendering recurses once per level. */
const MAX_BLOCK_DEPTH = 32;

/** How the text after a tag starts: as written, without its first newline, or without any whitespace. */
type Lead = 'keep' | 'newline' | 'all';

interface Frame {
  node: IfPart | ForPart;
  /** The opening tag as written, for messages about the block. */
  tag: string;
  inElse: boolean;
  /** The parts the block itself belongs to. */
  outer: Part[];
}

/** A tag as messages quote it: its text on one line, cut short. */
function tagWords(text: string, start: number, end: number): string {
  const t = text.slice(start, end).replace(/\s+/g, ' ');
  return t.length > 60 ? `${t.slice(0, 56)} ...` : t;
}

function parseParts(text: string): Part[] {
  if (text.startsWith('#jinja2:')) {
    // Ansible reads this line as settings; kept as text it would end up in the file unnoticed.
    throw new ParseFailure(
      0,
      'the "#jinja2:" header of Ansible templates is not supported: berth always drops the newline after a ' +
        '{% %} tag and keeps indentation; remove the line and use {%- and -%} where the whitespace matters',
    );
  }
  const root: Part[] = [];
  const stack: Frame[] = [];
  let body = root;
  let pos = 0;
  let lead: Lead = 'keep';
  const open = /\{([{%#])/g;

  /** The text from `pos` to `at`, less what the tags on either side strip. */
  const pushText = (at: number, stripBefore: boolean): void => {
    let a = pos;
    let b = at;
    if (lead === 'all') while (a < b && /\s/.test(text[a]!)) a++;
    else if (lead === 'newline') {
      if (text.startsWith('\r\n', a) && a + 2 <= b) a += 2;
      else if (text[a] === '\n' && a < b) a++;
    }
    if (stripBefore) while (b > a && /\s/.test(text[b - 1]!)) b--;
    if (a < b) body.push({ kind: 'text', text: text.slice(a, b), start: a, end: b });
  };

  for (;;) {
    open.lastIndex = pos;
    const m = open.exec(text);
    const at = m ? m.index : text.length;
    pushText(at, !!m && m[1] !== '#' && text[at + 2] === '-');
    if (!m) break;
    if (m[1] === '#') {
      throw new ParseFailure(
        at,
        `comments ("{# ... #}") are not supported; to write "{#" literally (as in a shell's \${#var}), use {{ '{#' }}`,
      );
    }
    const p = new ExprParser(text, at, m[1] === '{' ? 'expr' : 'stmt');
    if (m[1] === '{') {
      const expr = p.output();
      body.push({ kind: 'expr', expr, start: at, end: p.pos });
      lead = p.closeTrim === '-' ? 'all' : 'keep';
      pos = p.pos;
      continue;
    }

    const kw = p.keyword();
    const top = stack[stack.length - 1];
    const misplaced = (message: string): ParseFailure => new ParseFailure(at, message);
    switch (kw.v) {
      case 'if': {
        const test = p.condition(kw.v);
        p.close();
        const node: IfPart = {
          kind: 'if',
          branches: [{ test, body: [], start: at, end: p.pos }],
          start: at,
          end: p.pos,
        };
        body.push(node);
        stack.push({ node, tag: tagWords(text, at, p.pos), inElse: false, outer: body });
        body = node.branches[0]!.body;
        break;
      }
      case 'elif': {
        if (!top) throw misplaced('stray {% elif %}: there is no open {% if %}');
        if (top.node.kind === 'for') {
          throw misplaced(`{% elif %} cannot go in "${top.tag}": close it with {% endfor %} first`);
        }
        if (top.inElse) throw misplaced(`{% elif %} after the {% else %} of "${top.tag}": else comes last`);
        const test = p.condition(kw.v);
        p.close();
        const branch = { test, body: [], start: at, end: p.pos };
        top.node.branches.push(branch);
        body = branch.body;
        break;
      }
      case 'else': {
        if (p.peekWord('if')) throw new ParseFailure(p.peek().start, '"else if" is written {% elif ... %}');
        p.close(kw.v);
        if (!top) throw misplaced('stray {% else %}: there is no open {% if %} or {% for %}');
        if (top.inElse) throw misplaced(`"${top.tag}" already has an {% else %}`);
        top.inElse = true;
        body = top.node.else = [];
        break;
      }
      case 'endif':
      case 'endfor': {
        p.close(kw.v);
        const want = kw.v === 'endif' ? 'if' : 'for';
        if (!top) throw misplaced(`stray {% ${kw.v} %}: there is no open {% ${want} %}`);
        if (top.node.kind !== want) {
          const needed = top.node.kind === 'if' ? 'endif' : 'endfor';
          throw misplaced(`{% ${kw.v} %} cannot close "${top.tag}": expected {% ${needed} %}`);
        }
        top.node.end = p.pos;
        stack.pop();
        body = top.outer;
        break;
      }
      case 'for': {
        const node = p.forTag(at);
        p.close();
        node.end = p.pos;
        body.push(node);
        stack.push({ node, tag: tagWords(text, at, p.pos), inElse: false, outer: body });
        body = node.body;
        break;
      }
      case 'raw': {
        p.close(kw.v);
        // Everything up to {% endraw %} is text, "{{" and "{%" included.
        const end = /\{%([-+]?)\s*endraw\s*([-+]?)%\}/g;
        end.lastIndex = p.pos;
        const e = end.exec(text);
        if (!e) throw new ParseFailure(at, 'unclosed {% raw %}: add {% endraw %}');
        lead = p.closeTrim === '-' ? 'all' : p.closeTrim === '+' ? 'keep' : 'newline';
        pos = p.pos;
        pushText(e.index, e[1] === '-');
        lead = e[2] === '-' ? 'all' : e[2] === '+' ? 'keep' : 'newline';
        pos = e.index + e[0].length;
        continue;
      }
      case 'endraw':
        throw misplaced('stray {% endraw %}: there is no open {% raw %}');
      default: {
        const hint = JINJA_ONLY_TAGS.has(kw.v)
          ? ' (a Jinja tag berth does not support: a template only looks values up, it does not assign, define or include)'
          : withSuggestion(kw.v, TAGS);
        throw new ParseFailure(kw.start, `unknown tag "${kw.v}"${hint}; tags are ${TAGS.join(', ')}`);
      }
    }
    if (stack.length > MAX_BLOCK_DEPTH) {
      throw new ParseFailure(at, `blocks nested more than ${MAX_BLOCK_DEPTH} deep`);
    }
    lead = p.closeTrim === '-' ? 'all' : p.closeTrim === '+' ? 'keep' : 'newline';
    pos = p.pos;
  }
  const open_ = stack[stack.length - 1];
  if (open_) {
    const needed = open_.node.kind === 'if' ? 'endif' : 'endfor';
    throw new ParseFailure(open_.node.start, `unclosed "${open_.tag}": add {% ${needed} %}`);
  }
  if (root.length === 0) root.push({ kind: 'text', text: '', start: 0, end: 0 });
  return root;
}

function withSuggestion(word: string, known: Iterable<string>): string {
  const hint = suggest(word, known);
  return hint ? ` (did you mean "${hint}"?)` : '';
}

type Token =
  | { t: 'name'; v: string; start: number; end: number }
  | { t: 'str'; v: string; start: number; end: number }
  | { t: 'num'; v: number; integer: boolean; start: number; end: number }
  | { t: 'op'; v: string; start: number; end: number }
  | { t: 'close'; v: '}}' | '%}'; trim: '' | '-' | '+'; start: number; end: number }
  | { t: 'eof'; start: number; end: number };

/** Parentheses, arguments, lists and `not` recurse at most this deep. */
const MAX_DEPTH = 32;
/** An expression's tree is at most this tall (a long `a | f | g ...` or `a or b or ...`). */
const MAX_HEIGHT = 100;
const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
const NUMBER = /-?\d+(\.\d+)?/y;
const SPACE = /[ \t\r\n]*/y;
const OPERATORS = new Set(['+', '-', '*', '/', '%', '~', '!', '&', '^', '?']);
const COMPARISONS = new Set(['==', '!=', '<=', '>=', '<', '>']);
/** Words that are operators or literals, never names. */
const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'if', 'else', 'is', 'true', 'false', 'True', 'False']);
// Jinja words for what berth does not do, after a complete expression.
const UNSUPPORTED_WORDS: Record<string, string> = {
  if: 'conditional expressions ("x if y else z") are not supported; use {% if %} blocks, or | default(...) for a fallback',
  else: 'conditional expressions ("x if y else z") are not supported; use {% if %} blocks, or | default(...) for a fallback',
  is: 'tests ("x is defined") are not supported; use | default(...) for a value that may be missing',
};

function describe(t: Token): string {
  switch (t.t) {
    case 'eof':
      return 'the end of the text';
    case 'str':
      return 'a string';
    case 'num':
      return `the number ${t.v}`;
    case 'close':
      return `"${t.trim}${t.v}"`;
    default:
      return `"${t.v}"`;
  }
}

/**
 * A recursive-descent parser for one `{{ ... }}` or `{% ... %}`, reading tokens straight from the
 * text. Precedence, loosest first, as in Jinja: `or`, `and`, `not`, comparisons and `in`, then
 * `|` filters, then `.key` and `[key]`.
 */
class ExprParser {
  pos: number;
  /** How the tag ended: `-` strips the whitespace after it, `+` keeps the newline after a `%}`. */
  closeTrim: '' | '-' | '+' = '';
  private readonly closer: '}}' | '%}';
  private depth = 0;
  private readonly heights = new Map<Expr, number>();

  constructor(
    private readonly text: string,
    private readonly open: number,
    private readonly mode: 'expr' | 'stmt',
  ) {
    this.closer = mode === 'expr' ? '}}' : '%}';
    this.pos = open + 2;
    const c = text[this.pos];
    if (c === '-' || c === '+') {
      if (mode === 'expr' && c === '+') {
        throw new ParseFailure(
          this.pos,
          '"{{+" is not valid: "+" is for {% %} tags; "{{-" strips the whitespace before',
        );
      }
      this.pos++;
    }
  }

  /** The body of a `{{ }}`, up to and including its `}}`. */
  output(): Expr {
    const first = this.peek();
    if (first.t === 'close' && first.v === '}}')
      throw new ParseFailure(this.open, 'empty expression "{{ }}"');
    if (first.t === 'eof') throw this.unclosed();
    const expr = this.expression();
    const t = this.peek();
    if (t.t === 'name' && UNSUPPORTED_WORDS[t.v]) throw new ParseFailure(t.start, UNSUPPORTED_WORDS[t.v]!);
    if (!(t.t === 'close' || t.t === 'eof')) {
      throw new ParseFailure(t.start, `unexpected ${describe(t)}: expected "|" and a filter, or "}}"`);
    }
    this.close();
    return expr;
  }

  /** The tag's name, after `{%`. */
  keyword(): Extract<Token, { t: 'name' }> {
    const t = this.next();
    if (t.t === 'name') return t;
    if (t.t === 'close') throw new ParseFailure(this.open, 'empty tag "{% %}"');
    if (t.t === 'eof') throw this.unclosed();
    throw new ParseFailure(t.start, `expected a tag name such as if or for after "{%", found ${describe(t)}`);
  }

  /** The condition of an `if` or `elif`. */
  condition(tag: string): Expr {
    const t = this.peek();
    if (t.t === 'close' || t.t === 'eof') {
      throw new ParseFailure(t.start, `{% ${tag} %} needs a condition, as {% ${tag} 'web' in host.groups %}`);
    }
    return this.expression();
  }

  /** `for NAME in EXPR`, after the `for`. */
  forTag(start: number): ForPart {
    const target = this.next();
    if (target.t !== 'name' || KEYWORDS.has(target.v)) {
      throw new ParseFailure(
        target.start,
        `expected the loop variable's name after "for", found ${describe(target)}`,
      );
    }
    if (target.v === 'loop' || target.v === 'secrets') {
      throw new ParseFailure(
        target.start,
        `"${target.v}" cannot be a loop variable: berth gives the name its own meaning`,
      );
    }
    if (this.peekOp(',')) {
      throw new ParseFailure(
        this.peek().start,
        'unpacking ("for a, b in ...") is not supported: loop over one list',
      );
    }
    const word = this.next();
    if (!(word.t === 'name' && word.v === 'in')) {
      throw new ParseFailure(word.start, `expected "in" after "for ${target.v}", found ${describe(word)}`);
    }
    const after = this.peek();
    if (after.t === 'close' || after.t === 'eof') {
      throw new ParseFailure(after.start, `{% for ${target.v} in %} needs a list to loop over`);
    }
    const iterable = this.expression();
    const t = this.peek();
    if (t.t === 'name' && t.v === 'if') {
      throw new ParseFailure(
        t.start,
        'a loop filter ("for x in list if ...") is not supported; put an {% if %} inside the loop',
      );
    }
    if (t.t === 'name' && t.v === 'recursive') {
      throw new ParseFailure(t.start, 'recursive loops are not supported');
    }
    return {
      kind: 'for',
      target: target.v,
      targetStart: target.start,
      iterable,
      body: [],
      start,
      end: start,
    };
  }

  /** The tag's end: `}}` or `%}`, as the tag began. `tag` names a tag that takes nothing more. */
  close(tag?: string): void {
    const t = this.next();
    if (t.t === 'close' && t.v === this.closer) {
      if (t.v === '}}' && t.trim === '+') {
        throw new ParseFailure(
          t.start,
          '"+}}" is not valid: "+" is for {% %} tags; "-}}" strips the whitespace after',
        );
      }
      this.closeTrim = t.trim;
      return;
    }
    if (t.t === 'eof') throw this.unclosed();
    if (t.t === 'close') {
      const began = this.mode === 'expr' ? '{{' : '{%';
      throw new ParseFailure(
        t.start,
        `this tag began with "${began}", so it ends with "${this.closer}", not "${t.v}"`,
      );
    }
    if (tag) throw new ParseFailure(t.start, `{% ${tag} %} takes nothing more, found ${describe(t)}`);
    if (t.t === 'name' && UNSUPPORTED_WORDS[t.v]) throw new ParseFailure(t.start, UNSUPPORTED_WORDS[t.v]!);
    throw new ParseFailure(
      t.start,
      `unexpected ${describe(t)}: expected an operator, "|" and a filter, or "%}"`,
    );
  }

  private unclosed(): ParseFailure {
    return this.mode === 'expr'
      ? new ParseFailure(this.open, 'unclosed "{{": the expression has no "}}"')
      : new ParseFailure(this.open, 'unclosed "{%": the tag has no "%}"');
  }

  /** Record a node's height; a tree taller than MAX_HEIGHT is an error, so walking it cannot overflow. */
  private node<E extends Expr>(e: E, ...children: Expr[]): E {
    const h = 1 + Math.max(0, ...children.map((c) => this.heights.get(c) ?? 1));
    if (h > MAX_HEIGHT) {
      throw new ParseFailure(e.start, `expression more than ${MAX_HEIGHT} filters, operators and keys deep`);
    }
    this.heights.set(e, h);
    return e;
  }

  private expression(): Expr {
    // Parentheses, arguments and lists recurse; a bound keeps a hostile repo from overflowing the stack.
    if (++this.depth > MAX_DEPTH)
      throw new ParseFailure(this.pos, `expression nested more than ${MAX_DEPTH} deep`);
    const e = this.or();
    this.depth--;
    return e;
  }

  private or(): Expr {
    let left = this.and();
    while (this.peekWord('or')) {
      this.next();
      const right = this.and();
      left = this.node(
        { kind: 'logic', op: 'or', left, right, start: left.start, end: right.end },
        left,
        right,
      );
    }
    return left;
  }

  private and(): Expr {
    let left = this.not();
    while (this.peekWord('and')) {
      this.next();
      const right = this.not();
      left = this.node(
        { kind: 'logic', op: 'and', left, right, start: left.start, end: right.end },
        left,
        right,
      );
    }
    return left;
  }

  private not(): Expr {
    if (!this.peekWord('not')) return this.compare();
    const t = this.next();
    if (++this.depth > MAX_DEPTH)
      throw new ParseFailure(t.start, `expression nested more than ${MAX_DEPTH} deep`);
    const operand = this.not();
    this.depth--;
    return this.node({ kind: 'not', operand, start: t.start, end: operand.end }, operand);
  }

  private compare(): Expr {
    const left = this.chain();
    const op = this.compareOp();
    if (!op) return left;
    const right = this.chain();
    const again = this.compareOp();
    if (again) {
      throw new ParseFailure(
        again.start,
        `comparisons do not chain: write "a ${op.op} b and b ${again.op} c"`,
      );
    }
    return this.node(
      { kind: 'compare', op: op.op, opStart: op.start, left, right, start: left.start, end: right.end },
      left,
      right,
    );
  }

  /** A comparison operator, consumed, or undefined (nothing consumed). */
  private compareOp(): { op: CompareOp; start: number } | undefined {
    const t = this.peek();
    if (t.t === 'op' && COMPARISONS.has(t.v)) {
      this.pos = t.end;
      return { op: t.v as CompareOp, start: t.start };
    }
    if (t.t === 'name' && t.v === 'in') {
      this.pos = t.end;
      return { op: 'in', start: t.start };
    }
    if (t.t === 'name' && t.v === 'not') {
      const after = this.lex(t.end);
      if (after.t === 'name' && after.v === 'in') {
        this.pos = after.end;
        return { op: 'not in', start: t.start };
      }
    }
    return undefined;
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
      e = this.node(
        { kind: 'filter', input: e, name: name.v, nameStart: name.start, args, start: e.start, end },
        e,
        ...args.map((a) => a.value),
      );
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
        const value = this.expression();
        args.push({ name: t.v, value, start: t.start, end: value.end });
      } else {
        const value = this.expression();
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
        if (k.t === 'name' || (k.t === 'num' && k.integer && k.v >= 0)) {
          e = this.node(
            { kind: 'field', object: e, key: k.v, keyStart: k.start, start: e.start, end: k.end },
            e,
          );
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
        e = this.node(
          { kind: 'field', object: e, key: k.v, keyStart: k.start, start: e.start, end: close.end },
          e,
        );
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
        if (t.v === 'true' || t.v === 'True')
          return this.node({ kind: 'literal', value: true, start: t.start, end: t.end });
        if (t.v === 'false' || t.v === 'False') {
          return this.node({ kind: 'literal', value: false, start: t.start, end: t.end });
        }
        if (KEYWORDS.has(t.v)) break;
        return this.node({ kind: 'name', name: t.v, start: t.start, end: t.end });
      case 'str':
      case 'num':
        return this.node({ kind: 'literal', value: t.v, start: t.start, end: t.end });
      case 'eof':
        throw this.unclosed();
      case 'op':
        if (t.v === '(') {
          const inner = this.expression();
          const close = this.next();
          if (!(close.t === 'op' && close.v === ')')) {
            throw new ParseFailure(close.start, `expected ")", found ${describe(close)}`);
          }
          return inner;
        }
        if (t.v === '[') return this.list(t.start);
        break;
      case 'close':
        break;
    }
    throw new ParseFailure(t.start, `expected a name, a quoted string or a number, found ${describe(t)}`);
  }

  /** After the "[" of a list literal: items up to and including the "]". */
  private list(start: number): Expr {
    const items: Expr[] = [];
    if (++this.depth > MAX_DEPTH)
      throw new ParseFailure(start, `expression nested more than ${MAX_DEPTH} deep`);
    for (;;) {
      if (this.peekOp(']')) break;
      items.push(this.expression());
      if (this.peekOp(']')) break;
      const sep = this.next();
      if (sep.t === 'eof') throw this.unclosed();
      if (!(sep.t === 'op' && sep.v === ',')) {
        throw new ParseFailure(sep.start, `expected "," or "]" in the list, found ${describe(sep)}`);
      }
    }
    this.depth--;
    const close = this.next();
    return this.node({ kind: 'list', items, start, end: close.end }, ...items);
  }

  peekWord(v: string): boolean {
    const t = this.peek();
    return t.t === 'name' && t.v === v;
  }

  private peekOp(v: string): boolean {
    const t = this.peek();
    return t.t === 'op' && t.v === v;
  }

  peek(): Token {
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
    const trim = c === '-' || c === '+' ? c : '';
    const closeAt = at + trim.length;
    if (s.startsWith('}}', closeAt) || s.startsWith('%}', closeAt)) {
      return { t: 'close', v: s[closeAt] === '}' ? '}}' : '%}', trim, start: at, end: closeAt + 2 };
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
    const two = s.slice(at, at + 2);
    if (COMPARISONS.has(two)) return { t: 'op', v: two, start: at, end: at + 2 };
    if (COMPARISONS.has(c)) return { t: 'op', v: c, start: at, end: at + 1 };
    if ('.[](),|='.includes(c)) return { t: 'op', v: c, start: at, end: at + 1 };
    if (OPERATORS.has(c)) {
      throw new ParseFailure(
        at,
        `operator "${c}" is not supported: a template looks values up, filters and compares them, it does not compute`,
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
