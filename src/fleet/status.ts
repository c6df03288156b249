/**
 * `berth status` and `berth wait`: desired against running, host by host and service by
 * service, read through the same pipeline that `plan` uses (reads only, no lock): the plan for
 * a host is its drift. Health is one check of each running service's own health check, made
 * from the host.
 */
import { sleep } from '../adapters/clock.js';
import { healthFor } from '../health/index.js';
import type { LockInfo } from '../adapters/host-state.js';
import { prepareHost, type HostRequest } from '../host/pipeline.js';
import type { LoadedRepo } from '../host/desired.js';
import { LABEL } from '../model/labels.js';
import type { ObservedContainer } from '../model/observed.js';
import type { ApplyRecord } from '../store/types.js';
import { errorLine, mapLimit } from './deploy.js';
import type { HostOpener } from './open.js';
import type { FleetHost } from './targets.js';

/** How a service is doing on a host, as one look tells. */
export type ServiceHealth =
  /** Running, and its health check (or, without one, being up) passes. */
  | 'healthy'
  | 'unhealthy'
  /** Docker's own HEALTHCHECK has no verdict yet. */
  | 'starting'
  /** The container exists but does not run (exited, created, paused, ...). */
  | 'stopped'
  /** No container. */
  | 'missing'
  /** Not asked (`--no-health`), or the host could not be read. */
  | 'unknown';

export interface ServiceStatus {
  service: string;
  /** What the repo says, for this host (absent: the service is not in the repo for it). */
  desired?: { image: string; buildNumber?: string; gitCommit?: string };
  /** What runs (absent: no container). */
  running?: { image: string; state: string; stateCommit?: string; buildNumber?: string; gitCommit?: string };
  health: ServiceHealth;
  /** The last health check's output, when it failed. */
  healthOutput?: string;
  /** Why the host does not match the repo for this service, one cause each; empty when in sync. */
  drift: string[];
}

export interface HostStatus {
  host: string;
  address: string;
  reachable: boolean;
  /** Why it could not be read. */
  error?: string;
  services: ServiceStatus[];
  /** The repo's state is what runs: no change planned, nothing held or blocked. */
  inSync: boolean;
  /** Every service that runs passes its health check. */
  healthy: boolean;
  /** Another berth acting on the host now. */
  busy?: LockInfo;
  /** The record's last apply on this host (from this machine's record, or the fleet's PostgreSQL one). */
  lastApply?: Pick<ApplyRecord, 'result' | 'stateCommit' | 'startedAt' | 'finishedAt' | 'message'>;
}

export interface StatusOptions {
  open: HostOpener;
  /** Run one health check per running service (default true). */
  health?: boolean;
  /** Hosts read at once. */
  concurrency?: number;
  /** The record's applies, newest first, to find each host's last one. */
  applies?: ApplyRecord[];
  signal?: AbortSignal;
}

const managed = (c: ObservedContainer) =>
  c.labels[LABEL.service] !== undefined && c.labels['berth.role'] === undefined;

/** One host's status. Never throws for the host's sake: an unreachable host is data. */
export async function hostStatus(
  h: FleetHost,
  req: HostRequest & { loaded: LoadedRepo },
  opts: StatusOptions,
): Promise<HostStatus> {
  const base = { host: h.name, address: h.address };
  const last = opts.applies?.find((a) => a.host === h.name);
  const lastApply = last && {
    result: last.result,
    startedAt: last.startedAt,
    ...(last.stateCommit !== undefined ? { stateCommit: last.stateCommit } : {}),
    ...(last.finishedAt !== undefined ? { finishedAt: last.finishedAt } : {}),
    ...(last.message !== undefined ? { message: last.message } : {}),
  };
  const withLast = <T extends object>(s: T) => (lastApply ? { ...s, lastApply } : s);
  let host;
  try {
    host = await opts.open(h);
  } catch (e) {
    return withLast({
      ...base,
      reachable: false,
      error: errorLine(e).text,
      services: [],
      inSync: false,
      healthy: false,
    });
  }
  try {
    const [{ desired, observed, plan }, busy] = await Promise.all([
      prepareHost(host, req, opts.signal),
      host.state.lockHolder(),
    ]);
    const containers = new Map(observed.containers.filter(managed).map((c) => [c.name, c]));
    const names = new Set([
      ...desired.services.map((s) => s.name),
      ...(desired.held ?? []),
      ...containers.keys(),
    ]);
    const services = await Promise.all(
      [...names].sort().map(async (name): Promise<ServiceStatus> => {
        const spec = desired.services.find((s) => s.name === name);
        const c = containers.get(name);
        const drift = [
          ...plan.pulls.filter((p) => p.services.includes(name)).map((p) => `pull ${p.image}: ${p.cause}`),
          ...plan.operations.filter((o) => o.service === name).map((o) => `${o.kind}: ${o.cause}`),
          ...plan.held.filter((x) => x.service === name).map((x) => `held: ${x.reason}`),
        ];
        const s: ServiceStatus = { service: name, health: 'unknown', drift };
        if (spec) {
          s.desired = { image: spec.image };
          if (spec.buildNumber !== undefined) s.desired.buildNumber = spec.buildNumber;
          if (spec.gitCommit !== undefined) s.desired.gitCommit = spec.gitCommit;
        }
        if (!c) {
          s.health = 'missing';
          return s;
        }
        s.running = { image: c.image, state: c.state };
        if (c.labels[LABEL.stateCommit]) s.running.stateCommit = c.labels[LABEL.stateCommit];
        if (c.labels[LABEL.buildNumber]) s.running.buildNumber = c.labels[LABEL.buildNumber];
        if (c.labels[LABEL.gitCommit]) s.running.gitCommit = c.labels[LABEL.gitCommit];
        if (c.state !== 'running') {
          s.health = 'stopped';
          return s;
        }
        if (opts.health === false || !spec) return s;
        const check = healthFor(spec, host.engine, c.id);
        try {
          const r = await check.probe(opts.signal);
          s.health = r.ok ? 'healthy' : r.starting ? 'starting' : 'unhealthy';
          if (!r.ok) s.healthOutput = r.output;
        } catch (e) {
          s.health = 'unhealthy';
          s.healthOutput = errorLine(e).text;
        }
        return s;
      }),
    );
    const inSync =
      !plan.operations.length &&
      !plan.pulls.length &&
      !plan.rotation &&
      !plan.held.length &&
      !plan.blockers.length;
    const healthy = services.every(
      (s) => !s.running || s.running.state !== 'running' || s.health === 'healthy',
    );
    const out: HostStatus = { ...base, reachable: true, services, inSync, healthy };
    if (plan.blockers.length) out.error = plan.blockers.join('; ');
    if (busy) out.busy = busy;
    return withLast(out);
  } catch (e) {
    return withLast({
      ...base,
      reachable: false,
      error: errorLine(e).text,
      services: [],
      inSync: false,
      healthy: false,
    });
  }
}

/** Every host's status, hosts side by side (bounded). */
export function fleetStatus(
  hosts: FleetHost[],
  req: HostRequest & { loaded: LoadedRepo },
  opts: StatusOptions,
): Promise<HostStatus[]> {
  return mapLimit(hosts, opts.concurrency ?? 8, (h) => hostStatus(h, req, opts));
}

/** What keeps a host from counting as "runs the commit, healthy", in one line each. */
export function missing(s: HostStatus): string[] {
  if (!s.reachable) return [`unreachable: ${s.error ?? 'no answer'}`];
  const out: string[] = [];
  if (s.error) out.push(s.error);
  for (const svc of s.services) {
    for (const d of svc.drift) out.push(`${svc.service}: ${d}`);
    if (svc.running?.state === 'running' && svc.health !== 'healthy')
      out.push(`${svc.service}: ${svc.health}${svc.healthOutput ? ` (${svc.healthOutput})` : ''}`);
  }
  return out;
}

/** Whether a host runs the repo's state, healthy: `wait`'s condition. */
export const converged = (s: HostStatus): boolean => s.reachable && s.inSync && s.healthy && !s.error;

export interface WaitOptions extends StatusOptions {
  /** Give up after this long. */
  timeoutMs: number;
  /** Time between two looks at the hosts that are not there yet. */
  intervalMs: number;
  /** After each look: every host's latest status. */
  onRound?: (statuses: HostStatus[]) => void;
}

/**
 * Look at the hosts until every one runs the repo's state healthy, or the time is up. A host
 * that got there is not asked again; the others are looked at every `intervalMs`, each look
 * bounded by what is left of the timeout (a host that hangs counts as not there).
 */
export async function waitFleet(
  hosts: FleetHost[],
  req: HostRequest & { loaded: LoadedRepo },
  opts: WaitOptions,
): Promise<{ ok: boolean; statuses: HostStatus[]; rounds: number }> {
  const deadline = Date.now() + opts.timeoutMs;
  const latest = new Map<string, HostStatus>();
  const maxRounds = Math.ceil(opts.timeoutMs / Math.max(1, opts.intervalMs)) + 2;
  let rounds = 0;
  while (rounds < maxRounds) {
    rounds++;
    const pending = hosts.filter((h) => !latest.has(h.name) || !converged(latest.get(h.name)!));
    const left = deadline - Date.now();
    const look = fleetStatus(pending, req, opts).then((list) => list.forEach((s) => latest.set(s.host, s)));
    let timer: NodeJS.Timeout | undefined;
    const late =
      (await Promise.race([
        look,
        new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), Math.max(0, left)))),
      ])) === 'late';
    clearTimeout(timer);
    const statuses = hosts.map(
      (h) =>
        latest.get(h.name) ?? {
          host: h.name,
          address: h.address,
          reachable: false,
          error: 'no answer within the timeout',
          services: [],
          inSync: false,
          healthy: false,
        },
    );
    opts.onRound?.(statuses);
    if (statuses.every(converged)) return { ok: true, statuses, rounds };
    const remaining = deadline - Date.now();
    if (late || remaining <= 0 || opts.signal?.aborted) return { ok: false, statuses, rounds };
    await sleep(Math.min(opts.intervalMs, remaining), opts.signal);
  }
  const statuses = hosts.map((h) => latest.get(h.name)!).filter(Boolean);
  return { ok: false, statuses, rounds };
}
