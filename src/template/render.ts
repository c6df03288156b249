import type { InventoryHost } from '../model/service.js';
import {
  exprText,
  type Expr,
  type FieldExpr,
  type FilterExpr,
  type Template,
  type TemplateError,
} from './ast.js';
import { bindArgs, FILTERS, FilterFailure, runFilter } from './filters.js';
import { fieldOf, isMap, isScalar, kindOf, scalarText, Undefined, type Value } from './value.js';
import { unknownFilterMessage, unknownNameMessage } from './check.js';

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
   * Secret lookup, called once per secret a value actually uses. Without it `renderTemplate`
   * fails on any secret, and `renderRedacted` shows the secret without looking it up.
   */
  secret?: (name: string) => SecretAnswer;
}

export type RenderResult =
  | {
      ok: true;
      value: string;
      /** Secrets the value used, sorted: what the caller must redact and watch for changes. */
      secretsUsed: string[];
    }
  | { ok: false; error: TemplateError };

/** The value to write: secrets in clear. Only for the env file and the container. */
export function renderTemplate(template: Template, context: RenderContext): RenderResult {
  return render(template, context, false);
}

/**
 * The value to show (render, plan, diff, logs): every `{{ }}` that used a secret shows as
 * `<secret:NAME>`, the rest as it renders. Errors are the same as `renderTemplate`'s, so what
 * `berth render` reports is what `apply` would hit.
 */
export function renderRedacted(template: Template, context: RenderContext): RenderResult {
  return render(template, context, true);
}

/** Thrown inside one render and caught at its top: the first problem ends the value. */
class RenderFailure {
  constructor(
    readonly offset: number,
    readonly message: string,
  ) {}
}

const LINE_BREAK = /[\n\r\0]/;

function render(template: Template, context: RenderContext, redact: boolean): RenderResult {
  const used = new Set<string>();
  let out = '';
  try {
    for (const part of template.parts) {
      if (part.kind === 'text') {
        const at = part.text.search(LINE_BREAK);
        if (at >= 0) throw new RenderFailure(part.start + at, 'the value holds a line break or NUL');
        out += part.text;
        continue;
      }
      const ev = new Evaluator(template.source, context, redact);
      const value = ev.eval(part.expr);
      const text = ev.text(value, part.expr);
      const secrets = [...ev.used].sort();
      if (LINE_BREAK.test(text)) {
        throw new RenderFailure(
          part.expr.start,
          secrets.length
            ? `the value of secret ${secrets.join(', ')} holds a line break or NUL, which an env file cannot hold`
            : `${exprText(template.source, part.expr)} renders a line break or NUL, which an env file cannot hold`,
        );
      }
      secrets.forEach((s) => used.add(s));
      out += redact && secrets.length ? secrets.map((s) => `<secret:${s}>`).join('') : text;
    }
  } catch (e) {
    if (e instanceof RenderFailure) return { ok: false, error: { offset: e.offset, message: e.message } };
    throw e;
  }
  return { ok: true, value: out, secretsUsed: [...used].sort() };
}

/** Evaluates one `{{ }}`: a walk over the tree, reading plain data. */
class Evaluator {
  readonly used = new Set<string>();

  constructor(
    private readonly source: string,
    private readonly ctx: RenderContext,
    private readonly redact: boolean,
  ) {}

  eval(e: Expr): Value {
    switch (e.kind) {
      case 'literal':
        return e.value;
      case 'name':
        return this.root(e.name, e.start);
      case 'field':
        if (e.object.kind === 'name' && e.object.name === 'secrets') return this.secret(e);
        return fieldOf(this.eval(e.object), e.key, exprText(this.source, e.object));
      case 'filter':
        return this.filter(e);
    }
  }

  private root(name: string, at: number): Value {
    switch (name) {
      case 'host':
        return this.ctx.host;
      case 'groups':
        return this.ctx.groups;
      case 'service':
        return this.ctx.service;
      case 'env':
        return this.ctx.env;
      case 'secrets':
        throw new RenderFailure(at, 'secrets must name one secret, as secrets.NAME');
      default:
        throw new RenderFailure(at, unknownNameMessage(name));
    }
  }

  private secret(e: FieldExpr): Value {
    const name = String(e.key);
    this.used.add(name);
    const lookup = this.ctx.secret;
    if (!lookup) {
      if (this.redact) return `<secret:${name}>`;
      throw new RenderFailure(e.start, `secret ${name} is needed, but no secrets are available here`);
    }
    const answer = lookup(name);
    if (answer === undefined) throw new RenderFailure(e.start, `secret ${name} is missing`);
    if (typeof answer !== 'string') throw new RenderFailure(e.start, `secret ${name}: ${answer.error}`);
    return answer;
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
