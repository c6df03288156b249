import { hostname } from 'node:os';
import type { LockInfo } from '../adapters/host-state.js';
import {
  executePlan,
  silentReporter,
  type Reporter,
  type RotationDeps,
  type StepResult,
} from '../apply/execute.js';
import { CancelledError, type ConfigIssue } from '../model/errors.js';
import type { ObservedHost } from '../model/observed.js';
import { hasChanges, type Plan } from '../model/plan.js';
import { DEFAULT_LEASE_WAIT_MS, type ObservedRotation } from '../model/rotation.js';
import type { DesiredState } from '../model/service.js';
import { observeHost } from '../observe/observe.js';
import { drainTimeoutMs, getProvider } from '../providers/drain/registry.js';
import type { DrainTarget } from '../providers/drain/types.js';
import { planHost } from '../reconcile/plan.js';
import { restartsDrained } from '../reconcile/rotation.js';
import { takeLease } from '../store/leases.js';
import { displayStoreLocation, openStore } from '../store/registry.js';
import { SpooledStore } from '../store/spool.js';
import type { Store } from '../store/types.js';
import { desiredFor, loadRepo, type HostOverrides, type LoadedRepo, type SourceRequest } from './desired.js';
import type { Host } from './target.js';

/**
 * The pipeline that converges one host, the same for every caller (`berth apply`, `deploy`,
 * the agent): read the repo at a commit, render it for the host, observe the host once, plan
 * purely, then (apply only) carry the plan out under the host's lock and record it. It never
 * prints and never exits: what happened comes back as data, what is happening goes to a
 * reporter, and an AbortSignal stops it at a safe point.
 */

/** What to converge the host to. */
export interface HostRequest {
  source: SourceRequest;
  overrides?: HostOverrides;
  /** Take over same-named containers berth did not create. */
  adopt?: boolean;
  /** Allow a repo without services to remove every managed container. */
  allowEmpty?: boolean;
  /**
   * The repo already read (with its inventory), for a caller that drives many hosts at one
   * commit (`deploy`) or re-renders a commit it read before (the agent); `source` is then not
   * read again.
   */
  loaded?: LoadedRepo;
  /** The environment's name for templates, when `source` pins a commit (`ref`) of it. */
  env?: string;
}

/** What the pipeline tells whoever watches; the caller decides how it looks. */
export interface PipelineReporter extends Reporter {
  /** Warnings about the state repo, before anything else. */
  warnings(issues: ConfigIssue[]): void;
  /** The plan about to be carried out; called only when it has something to do. */
  planned(plan: Plan): void;
  /**
   * Things worth a line while the apply runs: waiting for a lease (and why), the record
   * unreachable and the outcome kept in the spool, spooled outcomes written later.
   */
  notice?(message: string): void;
}

export const silentPipelineReporter: PipelineReporter = {
  ...silentReporter,
  warnings() {},
  planned() {},
};

/** A plan for the host, with what it was made from. */
export interface Prepared {
  desired: DesiredState;
  observed: ObservedHost;
  plan: Plan;
  warnings: ConfigIssue[];
}

/**
 * How converging a host ended.
 * - `blocked`: the plan cannot be applied as it stands (a foreign container in the way, an empty
 *   repo); nothing was done.
 * - `no-op`: the host already matches.
 * - `applied`: every change succeeded.
 * - `held`: the rest is converged, but some services could not be rendered (a missing secret)
 *   and were left exactly as they run.
 * - `failed`: a step failed; failed services were rolled back, the host is back in rotation.
 * - `cancelled`: stopped at a safe point because the signal aborted.
 */
export type HostOutcomeStatus = 'blocked' | 'no-op' | 'applied' | 'held' | 'failed' | 'cancelled';

export interface HostOutcome {
  status: HostOutcomeStatus;
  /** Absent only when the pipeline was cancelled before it could plan. */
  plan?: Plan;
  steps: StepResult[];
  /** The record's id for this apply, when something was recorded. */
  applyId?: number;
  /** One line for people: why it failed, stopped or was blocked. */
  error?: string;
  warnings: ConfigIssue[];
  /**
   * Spool files holding this apply's outcome, when the record could not be reached; each is
   * written to the record by the next berth that reaches it.
   */
  spooled?: string[];
}

export interface ConvergeOptions {
  /** The deployment record's location (a SQLite path or a postgres:// URL); opened only when there are changes. */
  store: string;
  /** Where a networked record keeps outcomes while it cannot be reached (default: under the state dir). */
  spoolDir?: string;
  /** Shared by the applies of one deploy across hosts, so history shows them as one entry. */
  deployId?: string;
  /** How long to wait for a lease to leave rotation before giving up (default 10 minutes). */
  leaseWaitMs?: number;
  /** Who is converging, for the lock and the record: `berth apply`, `berth agent`. */
  command: string;
  /** The state repo as the caller named it, for the record. */
  repoLabel: string;
  reporter?: PipelineReporter;
  signal?: AbortSignal;
  /** How many services change at once. */
  parallel?: number;
  /** How long to wait for another berth that holds the host (default: not at all). */
  waitLockMs?: number;
  now?: () => Date;
}

/** What the host should run, read from the repo and rendered for it: no look at the host's containers yet. */
export interface Wanted {
  desired: DesiredState;
  warnings: ConfigIssue[];
}

/**
 * Read the repo at its commit and render it for the host (secrets included). Slow network
 * work (a git fetch) happens here, before the host's lock is taken, so a remote that hangs
 * never keeps the host locked.
 */
export async function wantedFor(host: Host, req: HostRequest, signal?: AbortSignal): Promise<Wanted> {
  const loaded = req.loaded ?? (await loadRepo(req.source, signal));
  const desired = await desiredFor(loaded, host.target.name, {
    env: req.env ?? req.source.env,
    overrides: req.overrides,
    digestKey: () => host.state.digestKey(),
    privateFiles: host.private,
  });
  return { desired, warnings: loaded.warnings };
}

/** Observe the host once and plan; reads only. Under the lock when the plan is to be carried out. */
export async function planFor(host: Host, wanted: Wanted, req: HostRequest): Promise<Prepared> {
  const { desired } = wanted;
  const opts = { adopt: req.adopt, allowEmpty: req.allowEmpty };
  const [observed, leftover] = await Promise.all([
    observeHost(host.engine, host.files, desired),
    desired.loadBalancer ? host.state.drainMarker.read() : Promise.resolve(undefined),
  ]);
  let plan = planHost(desired, observed, opts);
  // The load balancer is asked only when its answer matters: a change restarts a service that
  // must be drained, or an interrupted apply left the host out of rotation.
  if (desired.loadBalancer && (leftover !== undefined || restartsDrained(plan.operations).length)) {
    observed.rotation = await observeRotation(desired, leftover);
    plan = planHost(desired, observed, opts);
  }
  return { desired, observed, plan, warnings: wanted.warnings };
}

/** Read, render, observe and plan; reads only, so it needs no lock. */
export async function prepareHost(host: Host, req: HostRequest, signal?: AbortSignal): Promise<Prepared> {
  return planFor(host, await wantedFor(host, req, signal), req);
}

/** A plan for `berth plan`, and who holds the host now if anyone (the plan may then change). */
export async function previewHost(
  host: Host,
  req: HostRequest,
  signal?: AbortSignal,
): Promise<Prepared & { busy?: LockInfo }> {
  const [prepared, busy] = await Promise.all([prepareHost(host, req, signal), host.state.lockHolder()]);
  return busy ? { ...prepared, busy } : prepared;
}

/**
 * Converge the host once: read what it should run, take its lock (so observing, crash recovery
 * and every change happen with no other berth acting on it), plan, and carry the plan out.
 * @throws HostBusyError when another berth holds the host (after `waitLockMs`).
 */
export async function convergeHost(
  host: Host,
  req: HostRequest,
  opts: ConvergeOptions,
): Promise<HostOutcome> {
  const reporter = opts.reporter ?? silentPipelineReporter;
  const signal = opts.signal;
  const wanted = await wantedFor(host, req, signal);
  reporter.warnings(wanted.warnings);
  if (signal?.aborted)
    return {
      status: 'cancelled',
      steps: [],
      error: 'cancelled before anything changed',
      warnings: wanted.warnings,
    };
  let lock;
  try {
    lock = await host.state.lock({ command: opts.command }, { waitMs: opts.waitLockMs, signal });
  } catch (e) {
    if (e instanceof CancelledError)
      return { status: 'cancelled', steps: [], error: e.message, warnings: wanted.warnings };
    throw e;
  }
  try {
    const { plan, desired, warnings } = await planFor(host, wanted, req);
    const base = { plan, warnings, steps: [] as StepResult[] };
    if (plan.blockers.length) {
      return { ...base, status: 'blocked', error: 'the plan is blocked; nothing was applied' };
    }
    if (!hasChanges(plan)) return { ...base, status: plan.held.length ? 'held' : 'no-op' };
    if (signal?.aborted) return { ...base, status: 'cancelled', error: 'cancelled before anything changed' };
    reporter.planned(plan);
    const store = await openStore(opts.store, {
      spoolDir: opts.spoolDir,
      onNotice: (m) => reporter.notice?.(m),
    });
    let outcome: HostOutcome | undefined;
    try {
      const done = await executePlan(plan, {
        engine: host.engine,
        files: host.files,
        store,
        now: opts.now ?? (() => new Date()),
        reporter,
        repo: opts.repoLabel,
        meta: { command: opts.command, env: req.source.env ?? desired.env, deployId: opts.deployId },
        parallel: opts.parallel,
        rotation: plan.rotation ? rotationDeps(host, desired, store, opts, reporter) : undefined,
        signal,
      });
      const status: HostOutcomeStatus =
        done.result === 'cancelled'
          ? 'cancelled'
          : !done.ok
            ? 'failed'
            : plan.held.length
              ? 'held'
              : 'applied';
      outcome = { ...base, status, steps: done.steps, error: done.error };
      // A negative id is the spool's own: the record has not seen this apply yet.
      if (done.applyId !== undefined && done.applyId > 0) outcome.applyId = done.applyId;
      return outcome;
    } finally {
      await store.close();
      const waiting = store instanceof SpooledStore ? store.pending() : [];
      if (outcome && waiting.length) outcome.spooled = waiting;
    }
  } finally {
    await lock.release();
  }
}

/** The host as its load balancer knows it: name, address and its rendered settings. */
function drainTarget(desired: DesiredState): DrainTarget {
  const lb = desired.loadBalancer!;
  const t: DrainTarget = { host: desired.host ?? 'localhost', settings: lb.settings };
  if (desired.address !== undefined) t.address = desired.address;
  return t;
}

async function observeRotation(desired: DesiredState, leftover: ObservedRotation['leftover']) {
  const lb = desired.loadBalancer!;
  const r: ObservedRotation = { provider: lb.provider, state: 'unknown' };
  if (leftover !== undefined) r.leftover = leftover;
  try {
    r.state = await getProvider(lb.provider).status(drainTarget(desired));
  } catch (e) {
    r.error = (e as Error).message;
  }
  return r;
}

export { DEFAULT_LEASE_WAIT_MS };

function rotationDeps(
  host: Host,
  desired: DesiredState,
  store: Store,
  opts: ConvergeOptions,
  reporter: PipelineReporter,
): RotationDeps {
  const target = drainTarget(desired);
  // The inventory name; a host without one is known by its machine's name, so two of them
  // never count as one holder.
  const holder = desired.host ?? hostname();
  return {
    provider: getProvider(desired.loadBalancer!.provider),
    target,
    timeoutMs: drainTimeoutMs(target),
    marker: host.state.drainMarker,
    takeLease: async (lease, signal) => {
      if (!store.leases) throw new Error(`the record ${displayStoreLocation(opts.store)} keeps no leases`);
      const say = (m: string) => reporter.notice?.(`${target.host}: ${m}`);
      const held = await takeLease(
        store.leases,
        { scope: lease.scope, groups: lease.groups, holder, command: opts.command, ttlMs: lease.expiryMs },
        { waitMs: opts.leaseWaitMs ?? DEFAULT_LEASE_WAIT_MS, signal, onWait: say, onTrouble: say },
      );
      return { release: () => held.release(), abandon: () => held.abandon() };
    },
  };
}
