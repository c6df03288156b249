import type { ActionRecord, ApplyResult, DeployEntry, HistoryRow, HostApply } from './types.js';

/** How `formatHistory` renders. */
export interface HistoryFormat {
  /** ANSI colours on the result column; only for a person at a terminal. */
  color: boolean;
  /**
   * Show times in UTC (suffixed `Z`) instead of the machine's local zone. Tests use it so golden
   * text does not depend on where they run; people reading their own host's log want local.
   */
  utc?: boolean;
}

const HEADERS = ['WHEN', 'HOST', 'SERVICE', 'ACTION', 'IMAGE', 'BUILD', 'TOOK', 'RESULT'] as const;

const RESULT_COLOR: Record<ApplyResult, number> = { succeeded: 32, failed: 31, running: 33, cancelled: 33 };

/**
 * `berth history --steps` for people: one aligned line per step, newest first as given. `--json`
 * prints the rows themselves, which are already plain data with stable camelCase keys, so
 * there is no separate JSON shape to keep in step with this one.
 */
export function formatHistory(rows: readonly HistoryRow[], opts: HistoryFormat): string {
  if (rows.length === 0) return 'No deployments recorded.\n';
  const table = rows.map((r) => [
    when(r.startedAt, opts.utc ?? false),
    clean(r.host ?? '-'),
    clean(r.service),
    clean(r.action),
    images(r),
    build(r),
    r.durationMs === undefined ? '-' : took(r.durationMs),
    clean(r.message ? `${r.result}: ${r.message}` : r.result),
  ]);
  const widths = HEADERS.map((h, i) => Math.max(h.length, ...table.map((cells) => cells[i]!.length)));
  const line = (cells: readonly string[], paint: (text: string) => string = (t) => t): string => {
    const last = cells.length - 1;
    const padded = cells.map((c, i) => (i === last ? paint(c) : c.padEnd(widths[i]!)));
    return padded.join('  ');
  };
  const out = [line(HEADERS)];
  rows.forEach((r, i) => {
    const code = RESULT_COLOR[r.result];
    out.push(line(table[i]!, (t) => (opts.color && code ? `\u001b[${code}m${t}\u001b[0m` : t)));
  });
  return out.join('\n') + '\n';
}

const ENTRY_HEADERS = ['WHEN', 'ENV', 'COMMIT', 'BY', 'HOSTS', 'RESULT', 'DEPLOY'] as const;

/**
 * `berth history` for people: one line per entry (a deploy across hosts, or one apply), newest
 * first, with a line per host beneath it: how it ended, how long it took, what changed, how long
 * it was out of rotation and why it failed. Every step with its timing is in `--steps` and
 * `--json`.
 */
export function formatDeploys(entries: readonly DeployEntry[], opts: HistoryFormat): string {
  if (entries.length === 0) return 'No deployments recorded.\n';
  const utc = opts.utc ?? false;
  const paint = (result: ApplyResult, t: string) =>
    opts.color ? `\u001b[${RESULT_COLOR[result]}m${t}\u001b[0m` : t;
  const heads = entries.map((e) => [
    when(e.startedAt, utc),
    clean(e.env ?? e.ref ?? '-'),
    clean(e.stateCommit?.slice(0, 12) ?? '-'),
    clean(e.command ?? '-'),
    String(e.hosts.length),
    e.result,
    clean(e.deployId ?? '-'),
  ]);
  const widths = ENTRY_HEADERS.map((h, i) => Math.max(h.length, ...heads.map((c) => c[i]!.length)));
  const row = (cells: readonly string[], result?: ApplyResult) =>
    cells
      .map((c, i) => {
        const padded = i === cells.length - 1 ? c : c.padEnd(widths[i]!);
        return i === 5 && result ? paint(result, c) + padded.slice(c.length) : padded;
      })
      .join('  ')
      .trimEnd();
  const out = [row(ENTRY_HEADERS)];
  entries.forEach((e, i) => {
    out.push(row(heads[i]!, e.result));
    const hostCells = e.hosts.map((h) => [
      clean(h.host ?? '-'),
      h.result,
      h.finishedAt ? took(Date.parse(h.finishedAt) - Date.parse(h.startedAt)) : '-',
      hostSummary(h),
    ]);
    const hw = [0, 1, 2].map((c) => Math.max(...hostCells.map((x) => x[c]!.length)));
    e.hosts.forEach((h, j) => {
      const [name, result, time, what] = hostCells[j]!;
      out.push(
        `  ${name!.padEnd(hw[0]!)}  ${paint(h.result, result!)}${' '.repeat(hw[1]! - result!.length)}  ${time!.padEnd(hw[2]!)}  ${what}`.trimEnd(),
      );
    });
  });
  return out.join('\n') + '\n';
}

const CHANGES = new Set(['create', 'recreate', 'adopt', 'start', 'remove']);

/** What one host did, in a few words: its changes, its time out of rotation, why it failed. */
function hostSummary(h: HostApply): string {
  const parts: string[] = [];
  const changes = h.steps.filter((s) => CHANGES.has(s.action));
  const changed = changes.map((s) => {
    const detail = s.action === 'remove' ? 'removed' : s.action === 'start' ? 'started' : images(s);
    const b = build(s);
    const ci = b === '-' ? '' : s.buildNumber ? `, build ${b}` : `, commit ${b}`;
    return `${clean(s.service)} ${detail}${ci}`;
  });
  const envOnly = [
    ...new Set(
      h.steps
        .filter((s) => s.action === 'write-env' && !changes.some((c) => c.service === s.service))
        .map((s) => s.service),
    ),
  ].map((s) => `${clean(s)} env file`);
  if (changed.length || envOnly.length) parts.push([...changed, ...envOnly].join(', '));
  const lease = h.steps.find((s) => s.action === 'lease');
  if (lease?.durationMs !== undefined && lease.durationMs >= 1000)
    parts.push(`waited ${took(lease.durationMs)} for a lease`);
  const out = outOfRotation(h.steps);
  if (out !== undefined) parts.push(`${took(out)} out of rotation`);
  if (h.result !== 'succeeded' && h.message) parts.push(`${h.result}: ${clean(h.message)}`);
  return parts.join('; ');
}

/** From the drain's start to the end of the rejoin that followed it. */
function outOfRotation(steps: readonly ActionRecord[]): number | undefined {
  const drain = steps.find((s) => s.action === 'drain');
  const back = steps.find((s) => (s.action === 'undrain' || s.action === 'restore') && s.finishedAt);
  if (!drain || !back?.finishedAt) return undefined;
  return Date.parse(back.finishedAt) - Date.parse(drain.startedAt);
}

/** `850 ms`, `4.2 s`, `3 min 5 s`: as precise as a person cares. */
function took(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** `2024-05-01 14:03`: ISO order (sorts and greps well) at the minute people think in. */
export function when(isoTime: string, utc: boolean): string {
  const d = new Date(isoTime);
  if (Number.isNaN(d.getTime())) return clean(isoTime);
  const p = (v: number) => String(v).padStart(2, '0');
  if (utc) {
    return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}Z`;
  }
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/**
 * `api:1.4.2 → api:1.4.3`. The registry and namespace are dropped (one host's services rarely
 * differ only there), but the last name part stays so a switch of image is still visible.
 * When only the digest moved under the same tag, the digests show, since that is the change.
 */
function images(r: ActionRecord): string {
  const from = r.fromImage ? short(r.fromImage) : undefined;
  const to = r.toImage ? short(r.toImage) : undefined;
  if (from && to && from === to) {
    const fd = r.fromDigest && shortDigest(r.fromDigest);
    const td = r.toDigest && shortDigest(r.toDigest);
    return fd && td && fd !== td ? `${to} @${fd} → @${td}` : to;
  }
  if (from && to) return `${from} → ${to}`;
  if (to) return `→ ${to}`;
  if (from) return `${from} →`;
  return '-';
}

/**
 * Last path part with its tag, or its digest when there is no tag; `latest` when neither. The
 * one short form of an image berth shows, here and in the CI commands' messages.
 */
export function short(ref: string): string {
  const at = ref.indexOf('@');
  const name = at >= 0 ? ref.slice(0, at) : ref;
  const digest = at >= 0 ? ref.slice(at + 1) : undefined;
  const base = name.slice(name.lastIndexOf('/') + 1);
  const colon = base.lastIndexOf(':');
  if (colon >= 0) return clean(base);
  if (digest) return clean(`${base}@${shortDigest(digest)}`);
  return clean(`${base}:latest`);
}

function shortDigest(d: string): string {
  return d.replace(/^sha256:/, '').slice(0, 12);
}

function build(r: ActionRecord): string {
  const commit = r.gitCommit ? clean(r.gitCommit.slice(0, 7)) : undefined;
  if (r.buildNumber && commit) return `${clean(r.buildNumber)} (${commit})`;
  return r.buildNumber ? clean(r.buildNumber) : (commit ?? '-');
}

/**
 * One line per row, whatever was recorded: Docker and git error messages carry newlines and,
 * now and then, terminal escape codes that would wreck the table or the user's terminal.
 */
function clean(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\s\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
}
