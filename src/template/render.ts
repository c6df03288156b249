import type { InventoryHost } from '../model/service.js';
import {
  exprText,
  secretFields,
  templateExprs,
  type CompareExpr,
  type Expr,
  type FieldExpr,
  type FilterExpr,
  type ForPart,
  type IfPart,
  type Part,
  type Template,
  type TemplateError,
} from './ast.js';
import { bindArgs, FILTERS, FilterFailure, runFilter } from './filters.js';
import {
  equal,
  fieldOf,
  isMap,
  isScalar,
  isTrue,
  kindOf,
  scalarText,
  Undefined,
  type Value,
} from './value.js';
import { LOOP_OUTSIDE_FOR, unknownFilterMessage, unknownNameMessage } from './check.js';

/** What a secret lookup answers: the value, undefined when there is no such secret, or why it failed. */
export type SecretAnswer = string | undefined | { error: string };

/** Everything a template can name. Plain data only: nothing in it is ever called but `secret`. */
export interface RenderContext {
  host: InventoryHost;
  /** Group name -> its hosts. An empty group should be here as [], so it renders as "". */
  groups: Record<string, InventoryHost[]>;
  /** The service's own fields, as `service.NAME`. */
  service: Record<string, unknown>;
  /** The environment's name. */
  env: string;
  /**
   * Secret lookup, called at most once per secret per render, and only for a secret the output
   * needs (not for one in a branch that does not run). Without it `renderTemplate` fails on any
   * secret, and `renderRedacted` shows the secret without looking it up.
   */
  secret?: (name: string) => SecretAnswer;
}

export type RenderResult =
  | {
      ok: true;
      value: string;
      /**
       * Secrets the output depends on, sorted: read by a `{{ }}` that rendered, an `if` condition
       * that was evaluated or a loop's list. What the caller must redact and watch for changes.
       */
      secretsUsed: string[];
    }
  | { ok: false; error: TemplateError };

/** How much a render may produce, and whether its output may span lines. */
export interface RenderOptions {
  /**
   * True for a whole file: the output may hold line breaks. False (the default) for one config
   * value, such as an env value, where a line break or NUL in the output is an error.
   */
  multiline?: boolean;
  /** The most characters the output may have (default 8 Mi); longer is an error where it crosses. */
  maxLength?: number;
}

/** Loops stop after this many iterations in one render, all loops together: a nested loop cannot hang berth. */
export const MAX_ITERATIONS = 1_000_000;
const DEFAULT_MAX_LENGTH = 8 * 1024 * 1024;

/** The value to write: secrets in clear. Only for the env file, the container, a rendered file. */
export function renderTemplate(
  template: Template,
  context: RenderContext,
  options: RenderOptions = {},
): RenderResult {
  return render(template, context, false, options);
}

/**
 * The value to show (render, plan, diff, logs): every `{{ }}` that used a secret shows as
 * `<secret:NAME>`, and so does a whole `{% if %}` whose conditions used one or a whole
 * `{% for %}` whose list did, since which branch runs, or how often, tells about the secret.
 * Errors are the same as `renderTemplate`'s, so what `berth render` reports is what `apply` would
 * hit; without a secret lookup such a block's body is not rendered.
 */
export function renderRedacted(
  template: Template,
  context: RenderContext,
  options: RenderOptions = {},
): RenderResult {
  return render(template, context, true, options);
}

/** Thrown inside one render and caught at its top: the first problem ends the value. */
class RenderFailure {
  constructor(
    readonly offset: number,
    readonly message: string,
  ) {}
}

const LINE_BREAK = /[\n\r\0]/;

function render(
  template: Template,
  context: RenderContext,
  redact: boolean,
  options: RenderOptions,
): RenderResult {
  const r = new Renderer(template.source, context, redact, options);
  const out: string[] = [];
  try {
    r.parts(template.parts, out);
  } catch (e) {
    if (e instanceof RenderFailure) return { ok: false, error: { offset: e.offset, message: e.message } };
    throw e;
  }
  return { ok: true, value: out.join(''), secretsUsed: [...r.used].sort() };
}

function placeholders(names: Iterable<string>): string {
  return [...names]
    .sort()
    .map((s) => `<secret:${s}>`)
    .join('');
}

/** A walk over the parsed tree, reading plain data; the output goes into string arrays. */
class Renderer {
  /** Every secret the output used, conditions and loop lists included. */
  readonly used = new Set<string>();
  /** Secrets used by the evaluation under way; then by each redacted block being rendered. */
  private current = new Set<string>();
  private readonly blocks: Set<string>[] = [];
  /** Loop variables and `loop`, where the walk is. */
  private scope = new Map<string, Value>();
  private length = 0;
  private iterations = 0;
  private readonly answers = new Map<string, SecretAnswer>();
  private readonly multiline: boolean;
  private readonly maxLength: number;

  constructor(
    private readonly source: string,
    private readonly ctx: RenderContext,
    private readonly redact: boolean,
    options: RenderOptions,
  ) {
    this.multiline = options.multiline ?? false;
    this.maxLength = options.maxLength ?? DEFAULT_MAX_LENGTH;
  }

  parts(parts: readonly Part[], out: string[]): void {
    for (const part of parts) {
      switch (part.kind) {
        case 'text': {
          const at = this.multiline ? -1 : part.text.search(LINE_BREAK);
          if (at >= 0) throw new RenderFailure(part.start + at, 'the value holds a line break or NUL');
          this.emit(out, part.text, part.start);
          break;
        }
        case 'expr': {
          const { value, used } = this.evaluate(part.expr);
          const text = this.text(value, part.expr);
          const secrets = [...used].sort();
          if (!this.multiline && LINE_BREAK.test(text)) {
            throw new RenderFailure(
              part.expr.start,
              secrets.length
                ? `the value of secret ${secrets.join(', ')} holds a line break or NUL, which an env file cannot hold`
                : `${exprText(this.source, part.expr)} renders a line break or NUL, which an env file cannot hold`,
            );
          }
          this.use(secrets);
          this.emit(out, this.redact && secrets.length ? placeholders(secrets) : text, part.start);
          break;
        }
        case 'if':
          this.ifBlock(part, out);
          break;
        case 'for':
          this.forBlock(part, out);
          break;
      }
    }
  }

  private ifBlock(part: IfPart, out: string[]): void {
    const used = new Set<string>();
    let chosen = part.else;
    for (const b of part.branches) {
      const { value, used: u } = this.evaluate(b.test);
      u.forEach((s) => used.add(s));
      if (this.truth(value, b.test)) {
        chosen = b.body;
        break;
      }
    }
    this.use(used);
    this.block(part, used, out, (into) => {
      if (chosen) this.parts(chosen, into);
    });
  }

  private forBlock(part: ForPart, out: string[]): void {
    const { value, used } = this.evaluate(part.iterable);
    const what = exprText(this.source, part.iterable);
    if (value instanceof Undefined) {
      throw new RenderFailure(
        part.iterable.start,
        `${what} is not defined (${value.why}); add | default([]) if it may be missing`,
      );
    }
    if (!Array.isArray(value)) {
      const hint = value === null ? '; add | default([]) if it may be empty' : '';
      throw new RenderFailure(
        part.iterable.start,
        `a loop needs a list, but ${what} is ${kindOf(value)}${hint}`,
      );
    }
    this.use(used);
    const items: Value[] = value;
    this.block(part, used, out, (into) => {
      if (items.length === 0) {
        if (part.else) this.parts(part.else, into);
        return;
      }
      const outer = this.scope;
      const n = items.length;
      items.forEach((item, i) => {
        if (++this.iterations > MAX_ITERATIONS) {
          throw new RenderFailure(part.start, `loops ran more than ${MAX_ITERATIONS} times in one render`);
        }
        const loop = {
          index: i + 1,
          index0: i,
          revindex: n - i,
          revindex0: n - i - 1,
          first: i === 0,
          last: i === n - 1,
          length: n,
        };
        this.scope = new Map(outer).set(part.target, item).set('loop', loop);
        try {
          this.parts(part.body, into);
        } catch (e) {
          // Which item failed, by number only: the item itself may hold a secret.
          if (e instanceof RenderFailure && n > 1) {
            throw new RenderFailure(e.offset, `${e.message} (item ${i + 1} of ${n} of ${what})`);
          }
          throw e;
        }
      });
      this.scope = outer;
    });
  }

  /**
   * A block's output. When redacting and `taint` (the secrets its conditions or list used) is
   * not empty, the whole output is one run of placeholders, for those secrets and any its body
   * used: which branch ran, or how many times, would tell about the secret.
   */
  private block(part: Part, taint: ReadonlySet<string>, out: string[], body: (into: string[]) => void): void {
    if (!this.redact || taint.size === 0) {
      body(out);
      return;
    }
    const names = new Set(taint);
    if (!this.ctx.secret) {
      // No values to decide with: name what the block would need, without rendering it.
      for (const e of templateExprs([part])) for (const s of secretFields(e)) names.add(String(s.name));
      this.use(names);
    } else {
      this.blocks.push(names);
      body([]);
      this.blocks.pop();
    }
    this.emit(out, placeholders(names), part.start);
  }

  /** Record secrets as used: by the output, and by every redacted block being rendered. */
  private use(names: Iterable<string>): void {
    for (const s of names) {
      this.used.add(s);
      for (const b of this.blocks) b.add(s);
    }
  }

  private emit(out: string[], text: string, at: number): void {
    this.length += text.length;
    if (this.length > this.maxLength) {
      throw new RenderFailure(at, `the rendered text is longer than ${this.maxLength} characters`);
    }
    out.push(text);
  }

  /** One expression's value and the secrets it used. */
  private evaluate(e: Expr): { value: Value; used: Set<string> } {
    this.current = new Set();
    const value = this.eval(e);
    return { value, used: this.current };
  }

  private eval(e: Expr): Value {
    switch (e.kind) {
      case 'literal':
        return e.value;
      case 'list':
        return e.items.map((x) => this.eval(x));
      case 'name':
        return this.root(e.name, e.start);
      case 'field':
        if (e.object.kind === 'name' && e.object.name === 'secrets') return this.secret(e);
        return fieldOf(this.eval(e.object), e.key, exprText(this.source, e.object));
      case 'filter':
        return this.filter(e);
      case 'compare':
        return this.compare(e);
      case 'not':
        return !this.truth(this.eval(e.operand), e.operand);
      case 'logic': {
        // Python's and/or: the operand that decides is the value, and the right one is read only if needed.
        const left = this.eval(e.left);
        const t = this.truth(left, e.left);
        if (e.op === 'and') return t ? this.operand(e.right) : left;
        return t ? left : this.operand(e.right);
      }
    }
  }

  private root(name: string, at: number): Value {
    if (this.scope.has(name)) return this.scope.get(name);
    switch (name) {
      case 'host':
        return this.ctx.host;
      case 'groups':
        return this.ctx.groups;
      case 'service':
        return this.ctx.service;
      case 'env':
        return this.ctx.env;
      case 'loop':
        throw new RenderFailure(at, LOOP_OUTSIDE_FOR);
      case 'secrets':
        throw new RenderFailure(at, 'secrets must name one secret, as secrets.NAME');
      default:
        throw new RenderFailure(at, unknownNameMessage(name));
    }
  }

  private secret(e: FieldExpr): Value {
    const name = String(e.key);
    this.current.add(name);
    const lookup = this.ctx.secret;
    if (!lookup) {
      if (this.redact) return `<secret:${name}>`;
      throw new RenderFailure(e.start, `secret ${name} is needed, but no secrets are available here`);
    }
    if (!this.answers.has(name)) this.answers.set(name, lookup(name));
    const answer = this.answers.get(name);
    if (answer === undefined) throw new RenderFailure(e.start, `secret ${name} is missing`);
    if (typeof answer !== 'string') throw new RenderFailure(e.start, `secret ${name}: ${answer.error}`);
    return answer;
  }

  /** Whether a condition holds. A missing value is an error, as everywhere else: say `| default(false)`. */
  private truth(v: Value, e: Expr): boolean {
    const what = exprText(this.source, e);
    if (v instanceof Undefined) {
      throw new RenderFailure(
        e.start,
        `${what} is not defined (${v.why}); add | default(false) if it may be missing`,
      );
    }
    if (!(v === null || isScalar(v) || Array.isArray(v) || isMap(v))) {
      throw new RenderFailure(e.start, `${what} is ${kindOf(v)}`);
    }
    return isTrue(v);
  }

  /** An operand of a comparison: there, not undefined. */
  private operand(e: Expr): Value {
    const v = this.eval(e);
    if (v instanceof Undefined) {
      throw new RenderFailure(
        e.start,
        `${exprText(this.source, e)} is not defined (${v.why}); add | default(...) if it may be missing`,
      );
    }
    return v;
  }

  private compare(e: CompareExpr): boolean {
    const left = this.operand(e.left);
    const right = this.operand(e.right);
    const lt = exprText(this.source, e.left);
    const rt = exprText(this.source, e.right);
    switch (e.op) {
      case '==':
        return equal(left, right);
      case '!=':
        return !equal(left, right);
      case 'in':
        return this.contains(e, left, right, lt, rt);
      case 'not in':
        return !this.contains(e, left, right, lt, rt);
      default: {
        const ok =
          (typeof left === 'number' && typeof right === 'number') ||
          (typeof left === 'string' && typeof right === 'string');
        if (!ok) {
          throw new RenderFailure(
            e.opStart,
            `${e.op} compares two numbers or two strings, but ${lt} is ${kindOf(left)} and ${rt} is ${kindOf(right)}`,
          );
        }
        const [a, b] = [left as number | string, right as number | string];
        return e.op === '<' ? a < b : e.op === '<=' ? a <= b : e.op === '>' ? a > b : a >= b;
      }
    }
  }

  /** `left in right`: an item of a list, a part of a string, a key of a map. */
  private contains(e: CompareExpr, left: Value, right: Value, lt: string, rt: string): boolean {
    if (Array.isArray(right)) return right.some((x) => equal(left, x));
    if (typeof right === 'string' || isMap(right)) {
      if (typeof left !== 'string') {
        const where =
          typeof right === 'string'
            ? 'looks for a string in a string'
            : "looks for a key in a map's keys, which are strings";
        throw new RenderFailure(e.left.start, `"${e.op}" ${where}, but ${lt} is ${kindOf(left)}`);
      }
      return typeof right === 'string' ? right.includes(left) : Object.hasOwn(right, left);
    }
    throw new RenderFailure(
      e.right.start,
      `"${e.op}" needs a list, a string or a map on its right, but ${rt} is ${kindOf(right)}`,
    );
  }

  private filter(e: FilterExpr): Value {
    const def = FILTERS.get(e.name);
    if (!def) throw new RenderFailure(e.nameStart, unknownFilterMessage(e.name));
    const bound = bindArgs(def, e.args, e.nameStart);
    if (!bound.ok) throw new RenderFailure(bound.offset, bound.message);
    const input = this.eval(e.input);
    const cache = new Map<Expr, Value>();
    const value = (x: Expr): Value => {
      if (!cache.has(x)) cache.set(x, this.eval(x));
      return cache.get(x);
    };
    const r = runFilter(
      def,
      input,
      {
        arg: (name) => {
          const x = bound.bound.named.get(name);
          return x === undefined ? undefined : value(x);
        },
        rest: () => bound.bound.rest.map(value),
      },
      exprText(this.source, e.input),
    );
    if (r instanceof FilterFailure) {
      // A missing input is the input's fault: point at it, not at the filter.
      const missing = !def.takesMissing && (input instanceof Undefined || input === null);
      throw new RenderFailure(missing ? e.input.start : e.nameStart, r.message);
    }
    return r;
  }

  /** A value as it stands in the text: only scalars; a list or map needs a filter to say how. */
  text(v: Value, e: Expr): string {
    if (isScalar(v)) return scalarText(v);
    const what = exprText(this.source, e);
    if (v instanceof Undefined) {
      throw new RenderFailure(
        e.start,
        `${what} is not defined (${v.why}); add | default(...) if it may be missing`,
      );
    }
    if (v === null) {
      throw new RenderFailure(
        e.start,
        `${what} is null (an empty value); add | default(...) if it may be empty`,
      );
    }
    if (Array.isArray(v)) {
      throw new RenderFailure(e.start, `${what} is a list; use join to make it one string, e.g. | join(',')`);
    }
    if (isMap(v)) {
      const keys = Object.keys(v);
      const some = keys.length ? ` (${keys.slice(0, 5).join(', ')}${keys.length > 5 ? ', ...' : ''})` : '';
      throw new RenderFailure(e.start, `${what} is a map; pick one of its keys${some}, as ${what}.KEY`);
    }
    throw new RenderFailure(e.start, `${what} is ${kindOf(v)}`);
  }
}
