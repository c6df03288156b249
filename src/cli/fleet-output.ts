/**
 * How fleet commands look: a live line per host while a deploy runs (on a terminal), one plain
 * line per finished host when piped, and tables at the end.
 */
import type { FleetHostResult, FleetOutcome, FleetReporter } from '../fleet/deploy.js';
import type { HostStatus } from '../fleet/status.js';
import { missing } from '../fleet/status.js';
import { paint, type Color } from './output.js';

const STATUS_COLOR: Record<string, Color> = {
  applied: 'green',
  'no-op': 'green',
  held: 'yellow',
  blocked: 'red',
  failed: 'red',
  cancelled: 'yellow',
  unreachable: 'red',
  busy: 'yellow',
  skipped: 'dim',
};

export const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Columns padded to their widest cell; colour codes do not count. */
export function table(rows: string[][]): string {
  // eslint-disable-next-line no-control-regex
  const width = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '').length;
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => width(r[i] ?? ''))));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(widths[i]! - width(c))))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function doneLine(r: FleetHostResult, color: boolean): string {
  const what =
    r.status === 'applied'
      ? `${r.changes} change(s)`
      : r.status === 'no-op'
        ? 'up to date'
        : r.status === 'skipped'
          ? ''
          : '';
  const parts = [r.host, paint(color, STATUS_COLOR[r.status] ?? 'dim', r.status), what];
  if (r.durationMs) parts.push(seconds(r.durationMs));
  if (r.error) parts.push(r.error);
  return parts.filter(Boolean).join('  ');
}

/**
 * Progress of a deploy. On a terminal: one line per host, redrawn in place (at most ten times a
 * second) with what it is doing. Piped: one line per host when it is done, nothing else.
 */
export function fleetConsole(stream: NodeJS.WriteStream, color: boolean): FleetReporter & { end(): void } {
  const tty = Boolean(stream.isTTY);
  const lines = new Map<string, string>();
  let drawn = 0;
  let timer: NodeJS.Timeout | undefined;
  const draw = () => {
    timer = undefined;
    let out = drawn ? `\u001b[${drawn}A` : '';
    for (const [host, text] of lines)
      out += `\r\u001b[2K${text.startsWith(host) ? text : `${host}  ${text}`}\n`;
    drawn = lines.size;
    stream.write(out);
  };
  const later = () => {
    if (!timer) timer = setTimeout(draw, 100);
  };
  return {
    progress(host, phase) {
      if (!tty) return;
      lines.set(host, `${host}  ${paint(color, 'cyan', phase)} …`);
      later();
    },
    done(r) {
      if (!tty) {
        stream.write(doneLine(r, false) + '\n');
        return;
      }
      lines.set(r.host, doneLine(r, color));
      later();
    },
    end() {
      if (timer) clearTimeout(timer);
      if (tty && lines.size) draw();
    },
  };
}

/** The table at the end of a deploy, and one sentence. */
export function deploySummary(o: FleetOutcome, env: string, color: boolean): string {
  const rows = [['HOST', 'ADDRESS', 'BATCH', 'RESULT', 'CHANGES', 'TIME', 'NOTE']];
  for (const h of o.hosts) {
    rows.push([
      h.host,
      h.address,
      String(h.batch),
      paint(color, STATUS_COLOR[h.status] ?? 'dim', h.status),
      h.status === 'skipped' && !h.changes ? '-' : String(h.changes),
      h.durationMs ? seconds(h.durationMs) : '-',
      h.error ?? '',
    ]);
  }
  const done = o.hosts.filter((h) => h.status === 'applied' || h.status === 'no-op').length;
  const at = `${env}${o.commit ? ` at ${o.commit.slice(0, 12)}` : ''}`;
  const end = o.ok
    ? paint(color, 'green', `Deployed ${at} to ${done} of ${o.hosts.length} host(s).`)
    : paint(
        color,
        o.cancelled ? 'yellow' : 'red',
        `Deploy of ${at}: ${done} of ${o.hosts.length} host(s) done; ${o.stopped ?? 'some hosts did not converge'}.`,
      );
  return `${table(rows)}\n${end}\n`;
}

const short = (image: string | undefined) => (image ? (image.split('/').pop() ?? image) : '-');

/** `berth status`: one row per host and service. */
export function statusTable(statuses: HostStatus[], color: boolean): string {
  const rows = [['HOST', 'SERVICE', 'DESIRED', 'RUNNING', 'HEALTH', 'DRIFT']];
  const healthColor: Record<string, Color> = {
    healthy: 'green',
    unhealthy: 'red',
    starting: 'yellow',
    stopped: 'red',
    missing: 'red',
    unknown: 'dim',
  };
  for (const s of statuses) {
    if (!s.reachable) {
      rows.push([s.host, '-', '-', '-', paint(color, 'red', 'unreachable'), s.error ?? '']);
      continue;
    }
    if (!s.services.length) rows.push([s.host, '-', '-', '-', '-', s.inSync ? 'in sync' : (s.error ?? '')]);
    for (const svc of s.services) {
      const build = (b?: string) => (b ? ` #${b}` : '');
      rows.push([
        s.host,
        svc.service,
        svc.desired ? `${short(svc.desired.image)}${build(svc.desired.buildNumber)}` : '(not in repo)',
        svc.running
          ? `${short(svc.running.image)}${build(svc.running.buildNumber)}${svc.running.state === 'running' ? '' : ` (${svc.running.state})`}`
          : '-',
        paint(color, healthColor[svc.health] ?? 'dim', svc.health),
        svc.drift.length ? paint(color, 'yellow', svc.drift.join('; ')) : 'in sync',
      ]);
    }
  }
  const lines = [table(rows)];
  for (const s of statuses) {
    const notes: string[] = [];
    if (s.busy)
      notes.push(
        `${s.busy.command} (pid ${s.busy.pid} on ${s.busy.machine}) is acting on it since ${s.busy.since}`,
      );
    if (s.lastApply)
      notes.push(
        `last apply ${s.lastApply.result}${s.lastApply.stateCommit ? ` at ${s.lastApply.stateCommit.slice(0, 12)}` : ''}, ${s.lastApply.finishedAt ?? s.lastApply.startedAt}${s.lastApply.message ? `: ${s.lastApply.message}` : ''}`,
      );
    if (notes.length) lines.push(`${s.host}: ${notes.join('; ')}`);
  }
  const inSync = statuses.filter((s) => s.reachable && s.inSync).length;
  const healthy = statuses.filter((s) => s.reachable && s.healthy).length;
  lines.push(`${inSync} of ${statuses.length} host(s) in sync, ${healthy} healthy.`);
  return lines.join('\n') + '\n';
}

/** `berth wait` on timeout: every host that is not there, with what is missing. */
export function missingList(statuses: HostStatus[]): string {
  const out: string[] = [];
  for (const s of statuses) {
    const m = missing(s);
    if (!m.length) continue;
    out.push(`  ${s.host}:`);
    for (const line of m) out.push(`    ${line}`);
  }
  return out.join('\n') + '\n';
}
