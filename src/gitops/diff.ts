/**
 * What differs between two environments, service by service. Pure: two loaded repos in, rows
 * out. Services are compared as the repo writes them with berth.yaml defaults merged, before any
 * host renders them: a value that uses `{{ secrets.x }}` is shown as that template, so no secret
 * is ever read, let alone printed.
 */
import type { ServiceSpec, StateRepo } from '../model/service.js';
import { describeRelease, shortImage } from './release.js';

/** One value that differs: the target's value and the source's, as text (undefined = absent). */
export interface FieldDiff {
  /** `image`, `build`, `env LOG_LEVEL`, `hosts`, `service` (the service exists on one side only). */
  what: string;
  /** The value in the target environment (`--to`). */
  to?: string;
  /** The value in the source environment (`--from`). */
  from?: string;
}

export interface ServiceDiff {
  service: string;
  /** `new`: only in the source; `gone`: only in the target; `changed`: in both, differing. */
  status: 'new' | 'gone' | 'changed';
  /** Whether image, gitCommit or buildNumber differ (what promote carries). */
  release: boolean;
  fields: FieldDiff[];
}

/** Fields a service file and the plan spell differently; every other field is the same word. */
const FILE_NAMES: Partial<Record<keyof ServiceSpec, string>> = { env: 'env_vars' };
/** Not part of what the service is: where it was read from, and render-time bookkeeping. */
const NOT_COMPARED = new Set<keyof ServiceSpec>([
  'name',
  'file',
  'templates',
  'secretEnv',
  'redactedEnv',
  'secretDigests',
]);
const RELEASE = new Set<keyof ServiceSpec>(['image', 'gitCommit', 'buildNumber']);

/** The field's name as a service file writes it. */
export function fileName(key: keyof ServiceSpec): string {
  return FILE_NAMES[key] ?? key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function text(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function build(s: ServiceSpec | undefined): string | undefined {
  if (!s || (s.buildNumber === undefined && s.gitCommit === undefined)) return undefined;
  return describeRelease(s).replace(/^build /, '');
}

/** The fields of one service that differ between target `to` and source `from`. */
export function diffService(to: ServiceSpec, from: ServiceSpec): FieldDiff[] {
  const out: FieldDiff[] = [];
  const push = (what: string, a: string | undefined, b: string | undefined) => {
    if (a !== b)
      out.push({ what, ...(a !== undefined ? { to: a } : {}), ...(b !== undefined ? { from: b } : {}) });
  };
  if (to.buildNumber !== from.buildNumber || to.gitCommit !== from.gitCommit)
    push('build', build(to), build(from));
  push('image', to.image, from.image);
  for (const key of [...new Set([...Object.keys(to.env), ...Object.keys(from.env)])].sort()) {
    push(`env ${key}`, to.env[key], from.env[key]);
  }
  const keys = new Set([...Object.keys(to), ...Object.keys(from)] as Array<keyof ServiceSpec>);
  for (const key of [...keys].sort()) {
    if (NOT_COMPARED.has(key) || RELEASE.has(key) || key === 'env') continue;
    push(fileName(key), text(to[key]), text(from[key]));
  }
  return out;
}

/**
 * Every service that differs between the target (`to`) and the source (`from`), by name; and how
 * many are the same.
 */
export function diffRepos(to: StateRepo, from: StateRepo): { services: ServiceDiff[]; same: string[] } {
  const a = new Map(to.services.map((s) => [s.name, s]));
  const b = new Map(from.services.map((s) => [s.name, s]));
  const services: ServiceDiff[] = [];
  const same: string[] = [];
  for (const name of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const t = a.get(name);
    const f = b.get(name);
    if (!t || !f) {
      const s = (t ?? f)!;
      const value = build(s) ? `build ${build(s)}` : shortImage(s.image);
      services.push({
        service: name,
        status: t ? 'gone' : 'new',
        release: true,
        fields: [{ what: 'service', ...(t ? { to: value } : { from: value }) }],
      });
      continue;
    }
    const fields = diffService(t, f);
    if (!fields.length) {
      same.push(name);
      continue;
    }
    const release = fields.some((x) => x.what === 'build' || x.what === 'image');
    services.push({ service: name, status: 'changed', release, fields });
  }
  return { services, same };
}

/** One side of a diff, as people name it. */
export interface Side {
  env: string;
  branch: string;
  commit: string;
}

const MAX_CELL = 60;

function cell(v: string | undefined, what: string): string {
  if (v === undefined) return '-';
  const shown = what === 'image' ? shortImage(v) : v;
  // eslint-disable-next-line no-control-regex
  const flat = shown.replace(/[\s\u0000-\u001f\u007f]+/g, ' ');
  return flat.length > MAX_CELL ? `${flat.slice(0, MAX_CELL - 1)}…` : flat;
}

/** The diff as an aligned table for people: SERVICE, WHAT, then the target's and the source's values. */
export function formatDiff(d: { services: ServiceDiff[]; same: string[] }, to: Side, from: Side): string {
  const head = `${from.env} (${from.commit.slice(0, 7)}) compared with ${to.env} (${to.commit.slice(0, 7)})`;
  if (!d.services.length) return `${head}: no differences in ${d.same.length} service(s).\n`;
  const header = ['SERVICE', 'WHAT', to.env, from.env];
  const rows = d.services.flatMap((s) =>
    s.fields.map((f) => [s.service, f.what, cell(f.to, f.what), cell(f.from, f.what)]),
  );
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return (
    `${head}:\n` +
    [line(header), ...rows.map(line)].join('\n') +
    `\n${d.services.length} service(s) differ, ${d.same.length} the same.\n`
  );
}

/** Markdown cell text: pipes and backticks escaped, kept on one line. */
function md(v: string | undefined, what: string): string {
  return v === undefined ? '—' : `\`${cell(v, what).replace(/`/g, "'").replace(/\|/g, '\\|')}\``;
}

/** A markdown table of the given services' differences (a pull request body). */
export function markdownTable(
  services: ServiceDiff[],
  to: Side,
  from: Side,
  only?: (f: FieldDiff) => boolean,
): string {
  const rows = services.flatMap((s) =>
    s.fields
      .filter(only ?? (() => true))
      .map((f) => `| ${s.service} | ${f.what} | ${md(f.to, f.what)} | ${md(f.from, f.what)} |`),
  );
  return (
    [`| service | what | ${to.env} now | from ${from.env} |`, '| --- | --- | --- | --- |', ...rows].join(
      '\n',
    ) + '\n'
  );
}
