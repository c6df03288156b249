import type { ConfigIssue } from '../model/errors.js';
import type { ServiceSpec, TemplateSource } from '../model/service.js';
import { secretFields, templateExprs, type Template, type TemplateError } from '../template/ast.js';
import { checkTemplate, type TemplateSchema } from '../template/check.js';
import { looksLikeTemplate, parseTemplate } from '../template/parse.js';
import { renderRedacted, renderTemplate, type RenderContext } from '../template/render.js';
import { FIELD_LIST, SERVICE_TEMPLATE_FIELDS } from './fields.js';
import { byPosition } from './issues.js';
import { dotted, scalarSource, type YamlFile, type YamlPath } from './yaml-file.js';

/**
 * Secrets only in env values: the env file is 0600 and read by the container alone, whereas
 * command, labels, user, volumes and the rest show in `docker inspect` and `ps` to anyone
 * allowed to list containers.
 */
const SECRETS_ONLY_IN_ENV =
  'secrets can be used only in env_vars, which go to the 0600 env file; here the value would show ' +
  'in docker inspect';

/** 1-based line and column in the file of the character at `offset` in the value YAML read from `src`. */
export function positionInValue(src: TemplateSource, offset: number): { line: number; col: number } {
  return positionInRaw(src, rawOffset(src.raw, offset));
}

/** Line and column of the character at `at` in the scalar as written. */
function positionInRaw(src: TemplateSource, at: number): { line: number; col: number } {
  const before = src.raw.slice(0, at);
  const nl = before.lastIndexOf('\n');
  if (nl < 0) return { line: src.line, col: src.col + at };
  return { line: src.line + before.split('\n').length - 1, col: at - nl };
}

/**
 * Where the value's character `offset` is written inside the scalar. Exact for one-line plain,
 * single- and double-quoted scalars; a block scalar, or a character after a folded line break,
 * maps to the scalar's start.
 */
function rawOffset(raw: string, offset: number): number {
  const q = raw[0];
  if (q === '|' || q === '>') return 0;
  if (q !== "'" && q !== '"') return raw.slice(0, offset).includes('\n') || offset > raw.length ? 0 : offset;
  let i = 1;
  for (let v = 0; v < offset; v++) {
    const c = raw[i];
    if (c === undefined || i >= raw.length - 1 || c === '\n' || c === '\r') return 0;
    if (q === "'") i += c === "'" ? 2 : 1;
    else if (c !== '\\') i += 1;
    else {
      const e = raw[i + 1];
      if (e === 'x') i += 4;
      else if (e === 'u') i += 6;
      else if (e === 'U') {
        // One code point beyond the BMP is two UTF-16 units of the value.
        if (parseInt(raw.slice(i + 2, i + 10), 16) > 0xffff) v++;
        i += 10;
      } else if (e === '\n' || e === '\r') return 0;
      else i += 2;
    }
  }
  return i;
}

/** Every `secrets.NAME` in a template, blocks included, where it is written. */
function secretRefs(t: Template): number[] {
  return templateExprs(t.parts).flatMap((e) => secretFields(e).map((s) => s.expr.start));
}

/** Everything wrong with one value's template, each at an offset into the value. */
function problems(
  text: string,
  schema: TemplateSchema,
  allowSecrets: boolean,
  noSecret: string,
): TemplateError[] {
  const parsed = parseTemplate(text);
  if (!parsed.ok) return [parsed.error];
  const out = checkTemplate(parsed.template, schema);
  if (!allowSecrets)
    out.push(...secretRefs(parsed.template).map((offset) => ({ offset, message: noSecret })));
  return out.sort((a, b) => a.offset - b.offset);
}

/** A templated value inside a file, relative to the body holding it. */
interface Candidate {
  rel: YamlPath;
  text: string;
  secrets: boolean;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The values of a service body (or of `defaults`) that are templates: strings only, as YAML read them. */
function serviceCandidates(body: Record<string, unknown>): Candidate[] {
  const out: Candidate[] = [];
  const add = (rel: YamlPath, v: unknown, secrets = false): void => {
    if (typeof v === 'string' && looksLikeTemplate(v)) out.push({ rel, text: v, secrets });
  };
  for (const [field, { template: t }] of FIELD_LIST) {
    const v = body[field];
    if (!t || v === undefined) continue;
    if (t.shape === 'map') {
      if (isMap(v)) for (const [k, item] of Object.entries(v)) add([field, k], item, t.secrets);
    } else if (t.shape === 'keys') {
      if (isMap(v)) for (const k of t.keys) add([field, k], v[k]);
    } else if (Array.isArray(v)) v.forEach((item, i) => add([field, i], item));
    // A command written as one line is checked whole, before it is split into arguments.
    else add([field], v);
  }
  return out;
}

/**
 * Check every template in a service body (or berth.yaml `defaults`) at `base` in `y`. Problems
 * become issues at the offending character; the templated values' sources come back keyed by
 * their path relative to the body (`env_vars.DB_URL`), for rendering later.
 */
export function checkServiceTemplates(
  y: YamlFile,
  base: YamlPath,
  body: Record<string, unknown>,
  schema: TemplateSchema,
  issues: ConfigIssue[],
): Record<string, TemplateSource> {
  const sources: Record<string, TemplateSource> = {};
  for (const c of serviceCandidates(body)) {
    const src = scalarSource(y, [...base, ...c.rel]);
    sources[dotted(c.rel)] = src;
    for (const p of problems(c.text, schema, c.secrets, SECRETS_ONLY_IN_ENV)) {
      issues.push(located(src, src.path, p.offset, p.message));
    }
  }
  return sources;
}

/**
 * Check the templates in berth.yaml `load_balancer` settings (every string but `provider`, at any
 * depth). Secrets are refused there for now: the drain providers read no secrets yet.
 */
export function checkSettingsTemplates(
  y: YamlFile,
  base: YamlPath,
  settings: Record<string, unknown>,
  schema: TemplateSchema,
  issues: ConfigIssue[],
): void {
  for (const [k, v] of Object.entries(settings)) {
    if (k === 'provider') continue;
    mapStrings(v, [...base, k], (text, path) => {
      if (!looksLikeTemplate(text)) return text;
      const src = scalarSource(y, path);
      const noSecret = 'secrets cannot be used in load_balancer settings yet';
      for (const p of problems(text, schema, false, noSecret))
        issues.push(located(src, src.path, p.offset, p.message));
      return text;
    });
  }
}

/**
 * Every string inside a setting (itself, in lists, in maps at any depth) replaced by `fn`'s
 * answer, with its path: the one walk for checking templates at validate time and rendering
 * them for a host.
 */
export function mapStrings(
  v: unknown,
  path: YamlPath,
  fn: (text: string, path: YamlPath) => unknown,
): unknown {
  if (typeof v === 'string') return fn(v, path);
  if (Array.isArray(v)) return v.map((item, i) => mapStrings(item, [...path, i], fn));
  if (isMap(v))
    return Object.fromEntries(Object.entries(v).map(([k, item]) => [k, mapStrings(item, [...path, k], fn)]));
  return v;
}

function located(src: TemplateSource, path: string, offset: number, message: string): ConfigIssue {
  return { file: src.file, ...positionInValue(src, offset), path, message, severity: 'error' };
}

/** What a service renders against on one host; `service` is filled in from the spec itself. */
export type HostContext = Omit<RenderContext, 'service'>;

/**
 * One service's templated values rendered for a host. Either the spec to run (secrets in clear
 * in `env`, with `secretEnv` and `redactedEnv` saying how to show them) or every problem found,
 * each at file:line:col, so the caller can leave this one service alone.
 */
export function renderService(
  spec: ServiceSpec,
  host: HostContext,
): { ok: true; spec: ServiceSpec } | { ok: false; issues: ConfigIssue[] } {
  const ctx: RenderContext = { ...host, service: serviceFields(spec) };
  const sources = spec.templates ?? {};
  const issues: ConfigIssue[] = [];
  const fail = (key: string, src: TemplateSource | undefined, at: number, message: string, raw = false) => {
    const text = `${message} (service ${spec.name} is left as it runs)`;
    if (!src) issues.push({ file: spec.file, path: key, message: text, severity: 'error' });
    else {
      const pos = raw ? positionInRaw(src, at) : positionInValue(src, at);
      issues.push({ file: src.file, ...pos, path: src.path, message: text, severity: 'error' });
    }
  };

  /**
   * One value. `key` names its source; `line` is set for an item split from a one-line command,
   * whose offsets are found again in the line as written.
   */
  const one = (
    value: string,
    key: string,
    opts: { secrets?: boolean; lineKey?: string } = {},
  ): { value: string; template?: Template; secretsUsed: string[] } | undefined => {
    if (!looksLikeTemplate(value)) return { value, secretsUsed: [] };
    const src = sources[opts.lineKey ?? key];
    const parsed = parseTemplate(value);
    const at = (offset: number): { at: number; raw: boolean } => {
      if (!opts.lineKey || !src || !parsed.ok) return { at: offset, raw: false };
      const part = parsed.template.parts.find((p) => p.start <= offset && offset < p.end);
      const found = part ? src.raw.indexOf(value.slice(part.start, part.end)) : -1;
      return found < 0 ? { at: 0, raw: true } : { at: found + offset - part!.start, raw: true };
    };
    if (!parsed.ok) {
      const p = at(parsed.error.offset);
      fail(opts.lineKey ?? key, src, p.at, parsed.error.message, p.raw);
      return undefined;
    }
    const r = renderTemplate(parsed.template, ctx);
    if (!r.ok) {
      const p = at(r.error.offset);
      fail(opts.lineKey ?? key, src, p.at, r.error.message, p.raw);
      return undefined;
    }
    if (r.secretsUsed.length && !opts.secrets) {
      fail(opts.lineKey ?? key, src, 0, SECRETS_ONLY_IN_ENV);
      return undefined;
    }
    return { value: r.value, template: parsed.template, secretsUsed: r.secretsUsed };
  };

  const out: ServiceSpec = { ...spec };
  delete out.templates;
  const set = (key: string, value: unknown): void => void Object.assign(out, { [key]: value });
  const secretEnv: Record<string, string[]> = {};
  const redactedEnv: Record<string, string> = {};
  for (const [field, f] of FIELD_LIST) {
    const t = f.template;
    const v: unknown = spec[f.spec];
    if (!t || v === undefined) continue;
    if (t.shape === 'value') {
      set(f.spec, one(v as string, field)?.value ?? v);
    } else if (t.shape === 'list') {
      // Items of a list written as one line are found again in that line.
      const lineKey = sources[field] ? field : undefined;
      set(
        f.spec,
        (v as string[]).map((a, i) => one(a, dotted([field, i]), { lineKey })?.value ?? a),
      );
    } else if (t.shape === 'keys') {
      const nested = { ...(v as Record<string, unknown>) };
      for (const k of t.keys) {
        const x = nested[k];
        if (typeof x === 'string') nested[k] = one(x, dotted([field, k]))?.value ?? x;
      }
      set(f.spec, nested);
    } else {
      const map: Record<string, string> = {};
      for (const [k, x] of Object.entries(v as Record<string, string>)) {
        const r = one(x, dotted([field, k]), { secrets: t.secrets });
        if (!r) continue;
        map[k] = r.value;
        if (t.secrets && r.secretsUsed.length && r.template) {
          secretEnv[k] = r.secretsUsed;
          // Same context, same lookups: it cannot fail where the clear render did not.
          const shown = renderRedacted(r.template, ctx);
          redactedEnv[k] = shown.ok ? shown.value : r.secretsUsed.map((s) => `<secret:${s}>`).join('');
        }
      }
      set(f.spec, map);
    }
  }

  // In file order, whichever field each value belongs to.
  issues.sort(byPosition);
  if (issues.length) return { ok: false, issues };
  if (Object.keys(secretEnv).length) {
    out.secretEnv = secretEnv;
    out.redactedEnv = redactedEnv;
  }
  return { ok: true, spec: out };
}

function serviceFields(spec: ServiceSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of SERVICE_TEMPLATE_FIELDS) {
    const v = (spec as unknown as Record<string, unknown>)[f];
    if (v !== undefined) out[f] = v;
  }
  return out;
}
