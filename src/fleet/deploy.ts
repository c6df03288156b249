/**
 * `berth deploy`: the fleet driven through the one host pipeline (src/host), host by host, as
 * the reference playbook did, without Ansible.
 *
 * 1. The repo is read once, at one commit, with its inventory (a source that fails stops here,
 *    before any host is asked).
 * 2. Every target host is reached and planned, and the images its plan needs are pulled, all
 *    hosts side by side. Nothing changes on any host in this phase; a host that cannot be
 *    reached, planned or pulled for stops the rollout before it starts.
 * 3. Hosts are converged in batches (each under its own lock, with its drain, replace, health
 *    and undrain); the first batch with a host that did not converge is the last one. A host
 *    whose plan had nothing to do is reported up to date without being locked again: a no-op
 *    deploy changes nothing at all on any host, not even a lock.
 *
 * It never prints and never exits: progress goes to a reporter, the outcome comes back as data,
 * and an AbortSignal stops every host at its next safe point.
 */
import type { StepResult } from '../apply/execute.js';
import { loadRepo } from '../host/desired.js';
import {
  convergeHost,
  prepareHost,
  silentPipelineReporter,
  type HostRequest,
  type PipelineReporter,
} from '../host/pipeline.js';
import type { Host } from '../host/target.js';
import { hasChanges } from '../model/plan.js';
import {
  ConfigError,
  ExternalError,
  HostBusyError,
  UsageError,
  formatIssue,
  type ConfigIssue,
} from '../model/errors.js';
import { inBatches, type BatchSize } from './batch.js';
import { fleetHosts, type FleetHost } from './targets.js';
import type { HostOpener } from './open.js';

/**
 * How one host's part of the rollout ended.
 * - `applied`, `no-op`, `held`, `blocked`, `failed`, `cancelled`: as the host pipeline says.
 * - `unreachable`: SSH or its engine did not answer; nothing was done there.
 * - `busy`: another berth held the host's lock; nothing was done there.
 * - `skipped`: not started, because the rollout stopped earlier (or was cancelled).
 */
export type FleetHostStatus =
  'applied' | 'no-op' | 'held' | 'blocked' | 'failed' | 'cancelled' | 'unreachable' | 'busy' | 'skipped';

export interface FleetHostResult {
  host: string;
  address: string;
  /** The batch it belongs to, from 1. */
  batch: number;
  status: FleetHostStatus;
  /** Operations of its plan (what changed, or would have). */
  changes: number;
  /** Images pulled onto it before the rollout. */
  pulled: number;
  /** One line for people: what went wrong, or why it was skipped. */
  error?: string;
  /** How long its converge took (or its preparation, when it stopped there). */
  durationMs: number;
  steps: StepResult[];
  applyId?: number;
}

export interface FleetOutcome {
  ref: string;
  commit?: string;
  /** Every target host, in rollout order. */
  hosts: FleetHostResult[];
  /** Every host applied or already up to date. */
  ok: boolean;
  /** Why the rollout stopped before its last batch, when it did. */
  stopped?: string;
  cancelled: boolean;
  /** Some host failed on an error that is a bug in berth. */
  internal?: boolean;
}

/** What a deploy tells whoever watches. */
export interface FleetReporter {
  /** What a host is doing now: `connecting`, `pulling IMAGE`, `draining`, `replacing web`, `healthy`. */
  progress(host: string, phase: string): void;
  /** A host's part is over (in either phase). */
  done(result: FleetHostResult): void;
}

export const silentFleetReporter: FleetReporter = { progress() {}, done() {} };

export interface DeployRequest extends Omit<HostRequest, 'loaded'> {
  /** Host or group names; all inventory hosts when absent. */
  limit?: string[];
  /** Hosts changed at once; berth.yaml's `rollout.batch` when absent. */
  batch?: BatchSize;
}

export interface DeployOptions {
  open: HostOpener;
  /** The record's location. */
  store: string;
  repoLabel: string;
  reporter?: FleetReporter;
  signal?: AbortSignal;
  /** Services changed at once on one host. */
  parallel?: number;
  /** How long to wait for another berth that holds a host. */
  waitLockMs?: number;
  /** How long a host waits for a lease to leave rotation (`rollout.max_unavailable`). */
  leaseWaitMs?: number;
  /** Shared by every host's apply, so history shows the deploy as one entry. */
  deployId?: string;
  /** Where a networked record keeps outcomes while it cannot be reached. */
  spoolDir?: string;
  /** Hosts reached, planned and pulled for at once. */
  concurrency?: number;
  /** The state repo's warnings, once, before any host is asked. */
  onWarnings?: (warnings: ConfigIssue[]) => void;
  now?: () => Date;
}

/** Run `fn` over `items`, at most `n` at a time; results in order. */
export async function mapLimit<T, R>(
  items: T[],
  n: number,
  fn: (t: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

/** One line for people from whatever was thrown; `internal` when it is not one of ours. */
export function errorLine(e: unknown): { text: string; internal: boolean } {
  if (e instanceof ConfigError) return { text: e.issues.map(formatIssue).join('; '), internal: false };
  if (e instanceof ExternalError || e instanceof UsageError || e instanceof HostBusyError)
    return { text: e.message, internal: false };
  return { text: `internal error (this is a bug): ${(e as Error)?.message ?? String(e)}`, internal: true };
}

/** The executor's steps as a host's live phase. */
function phaseOf(service: string, kind: string): string {
  switch (kind) {
    case 'pull':
      return `pulling for ${service}`;
    case 'drain':
      return 'draining';
    case 'undrain':
      return 'undraining';
    case 'restore':
      return 'restoring its place in rotation';
    case 'create':
    case 'recreate':
    case 'adopt':
      return `replacing ${service}`;
    case 'health':
      return `health check ${service}`;
    case 'rollback':
      return `rolling back ${service}`;
    default:
      return `${kind} ${service}`;
  }
}

/** Roll the repo's state out to the inventory's hosts. */
export async function deployFleet(req: DeployRequest, opts: DeployOptions): Promise<FleetOutcome> {
  const reporter = opts.reporter ?? silentFleetReporter;
  const signal = opts.signal;
  const loaded = await loadRepo(req.source, signal);
  if (loaded.warnings.length) opts.onWarnings?.(loaded.warnings);
  const inv = loaded.repo.inventory;
  if (!inv || !inv.hosts.length) {
    throw new UsageError(
      'berth deploy needs hosts: list them in inventory.yaml, or name an inventory source in berth.yaml',
    );
  }
  const targets = fleetHosts(inv, req.limit);
  if (!targets.length) throw new UsageError(`--limit ${req.limit?.join(',')} selects no host`);
  const batchSize = req.batch ?? loaded.repo.settings?.rollout.batch ?? 1;
  const batches = inBatches(targets, batchSize);
  const batchOf = new Map<string, number>();
  batches.forEach((b, i) => b.forEach((h) => batchOf.set(h.name, i + 1)));
  const hostReq: HostRequest = { ...req, loaded };

  const results = new Map<string, FleetHostResult>();
  const started = new Map<string, number>();
  const result = (
    h: FleetHost,
    r: Partial<FleetHostResult> & { status: FleetHostStatus },
  ): FleetHostResult => {
    const t0 = started.get(h.name);
    const full: FleetHostResult = {
      host: h.name,
      address: h.address,
      batch: batchOf.get(h.name)!,
      changes: 0,
      pulled: 0,
      steps: [],
      ...results.get(h.name),
      durationMs: t0 === undefined ? 0 : Date.now() - t0,
      ...r,
    };
    results.set(h.name, full);
    return full;
  };
  let internal = false;
  const finish = (extra: Partial<FleetOutcome>): FleetOutcome => {
    const hosts = targets.map((h) => results.get(h.name) ?? result(h, { status: 'skipped' }));
    const out: FleetOutcome = {
      ref: loaded.repo.ref,
      hosts,
      ok: hosts.every((h) => h.status === 'applied' || h.status === 'no-op'),
      cancelled: signal?.aborted ?? false,
      ...extra,
    };
    if (loaded.repo.commit !== undefined) out.commit = loaded.repo.commit;
    if (internal) out.internal = true;
    return out;
  };
  const skipRest = (why: string) => {
    for (const h of targets) {
      if (results.has(h.name) && results.get(h.name)!.status !== 'skipped') continue;
      reporter.done(result(h, { status: 'skipped', error: why, durationMs: 0 }));
    }
  };

  // Phase 1: reach, plan and pull on every host; nothing changes anywhere yet.
  const opened = new Map<string, Host>();
  /** Hosts whose plan had nothing to do: they are not locked and planned again. */
  const upToDate = new Set<string>();
  const ready = await mapLimit(targets, opts.concurrency ?? 8, async (h): Promise<boolean> => {
    if (signal?.aborted) return false;
    started.set(h.name, Date.now());
    reporter.progress(h.name, 'connecting');
    let host: Host;
    try {
      host = await opts.open(h);
    } catch (e) {
      const err = errorLine(e);
      internal ||= err.internal;
      reporter.done(result(h, { status: 'unreachable', error: err.text }));
      return false;
    }
    opened.set(h.name, host);
    try {
      reporter.progress(h.name, 'planning');
      const { plan } = await prepareHost(host, hostReq, signal);
      result(h, { status: 'skipped', changes: plan.operations.length });
      if (plan.blockers.length) {
        reporter.done(result(h, { status: 'blocked', error: plan.blockers.join('; ') }));
        return false;
      }
      let pulled = 0;
      for (const p of plan.pulls) {
        if (signal?.aborted) return false;
        reporter.progress(h.name, `pulling ${p.image}`);
        await host.engine.pull(p.image, undefined, signal);
        result(h, { status: 'skipped', pulled: ++pulled });
      }
      if (!hasChanges(plan) && !plan.held.length) upToDate.add(h.name);
      reporter.progress(h.name, upToDate.has(h.name) ? 'up to date' : 'ready');
      return true;
    } catch (e) {
      if (signal?.aborted) return false;
      const err = errorLine(e);
      internal ||= err.internal;
      reporter.done(result(h, { status: 'failed', error: err.text }));
      return false;
    }
  });
  if (signal?.aborted) {
    skipRest('cancelled before the rollout started; nothing was changed');
    return finish({ stopped: 'cancelled before any host was changed' });
  }
  const notReady = targets.filter((_, i) => !ready[i]);
  if (notReady.length) {
    const names = notReady.map((h) => h.name).join(', ');
    skipRest(`not started: ${names} could not be prepared, so no host was changed`);
    return finish({ stopped: `${names} could not be prepared; no host was changed` });
  }

  // Phase 2: batch after batch, each host under its own lock.
  for (const [b, batch] of batches.entries()) {
    if (signal?.aborted) {
      skipRest('not started: cancelled');
      return finish({ stopped: `cancelled before batch ${b + 1}` });
    }
    const outcomes = await Promise.all(
      batch.map(async (h) => {
        if (upToDate.has(h.name)) {
          started.delete(h.name);
          const r = result(h, { status: 'no-op', changes: 0 });
          reporter.done(r);
          return r;
        }
        started.set(h.name, Date.now());
        const host = opened.get(h.name)!;
        const report: PipelineReporter = {
          ...silentPipelineReporter,
          step: (service, kind, status) => {
            if (status === 'start') reporter.progress(h.name, phaseOf(service, kind));
          },
        };
        reporter.progress(h.name, 'taking the lock');
        try {
          const o = await convergeHost(host, hostReq, {
            store: opts.store,
            command: 'berth deploy',
            repoLabel: opts.repoLabel,
            reporter: report,
            signal,
            parallel: opts.parallel,
            waitLockMs: opts.waitLockMs,
            leaseWaitMs: opts.leaseWaitMs,
            deployId: opts.deployId,
            spoolDir: opts.spoolDir,
            now: opts.now,
          });
          const r = result(h, {
            status: o.status,
            changes: o.plan?.operations.length ?? 0,
            steps: o.steps,
            ...(o.error !== undefined ? { error: o.error } : {}),
            ...(o.applyId !== undefined ? { applyId: o.applyId } : {}),
          });
          reporter.done(r);
          return r;
        } catch (e) {
          const err = errorLine(e);
          internal ||= err.internal;
          const status: FleetHostStatus =
            e instanceof HostBusyError
              ? 'busy'
              : e instanceof ExternalError && e.system === 'ssh'
                ? 'unreachable'
                : 'failed';
          const r = result(h, { status, error: err.text });
          reporter.done(r);
          return r;
        }
      }),
    );
    const bad = outcomes.filter((o) => o.status !== 'applied' && o.status !== 'no-op');
    if (bad.length) {
      const at = bad.map((o) => o.host).join(', ');
      const cancelled = bad.every((o) => o.status === 'cancelled');
      skipRest(cancelled ? 'not started: cancelled' : `not started: the rollout stopped at ${at}`);
      return finish({ stopped: cancelled ? `cancelled in batch ${b + 1}` : `stopped at ${at}` });
    }
  }
  return finish({});
}
