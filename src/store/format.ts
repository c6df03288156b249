import type { ActionResult, HistoryRow } from './types.js';

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

const HEADERS = ['WHEN', 'HOST', 'SERVICE', 'ACTION', 'IMAGE', 'BUILD', 'RESULT'] as const;

const RESULT_COLOR: Record<ActionResult, number> = { succeeded: 32, failed: 31, running: 33, skipped: 2 };

/**
 * `berth history` for people: one aligned line per action, newest first as given. `--json`
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
function images(r: HistoryRow): string {
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

function build(r: HistoryRow): string {
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
