import type { Engine, PullProgress } from '../adapters/engine.js';
import type { HostFiles } from '../adapters/fs.js';
import type { DrainMarker } from '../adapters/host-state.js';
import { CancelledError } from '../model/errors.js';
import type { Operation, Plan } from '../model/plan.js';
import type { LeasePlan } from '../model/rotation.js';
import type { ServiceSpec } from '../model/service.js';
import { asideName } from '../model/labels.js';
import { failpoint } from './failpoint.js';
import type { DrainProvider, DrainTarget } from '../providers/drain/types.js';
import { healthFor, suggestedDeadline, waitServiceHealthy } from '../health/index.js';
import { createSpec } from '../reconcile/container.js';
import type { Store } from '../store/types.js';

/** What the executor tells the person watching; the caller decides how it looks. */
export interface Reporter {
  pullProgress(image: string, p: PullProgress): void;
  step(service: string, kind: string, status: 'start' | 'ok' | 'failed', message?: string): void;
}

export const silentReporter: Reporter = { pullProgress() {}, step() {} };

export interface ExecuteDeps {
  engine: Engine;
  files: HostFiles;
  store: Store;
  now: () => Date;
  reporter?: Reporter;
  /** The state repo as the user named it, for the record. */
  repo: string;
  /** Who applied it, in which environment, as part of which deploy: for the record. */
  meta?: ApplyMeta;
  /** How many services change at once (default 4). */
  parallel?: number;
  /** The host's load balancer: needed when the plan takes the host out of rotation. */
  rotation?: RotationDeps;
  /**
   * Stops the apply at the next safe point: no new pull, drain or service change starts; a
   * replacement whose health is not yet proven is rolled back; the host is put back in rotation.
   */
  signal?: AbortSignal;
}

/** What the record keeps about who applied the plan, besides the plan itself. */
export interface ApplyMeta {
  /** `berth apply`, `berth agent`, `berth deploy`. */
  command?: string;
  /** The environment's name. */
  env?: string;
  /** Shared by the hosts' applies of one deploy. */
  deployId?: string;
}

/** How this host leaves and rejoins rotation: the provider, the host as it knows it, the marker. */
export interface RotationDeps {
  provider: DrainProvider;
  target: DrainTarget;
  timeoutMs: number;
  marker: DrainMarker;
  /**
   * Take the lease the plan names (waiting as long as the caller allows), needed when the plan
   * has one; it rejects when none can be had, and the host then does not drain.
   */
  takeLease?: (lease: LeasePlan, signal?: AbortSignal) => Promise<RotationLease>;
}

/** A lease the host holds while it is out of rotation. */
export interface RotationLease {
  /** Give it back: the host is in rotation again. */
  release(): Promise<void>;
  /** Keep it until it lapses: the host could not be put back, so it still counts as out. */
  abandon(): void;
}

const DEFAULT_PARALLEL = 4;

export interface StepResult {
  service: string;
  kind: string;
  result: 'succeeded' | 'failed';
  message?: string;
  durationMs: number;
}

export interface ApplyOutcome {
  applyId?: number;
  /** How the apply ended; `cancelled` when the signal stopped it at a safe point. */
  result: 'succeeded' | 'failed' | 'cancelled';
  ok: boolean;
  steps: StepResult[];
  /** One line for people: why the apply failed or stopped, when it did. */
  error?: string;
}

type Detail = { cause: string; fromImage?: string; toImage?: string; spec?: ServiceSpec };
type Recorder = (
  service: string,
  kind: string,
  detail: Detail,
  work: () => Promise<void>,
) => Promise<{ ok: boolean; message?: string }>;

/**
 * Carry out a plan as it stands: pull every image (a failed pull changes nothing), take the host
 * out of rotation if the plan says so, run each service's operations (services side by side,
 * a service's own operations in order; one failed service does not stop the others), then
 * put the host back as the plan says, whatever happened. Every decision was the planner's; this
 * only does what the plan lists, records each step, and stops early when `signal` aborts.
 */
export async function executePlan(plan: Plan, deps: ExecuteDeps): Promise<ApplyOutcome> {
  const reporter = deps.reporter ?? silentReporter;
  const signal = deps.signal;
  const steps: StepResult[] = [];
  if (plan.operations.length === 0 && plan.pulls.length === 0 && !plan.rotation)
    return { result: 'succeeded', ok: true, steps };
  const rotation = plan.rotation;
  const lb = deps.rotation;
  if (rotation && !lb) throw new Error('bug: the plan changes rotation but no load balancer was given');
  if (rotation?.lease && !lb?.takeLease)
    throw new Error('bug: the plan takes a lease but no lease keeper was given');
  const iso = () => deps.now().toISOString();
  const applyId = await deps.store.beginApply({
    host: plan.host,
    stateCommit: plan.commit,
    ref: plan.ref,
    repo: deps.repo,
    startedAt: iso(),
    ...deps.meta,
  });

  const record: Recorder = async (service, kind, detail, work) => {
    const started = deps.now();
    const actionId = await deps.store.beginAction(applyId, {
      service,
      action: kind,
      cause: detail.cause,
      fromImage: detail.fromImage,
      toImage: detail.toImage,
      gitCommit: detail.spec?.gitCommit,
      buildNumber: detail.spec?.buildNumber,
      stateCommit: plan.commit,
      host: plan.host,
      startedAt: started.toISOString(),
    });
    reporter.step(service, kind, 'start');
    let message: string | undefined;
    try {
      await work();
    } catch (e) {
      message = (e as Error).message;
    }
    const finished = deps.now();
    const result = message === undefined ? 'succeeded' : 'failed';
    await deps.store.finishAction(actionId, { result, message, finishedAt: finished.toISOString() });
    steps.push({ service, kind, result, message, durationMs: finished.getTime() - started.getTime() });
    reporter.step(service, kind, message === undefined ? 'ok' : 'failed', message);
    return { ok: message === undefined, message };
  };

  const finish = async (result: ApplyOutcome['result'], error?: string): Promise<ApplyOutcome> => {
    await deps.store.finishApply(applyId, { result, message: error, finishedAt: iso() });
    return { applyId, result, ok: result === 'succeeded', steps, error };
  };
  const cancelled = () => finish('cancelled', 'cancelled before anything was changed on this host');

  // 1. Pulls: a gate. Nothing has changed yet, so a failure or a cancel simply stops here.
  for (const p of plan.pulls) {
    if (signal?.aborted) return cancelled();
    const { ok } = await record(p.services.join(','), 'pull', { cause: p.cause, toImage: p.image }, () =>
      deps.engine.pull(p.image, (prog) => reporter.pullProgress(p.image, prog), signal),
    );
    if (signal?.aborted) return cancelled();
    if (!ok) return finish('failed', `pulling ${p.image} failed, so nothing was changed on this host`);
  }
  if (plan.pulls.length) failpoint('after-pull');

  // 2. Out of rotation. The lease first: without it the host does not drain and nothing
  // changes. Then the marker, so a crash from here on is put right by the next apply; a failed
  // drain puts back the state the plan recorded and stops.
  let lease: RotationLease | undefined;
  if (rotation?.drain && lb) {
    if (signal?.aborted) return cancelled();
    if (rotation.lease) {
      const wanted = rotation.lease;
      const take = lb.takeLease!;
      const took = await record(lb.target.host, 'lease', { cause: wanted.cause }, async () => {
        lease = await take(wanted, signal);
      });
      if (!took.ok) {
        // A host an interrupted apply left out goes back, as after a failed drain.
        let back = '';
        if (rotation.alreadyOut) {
          const prev = rotation.previous;
          const restored = await record(
            lb.target.host,
            'restore',
            { cause: `no lease; back to ${prev}` },
            () => lb.provider.restore(lb.target, prev),
          );
          if (restored.ok) await lb.marker.clear();
          else back = `; putting it back to ${prev} failed: ${restored.message}`;
        }
        if (signal?.aborted) return cancelled();
        return finish(
          'failed',
          `${lb.target.host} could not take a lease to leave rotation, so it was not drained and nothing ` +
            `was changed; the old containers keep serving (${took.message})${back}`,
        );
      }
    }
    await lb.marker.write(rotation.previous);
    const drained = await record(lb.target.host, 'drain', { cause: rotation.drain.cause }, () =>
      lb.provider.drain(lb.target, { timeoutMs: lb.timeoutMs, signal }),
    );
    failpoint('after-drain');
    if (!drained.ok) {
      const back = rotation.previous;
      const restored = await record(
        lb.target.host,
        'restore',
        { cause: `drain failed; back to ${back}` },
        () => lb.provider.restore(lb.target, back),
      );
      if (restored.ok) {
        await lb.marker.clear();
        await lease?.release();
      } else lease?.abandon();
      if (signal?.aborted) return cancelled();
      return finish(
        'failed',
        `draining ${lb.target.host} failed, so nothing was changed; the old containers keep serving` +
          (restored.ok ? '' : `; putting it back to ${back} also failed: ${restored.message}`),
      );
    }
  }

  // 3. The services' operations, side by side.
  const byService = new Map<string, Operation[]>();
  for (const op of plan.operations) {
    const list = byService.get(op.service) ?? [];
    list.push(op);
    byService.set(op.service, list);
  }
  const failed: string[] = [];
  const queue = [...byService];
  const worker = async () => {
    while (!signal?.aborted) {
      const next = queue.shift();
      if (!next) return;
      const [service, ops] = next;
      // The env file this service had before this apply wrote it: it goes back whenever the
      // service's previous container does, so what is on disk matches what runs.
      let envWritten: Extract<Operation, { kind: 'write-env' }> | undefined;
      const putBackEnv = async () => {
        const w = envWritten;
        if (!w) return '';
        const back = await record(
          service,
          'restore-env',
          { cause: 'the env file goes back with the container' },
          () =>
            w.previous === null
              ? deps.files.remove(w.path)
              : deps.files.writeAtomic(w.path, w.previous, 0o600),
        );
        return back.ok ? '' : `; putting back ${w.path} also failed: ${back.message}`;
      };
      for (const op of ops) {
        if (signal?.aborted) {
          // Cancelled between this service's env file and its container: nothing else changed.
          const also = await putBackEnv();
          failed.push(`${service}: cancelled before its container changed${also}`);
          break;
        }
        const r =
          op.kind === 'create' || op.kind === 'recreate' || op.kind === 'adopt'
            ? await replaceRecorded(op, plan.commit, deps.engine, record, signal)
            : await record(service, op.kind, describe(op), () => run(op, deps.engine, deps.files));
        if (r.ok && op.kind === 'write-env') envWritten = op;
        if (!r.ok) {
          const also = op.kind === 'write-env' ? '' : await putBackEnv();
          failed.push(`${service}: ${r.message ?? 'failed'}${also}`);
          break;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, deps.parallel ?? DEFAULT_PARALLEL) }, worker));
  failed.sort();

  // 4. Back into rotation, whatever happened above; not cancellable.
  if (rotation?.rejoin && lb) {
    const back = rotation.previous;
    const rejoin = rotation.rejoin;
    const { ok: rejoined } = await record(lb.target.host, rejoin.kind, { cause: rejoin.cause }, () =>
      rejoin.kind === 'undrain' ? lb.provider.undrain(lb.target) : lb.provider.restore(lb.target, back),
    );
    if (rejoined) {
      await lb.marker.clear();
      await lease?.release();
    } else {
      // Still out of rotation: its lease keeps counting until it lapses.
      lease?.abandon();
      failed.push(`${lb.target.host}: could not put it back into the load balancer`);
    }
  } else await lease?.release();
  if (signal?.aborted) {
    const left = queue.map(([s]) => s);
    const why = [
      'cancelled',
      left.length ? `not started: ${left.join(', ')}` : '',
      failed.length ? failed.join('; ') : '',
    ]
      .filter(Boolean)
      .join('; ');
    return finish('cancelled', why);
  }
  return failed.length ? finish('failed', failed.join('; ')) : finish('succeeded');
}

function describe(op: Operation): Detail {
  switch (op.kind) {
    case 'create':
      return { cause: op.cause, toImage: op.spec.image, spec: op.spec };
    case 'recreate':
    case 'adopt':
      return { cause: op.cause, fromImage: op.fromImage, toImage: op.spec.image, spec: op.spec };
    case 'start':
    case 'unpause':
      return { cause: op.cause, fromImage: op.image, toImage: op.image };
    case 'remove':
      return { cause: op.cause, fromImage: op.fromImage };
    case 'write-env':
    case 'remove-env':
    case 'recover':
    case 'remove-aside':
      return { cause: op.cause };
  }
}

async function run(op: Operation, engine: Engine, files: HostFiles): Promise<void> {
  switch (op.kind) {
    case 'write-env':
      await files.writeAtomic(op.path, op.content, 0o600);
      failpoint('after-env-file');
      return;
    case 'start':
      await engine.start(op.containerId);
      return;
    case 'unpause':
      await engine.unpause(op.containerId);
      return;
    case 'remove-env':
      await files.remove(op.path);
      return;
    case 'recover':
      await engine.rename(op.containerId, op.service);
      return;
    case 'remove-aside':
      await engine.remove(op.containerId, { force: true });
      return;
    case 'remove':
      await engine.stop(op.containerId);
      await engine.remove(op.containerId, { force: true });
      if (op.envFile) await files.remove(op.envFile);
      return;
    case 'create':
    case 'recreate':
    case 'adopt':
      throw new Error(`bug: ${op.kind} goes through replaceRecorded`);
  }
}

/** Every health wait has one overall deadline; never shorter than this. */
const MIN_HEALTH_DEADLINE_MS = 5_000;

/**
 * Create (or replace) a service's container as three recorded steps: the change itself, the
 * health wait, and, when either fails or the apply is cancelled before the new container is
 * proven healthy, the rollback. A replaced container is stopped and set aside under another
 * name, not removed, until its successor is healthy; on rollback the new one is removed and
 * the old one gets its name back and is started again.
 */
async function replaceRecorded(
  op: Extract<Operation, { kind: 'create' | 'recreate' | 'adopt' }>,
  commit: string | undefined,
  engine: Engine,
  record: Recorder,
  signal: AbortSignal | undefined,
): Promise<{ ok: boolean; message?: string }> {
  const spec = op.spec;
  const oldId = op.kind === 'create' ? undefined : op.containerId;
  const stopIfCancelled = () => {
    if (signal?.aborted) throw new CancelledError('cancelled before the new container was proven healthy');
  };
  let asideDone = false;
  let newId: string | undefined;
  const change = await record(op.service, op.kind, describe(op), async () => {
    if (oldId) {
      await engine.stop(oldId, spec.stopTimeout);
      await engine.rename(oldId, asideName(spec.name));
      asideDone = true;
      failpoint('after-aside');
    }
    stopIfCancelled();
    newId = await engine.create(createSpec(spec, commit));
    failpoint('after-create');
    stopIfCancelled();
    await engine.start(newId);
    failpoint('after-start');
  });
  let outcome = change;
  if (change.ok) {
    const health = healthFor(spec, engine, newId!);
    const deadlineMs = Math.max(suggestedDeadline(health.check), MIN_HEALTH_DEADLINE_MS);
    outcome = await record(op.service, 'health', { cause: health.kind }, async () => {
      stopIfCancelled();
      const r = await waitServiceHealthy(spec, engine, newId!, { deadlineMs, signal });
      stopIfCancelled();
      if (!r.healthy)
        throw new Error(`health check (${health.kind}) failed: ${r.reason}; last check: ${r.output}`);
    });
    if (outcome.ok) {
      // The successor is healthy; a failure to remove the old one is cleaned up by the next plan.
      if (oldId) await engine.remove(oldId, { force: true }).catch(() => undefined);
      return outcome;
    }
  }
  const rollback = await record(
    op.service,
    'rollback',
    { cause: oldId ? 'the previous container takes over again' : 'the new container is removed' },
    async () => {
      if (newId) await engine.remove(newId, { force: true });
      if (oldId) {
        if (asideDone) await engine.rename(oldId, spec.name);
        await engine.start(oldId);
      }
    },
  );
  const why = outcome.message ?? 'failed';
  if (!rollback.ok)
    return {
      ok: false,
      message: `${why}; restoring the previous container also failed: ${rollback.message}`,
    };
  return { ok: false, message: oldId ? `${why}; the previous container was started again` : why };
}
