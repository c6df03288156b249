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
import type { ObservedRotation } from '../model/rotation.js';
import type { DesiredState } from '../model/service.js';
import { observeHost } from '../observe/observe.js';
import { drainTimeoutMs, getProvider } from '../providers/drain/registry.js';
import type { DrainTarget } from '../providers/drain/types.js';
import { planHost } from '../reconcile/plan.js';
import { restartsDrained } from '../reconcile/rotation.js';
import { openStore } from '../store/registry.js';
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
   * commit (`deploy`); `source` is then not read again.
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
}

export interface ConvergeOptions {
  /** The deployment record's location (a SQLite path today); opened only when there are changes. */
  store: string;
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

/** Read, render, observe and plan; reads only, so it needs no lock. */
export async function prepareHost(host: Host, req: HostRequest, signal?: AbortSignal): Promise<Prepared> {
  const loaded = req.loaded ?? (await loadRepo(req.source, signal));
  const desired = await desiredFor(loaded, host.target.name, {
    env: req.env ?? req.source.env,
    overrides: req.overrides,
    digestKey: () => host.state.digestKey(),
    privateFiles: host.private,
  });
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
  return { desired, observed, plan, warnings: loaded.warnings };
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
 * Converge the host once: take its lock (so crash recovery and every change happen with no
 * other berth acting on it), plan, and carry the plan out.
 * @throws HostBusyError when another berth holds the host (after `waitLockMs`).
 */
export async function convergeHost(
  host: Host,
  req: HostRequest,
  opts: ConvergeOptions,
): Promise<HostOutcome> {
  const reporter = opts.reporter ?? silentPipelineReporter;
  const signal = opts.signal;
  let lock;
  try {
    lock = await host.state.lock({ command: opts.command }, { waitMs: opts.waitLockMs, signal });
  } catch (e) {
    if (e instanceof CancelledError)
      return { status: 'cancelled', steps: [], error: e.message, warnings: [] };
    throw e;
  }
  try {
    const { plan, desired, warnings } = await prepareHost(host, req, signal);
    reporter.warnings(warnings);
    const base = { plan, warnings, steps: [] as StepResult[] };
    if (plan.blockers.length) {
      return { ...base, status: 'blocked', error: 'the plan is blocked; nothing was applied' };
    }
    if (!hasChanges(plan)) return { ...base, status: plan.held.length ? 'held' : 'no-op' };
    if (signal?.aborted) return { ...base, status: 'cancelled', error: 'cancelled before anything changed' };
    reporter.planned(plan);
    const store = await openStore(opts.store);
    try {
      const outcome = await executePlan(plan, {
        engine: host.engine,
        files: host.files,
        store,
        now: opts.now ?? (() => new Date()),
        reporter,
        repo: opts.repoLabel,
        parallel: opts.parallel,
        rotation: plan.rotation ? rotationDeps(host, desired) : undefined,
        signal,
      });
      const status: HostOutcomeStatus =
        outcome.result === 'cancelled'
          ? 'cancelled'
          : !outcome.ok
            ? 'failed'
            : plan.held.length
              ? 'held'
              : 'applied';
      return { ...base, status, steps: outcome.steps, applyId: outcome.applyId, error: outcome.error };
    } finally {
      await store.close();
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

function rotationDeps(host: Host, desired: DesiredState): RotationDeps {
  const target = drainTarget(desired);
  return {
    provider: getProvider(desired.loadBalancer!.provider),
    target,
    timeoutMs: drainTimeoutMs(target),
    marker: host.state.drainMarker,
  };
}
