import { suggest } from '../config/issues.js';
import { SECRET_NAME } from '../secrets/types.js';
import {
  exprText,
  secretFields,
  templateExprs,
  type CompareExpr,
  type Expr,
  type FilterExpr,
  type Part,
  type Template,
  type TemplateError,
} from './ast.js';
import { acceptsWords, bindArgs, FILTERS, type Accepts } from './filters.js';

/** The names a template can start from. */
export const ROOT_NAMES = ['host', 'groups', 'service', 'env', 'secrets'] as const;

/** What validate knows about the repo; every field optional, and what is left out is not checked. */
export interface TemplateSchema {
  /** The inventory's group names. When given, `groups.X` for any other X is an error. */
  groups?: readonly string[];
  /** The service fields a template may read as `service.X`. When given, any other X is an error. */
  serviceFields?: readonly string[];
}

// Names people bring from Ansible, and what berth calls them.
const ANSIBLE_NAMES: Record<string, string> = {
  inventory_hostname: 'host.name',
  inventory_hostname_short: 'host.name',
  ansible_host: 'host.address',
  group_names: 'host.groups',
  hostvars: 'host.vars (this host) or groups.NAME (other hosts)',
  vars: 'host.vars',
};

export function unknownNameMessage(name: string): string {
  const ansible = ANSIBLE_NAMES[name];
  // A name from an Ansible template is most often one of its host or group vars.
  const hint = ansible
    ? ` (in berth: ${ansible})`
    : withSuggestion(name, ROOT_NAMES) || ` (a host or group var is host.vars.${name})`;
  return `unknown name "${name}"${hint}; a template can use ${ROOT_NAMES.join(', ')}`;
}

/** `loop` used outside any `{% for %}`. */
export const LOOP_OUTSIDE_FOR = 'loop is only defined inside {% for %} ... {% endfor %}';

/** What `loop` holds inside a `{% for %}`, as Jinja names it. */
export const LOOP_FIELDS = ['index', 'index0', 'revindex', 'revindex0', 'first', 'last', 'length'] as const;

export function unknownFilterMessage(name: string): string {
  return `unknown filter "${name}"${withSuggestion(name, FILTERS.keys())}; filters are ${[...FILTERS.keys()].join(', ')}`;
}

function withSuggestion(word: string, known: Iterable<string>): string {
  const hint = suggest(word, known);
  return hint ? ` (did you mean "${hint}"?)` : '';
}

/** What the checker knows of a value before any host is at hand. */
type Shape =
  | { kind: 'any' }
  | { kind: 'text' }
  | { kind: 'number' }
  | { kind: 'boolean' }
  | { kind: 'list'; of: Shape }
  | {
      kind: 'map';
      /** Known keys; any other key is an error unless `values` says what any key holds. */
      fields?: Record<string, Shape>;
      values?: Shape;
      unknown?: (key: string, text: string) => string;
    };

const ANY: Shape = { kind: 'any' };
const TEXT: Shape = { kind: 'text' };
const NUMBER: Shape = { kind: 'number' };
const BOOLEAN: Shape = { kind: 'boolean' };

const HOST: Shape = {
  kind: 'map',
  fields: {
    name: TEXT,
    address: TEXT,
    groups: { kind: 'list', of: TEXT },
    vars: { kind: 'map', values: ANY },
  },
  unknown: (key, text) =>
    `${text} has no key "${key}"${withSuggestion(key, ['name', 'address', 'groups', 'vars'])}; ` +
    'a host has name, address, groups and vars (its inventory values are under vars)',
};

const LOOP: Shape = {
  kind: 'map',
  fields: {
    index: NUMBER,
    index0: NUMBER,
    revindex: NUMBER,
    revindex0: NUMBER,
    first: BOOLEAN,
    last: BOOLEAN,
    length: NUMBER,
  },
  unknown: (key) =>
    `loop has no key "${key}"${withSuggestion(key, LOOP_FIELDS)}; it has ${LOOP_FIELDS.join(', ')}`,
};

function rootShapes(schema: TemplateSchema): Record<string, Shape> {
  const hosts: Shape = { kind: 'list', of: HOST };
  const groups: Shape = schema.groups
    ? {
        kind: 'map',
        fields: Object.fromEntries(schema.groups.map((g) => [g, hosts])),
        unknown: (key) => {
          const names = schema.groups!.length
            ? `; groups are ${schema.groups!.join(', ')}`
            : '; there are no groups';
          return `unknown group "${key}"${withSuggestion(key, schema.groups!)}${names}`;
        },
      }
    : { kind: 'map', values: hosts };
  const service: Shape = schema.serviceFields
    ? {
        kind: 'map',
        fields: Object.fromEntries(schema.serviceFields.map((f) => [f, ANY])),
        unknown: (key) =>
          `a template cannot read service.${key}${withSuggestion(key, schema.serviceFields!)}; ` +
          `it can read ${schema.serviceFields!.map((f) => `service.${f}`).join(', ')}`,
      }
    : { kind: 'map', values: ANY };
  return { host: HOST, groups, service, env: TEXT };
}

function kindWords(s: Shape): string {
  switch (s.kind) {
    case 'text':
      return 'a string';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'a boolean';
    case 'list':
      return 'a list';
    case 'map':
      return 'a map';
    default:
      return 'any value';
  }
}

/** Whether a filter can take a value of this shape; `any` always might. */
function fits(a: Accepts, s: Shape): boolean {
  if (s.kind === 'any' || a === 'any') return true;
  switch (a) {
    case 'text':
      return s.kind === 'text' || s.kind === 'number' || s.kind === 'boolean';
    case 'list':
      return s.kind === 'list';
    case 'sequence':
      return s.kind === 'list' || s.kind === 'text';
    case 'sized':
      return s.kind === 'list' || s.kind === 'text' || s.kind === 'map';
  }
}

/**
 * Check a template without any host: unknown names, keys, groups and filters, filter arguments,
 * filters given the wrong kind of value, a list or map rendered as text, a loop over what is not
 * a list, comparisons that can never hold. Blocks are walked whole, every branch, with each
 * loop's variable in scope. Every problem is reported, each at its offset. What depends on a
 * host's data (a host var that may be missing, which branch is taken) is left to rendering.
 */
export function checkTemplate(template: Template, schema: TemplateSchema = {}): TemplateError[] {
  const checker = new Checker(template.source, rootShapes(schema));
  checker.parts(template.parts);
  return checker.issues.sort((a, b) => a.offset - b.offset);
}

/**
 * The secrets a template names anywhere, in every branch, sorted: what to fetch before
 * rendering it. Rendering tells which of them a host's output actually used.
 */
export function templateSecrets(template: Template): string[] {
  const names = new Set<string>();
  for (const e of templateExprs(template.parts)) for (const s of secretFields(e)) names.add(String(s.name));
  return [...names].sort();
}

class Checker {
  readonly issues: TemplateError[] = [];
  /** Loop variables (and `loop`) in scope where the walk is. */
  private scope = new Map<string, Shape>();

  constructor(
    private readonly source: string,
    private readonly roots: Record<string, Shape>,
  ) {}

  issue(offset: number, message: string): void {
    this.issues.push({ offset, message });
  }

  parts(parts: readonly Part[]): void {
    for (const part of parts) {
      switch (part.kind) {
        case 'text':
          break;
        case 'expr': {
          const shape = this.walk(part.expr);
          const what = exprText(this.source, part.expr);
          if (shape.kind === 'list') {
            this.issue(
              part.expr.start,
              `${what} is a list; use join to make it one string, e.g. | join(',')`,
            );
          } else if (shape.kind === 'map') {
            this.issue(part.expr.start, `${what} is a map; pick one of its keys, as ${what}.KEY`);
          }
          break;
        }
        case 'if':
          for (const b of part.branches) {
            this.walk(b.test);
            this.parts(b.body);
          }
          if (part.else) this.parts(part.else);
          break;
        case 'for': {
          const list = this.walk(part.iterable);
          if (list.kind !== 'list' && list.kind !== 'any') {
            this.issue(
              part.iterable.start,
              `a loop needs a list, but ${exprText(this.source, part.iterable)} is ${kindWords(list)}`,
            );
          }
          const outer = this.scope;
          this.scope = new Map(outer)
            .set(part.target, list.kind === 'list' ? list.of : ANY)
            .set('loop', LOOP);
          this.parts(part.body);
          this.scope = outer;
          if (part.else) this.parts(part.else);
          break;
        }
      }
    }
  }

  walk(e: Expr): Shape {
    switch (e.kind) {
      case 'literal':
        return typeof e.value === 'number' ? NUMBER : typeof e.value === 'boolean' ? BOOLEAN : TEXT;
      case 'list': {
        const items = e.items.map((x) => this.walk(x));
        const first = items[0];
        return { kind: 'list', of: first && items.every((x) => sameKind(x, first)) ? first : ANY };
      }
      case 'name': {
        const local = this.scope.get(e.name);
        if (local) return local;
        if (e.name === 'loop') {
          this.issue(e.start, LOOP_OUTSIDE_FOR);
          return ANY;
        }
        if (e.name === 'secrets') {
          this.issue(e.start, 'secrets must name one secret, as secrets.NAME');
          return ANY;
        }
        const shape = this.roots[e.name];
        if (!shape) this.issue(e.start, unknownNameMessage(e.name));
        return shape ?? ANY;
      }
      case 'field': {
        if (e.object.kind === 'name' && e.object.name === 'secrets') {
          if (typeof e.key !== 'string')
            this.issue(e.keyStart, 'a secret is named by a string, as secrets.NAME');
          else if (!SECRET_NAME.test(e.key)) {
            this.issue(
              e.keyStart,
              `secret name "${e.key}" is not a safe file name: use letters, digits, ".", "_" and "-", not starting with "." or "-"`,
            );
          }
          return TEXT;
        }
        return this.field(this.walk(e.object), e.key, e.keyStart, exprText(this.source, e.object));
      }
      case 'filter':
        return this.filter(e);
      case 'compare':
        this.compare(e, this.walk(e.left), this.walk(e.right));
        return BOOLEAN;
      case 'not':
        this.walk(e.operand);
        return BOOLEAN;
      case 'logic': {
        const left = this.walk(e.left);
        const right = this.walk(e.right);
        return sameKind(left, right) ? left : ANY;
      }
    }
  }

  /** A comparison that cannot work, or can only ever give one answer, for the kinds at hand. */
  private compare(e: CompareExpr, left: Shape, right: Shape): void {
    const lt = exprText(this.source, e.left);
    const rt = exprText(this.source, e.right);
    const known = (s: Shape): boolean => s.kind !== 'any';
    const never = e.op === '==' || e.op === 'in' ? 'false' : 'true';
    switch (e.op) {
      case '<':
      case '<=':
      case '>':
      case '>=': {
        const bad = [
          [e.left, left, lt],
          [e.right, right, rt],
        ] as const;
        for (const [x, s, t] of bad) {
          if (s.kind !== 'any' && s.kind !== 'text' && s.kind !== 'number') {
            this.issue(x.start, `${e.op} compares two numbers or two strings, but ${t} is ${kindWords(s)}`);
            return;
          }
        }
        if (known(left) && known(right) && left.kind !== right.kind) {
          this.issue(
            e.opStart,
            `${e.op} compares two numbers or two strings, but ${lt} is ${kindWords(left)} and ${rt} is ${kindWords(right)}`,
          );
        }
        return;
      }
      case '==':
      case '!=':
        if (known(left) && known(right) && left.kind !== right.kind) {
          this.issue(
            e.opStart,
            `${lt} is ${kindWords(left)} and ${rt} is ${kindWords(right)}, so "${e.op}" is always ${never}`,
          );
        }
        return;
      case 'in':
      case 'not in':
        switch (right.kind) {
          case 'number':
          case 'boolean':
            this.issue(
              e.right.start,
              `"${e.op}" needs a list, a string or a map on its right, but ${rt} is ${kindWords(right)}`,
            );
            return;
          case 'text':
          case 'map':
            if (known(left) && left.kind !== 'text') {
              const where =
                right.kind === 'text'
                  ? 'looks for a string in a string'
                  : "looks for a key in a map's keys, which are strings";
              this.issue(e.left.start, `"${e.op}" ${where}, but ${lt} is ${kindWords(left)}`);
            }
            return;
          case 'list':
            if (known(left) && known(right.of) && left.kind !== right.of.kind) {
              // The Ansible habit: there groups['x'] holds host names, here it holds hosts.
              const group =
                e.right.kind === 'field' && e.right.object.kind === 'name' && e.right.object.name === 'groups'
                  ? String(e.right.key)
                  : 'NAME';
              const hint =
                right.of === HOST && left.kind === 'text'
                  ? `; compare names: ${lt} ${e.op} ${rt} | map(attribute='name'), or test a group: '${group}' ${e.op} host.groups`
                  : '';
              this.issue(
                e.left.start,
                `${lt} is ${kindWords(left)} and each item of ${rt} is ${right.of === HOST ? 'a host (a map)' : kindWords(right.of)}, so "${e.op}" is always ${never}${hint}`,
              );
            }
            return;
          default:
            return;
        }
    }
  }

  private field(object: Shape, key: string | number, at: number, text: string): Shape {
    switch (object.kind) {
      case 'any':
        return ANY;
      case 'text':
      case 'number':
      case 'boolean':
        this.issue(at, `${text} is ${kindWords(object)}, which has no keys`);
        return ANY;
      case 'list':
        if (typeof key === 'number') return object.of;
        this.issue(at, `${text} is a list: index it with a number, as [0], or use a filter such as first`);
        return ANY;
      case 'map': {
        const k = String(key);
        const known = object.fields && Object.hasOwn(object.fields, k) ? object.fields[k] : undefined;
        if (known) return known;
        if (object.values) return object.values;
        this.issue(at, object.unknown?.(k, text) ?? `${text} has no key "${k}"`);
        return ANY;
      }
    }
  }

  private filter(e: FilterExpr): Shape {
    const input = this.walk(e.input);
    const def = FILTERS.get(e.name);
    if (!def) {
      this.issue(e.nameStart, unknownFilterMessage(e.name));
      e.args.forEach((a) => this.walk(a.value));
      return ANY;
    }
    const argShapes = new Map(e.args.map((a) => [a, this.walk(a.value)]));
    const bound = bindArgs(def, e.args, e.nameStart);
    if (!bound.ok) {
      this.issue(bound.offset, bound.message);
      return ANY;
    }
    if (!fits(def.accepts, input)) {
      const what = exprText(this.source, e.input);
      const hint = input.kind === 'list' && def.accepts === 'text' ? '; join it first, e.g. | join(",")' : '';
      this.issue(
        e.nameStart,
        `${def.name} takes ${acceptsWords(def.accepts)}, but ${what} is ${kindWords(input)}${hint}`,
      );
      return ANY;
    }
    if (def.name === 'map') return this.map(e, input, bound.bound.named, bound.bound.rest);
    switch (def.output) {
      case 'text':
        return TEXT;
      case 'number':
        return NUMBER;
      case 'element':
        return input.kind === 'list' ? input.of : input.kind === 'text' ? TEXT : ANY;
      default:
        if (def.name === 'default') {
          const fallback = e.args[0] ? argShapes.get(e.args[0]) : undefined;
          if (fallback?.kind === 'list' && input.kind === 'list') {
            // `| default([])` keeps what is known of the items.
            return fallback.of.kind === 'any' || sameKind(fallback.of, input.of)
              ? input
              : { kind: 'list', of: ANY };
          }
          return fallback && sameKind(fallback, input) ? input : ANY;
        }
        return ANY;
    }
  }

  /** `map`: a filter by name over each item, or a key path into each item. */
  private map(e: FilterExpr, input: Shape, named: Map<string, Expr>, rest: Expr[]): Shape {
    const item = input.kind === 'list' ? input.of : ANY;
    const nameExpr = named.get('name');
    const pathExpr = nameExpr ?? named.get('attribute');
    if (pathExpr?.kind !== 'literal' || typeof pathExpr.value !== 'string') return { kind: 'list', of: ANY };
    const inner = nameExpr ? FILTERS.get(pathExpr.value) : undefined;
    if (inner) {
      const positional = inner.params.filter((p) => p.keyword !== 'only' && !p.rest);
      if (rest.length > positional.length && !inner.params.some((p) => p.rest)) {
        this.issue(
          rest[positional.length]!.start,
          `${inner.name} takes at most ${positional.length} argument(s): ${inner.usage}`,
        );
      } else if (positional.slice(rest.length).some((p) => p.required)) {
        this.issue(pathExpr.start, `${inner.name} needs arguments: ${inner.usage}`);
      } else if (!fits(inner.accepts, item)) {
        this.issue(
          pathExpr.start,
          `${inner.name} takes ${acceptsWords(inner.accepts)}, but each item is ${kindWords(item)}`,
        );
      }
      return { kind: 'list', of: inner.output === 'text' ? TEXT : inner.output === 'number' ? NUMBER : ANY };
    }
    if (nameExpr && rest.length > 0) {
      this.issue(
        pathExpr.start,
        `map('${pathExpr.value}', ...): there is no filter "${pathExpr.value}" to pass the arguments to`,
      );
      return { kind: 'list', of: ANY };
    }
    let shape = item;
    let text = `each item of ${exprText(this.source, e.input)}`;
    for (const seg of pathExpr.value.split('.')) {
      const key = /^\d+$/.test(seg) ? Number(seg) : seg;
      const before = this.issues.length;
      shape = this.field(shape, key, pathExpr.start, text);
      if (this.issues.length > before) return { kind: 'list', of: ANY };
      text += `.${seg}`;
    }
    return { kind: 'list', of: shape };
  }
}

function sameKind(a: Shape, b: Shape): boolean {
  return a.kind === b.kind && a.kind !== 'list' && a.kind !== 'map';
}
