import type { Engine, PullProgress } from '../adapters/engine.js';
import type { HostFiles } from '../adapters/fs.js';
import type { Operation, Plan } from '../model/plan.js';
import type { ServiceSpec } from '../model/service.js';
import { asideName } from '../model/labels.js';
import { failpoint } from './failpoint.js';
import type { DrainMarker } from '../adapters/drain-marker.js';
import type { DrainProvider, DrainTarget, LbState } from '../providers/drain/types.js';
import { healthFor, suggestedDeadline, waitServiceHealthy } from '../health/index.js';
import { createSpec } from '../reconcile/container.js';
import type { Store } from '../store/types.js';

/** What the executor tells the person watching; the CLI decides how it looks. */
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
  /** How many services change at once (default 4). */
  parallel?: number;
  /** The host's load balancer, when berth.yaml names one. */
  drain?: DrainStep;
}

/** How this host leaves and rejoins rotation around changes to `drain: true` services. */
export interface DrainStep {
  provider: DrainProvider;
  target: DrainTarget;
  timeoutMs: number;
  marker: DrainMarker;
}

const DEFAULT_PARALLEL = 4;

export interface StepResult {
  service: string;
  kind: string;
  result: 'succeeded' | 'failed' | 'skipped';
  message?: string;
  durationMs: number;
}

export interface ApplyOutcome {
  applyId?: number;
  ok: boolean;
  steps: StepResult[];
  /** One line for people: why the apply failed, when it did. */
  error?: string;
}

/**
 * Carry out a plan: pull every image first (a registry failure changes nothing), then each
 * service's operations in order. The executor takes no decisions; one failed service does not
 * stop the others, and its previous container is put back.
 */
export async function executePlan(plan: Plan, deps: ExecuteDeps): Promise<ApplyOutcome> {
  const reporter = deps.reporter ?? silentReporter;
  const steps: StepResult[] = [];
  const leftover = deps.drain ? await deps.drain.marker.read() : undefined;
  if (plan.operations.length === 0 && plan.pulls.length === 0 && leftover === undefined)
    return { ok: true, steps };
  const iso = () => deps.now().toISOString();
  const applyId = await deps.store.beginApply({
    host: plan.host,
    stateCommit: plan.commit,
    ref: plan.ref,
    repo: deps.repo,
    startedAt: iso(),
  });

  const record = async (
    service: string,
    kind: string,
    detail: { cause: string; fromImage?: string; toImage?: string; spec?: ServiceSpec },
    work: () => Promise<void>,
  ): Promise<{ ok: boolean; message?: string }> => {
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

  for (const p of plan.pulls) {
    const { ok } = await record(p.services.join(','), 'pull', { cause: p.cause, toImage: p.image }, () =>
      deps.engine.pull(p.image, (prog) => reporter.pullProgress(p.image, prog)),
    );
    if (!ok) {
      const error = `pulling ${p.image} failed, so nothing was changed on this host`;
      await deps.store.finishApply(applyId, { result: 'failed', message: error, finishedAt: iso() });
      return { applyId, ok: false, steps, error };
    }
  }
  if (plan.pulls.length) failpoint('after-pull');

  // Drain only when a change interrupts a service that asked for it; put the host back into
  // the state it had (ready, unless someone else had drained it) after everything is healthy
  // or rolled back. A marker survives a crash so the next apply puts it back.
  const drain = deps.drain;
  const interrupts = plan.operations.some(
    (op) => (op.kind === 'recreate' || op.kind === 'adopt') && op.spec.drain,
  );
  let previous: LbState | undefined = leftover;
  if (drain && interrupts) {
    previous ??= await drain.provider.status(drain.target);
    await drain.marker.write(previous);
    const { ok: drained } = await record(
      drain.target.host,
      'drain',
      { cause: `${drain.provider.name}: ${interruptedBy(plan)}` },
      () => drain.provider.drain(drain.target, { timeoutMs: drain.timeoutMs }),
    );
    failpoint('after-drain');
    if (!drained) {
      const back = previous;
      await record(drain.target.host, 'restore', { cause: `drain failed; back to ${back}` }, () =>
        drain.provider.restore(drain.target, back),
      );
      await drain.marker.clear();
      const error = `draining ${drain.target.host} failed, so nothing was changed; the old containers keep serving`;
      await deps.store.finishApply(applyId, { result: 'failed', message: error, finishedAt: iso() });
      return { applyId, ok: false, steps, error };
    }
  }

  const byService = new Map<string, Operation[]>();
  for (const op of plan.operations) {
    const list = byService.get(op.service) ?? [];
    list.push(op);
    byService.set(op.service, list);
  }
  const failed: string[] = [];
  const queue = [...byService];
  // Services are independent of each other on a host, so they change side by side; a
  // service's own operations stay in order.
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const [service, ops] = next;
      for (const op of ops) {
        const r =
          op.kind === 'create' || op.kind === 'recreate' || op.kind === 'adopt'
            ? await replaceRecorded(op, plan.commit, deps.engine, record)
            : await record(service, op.kind, describe(op), () => run(op, deps.engine, deps.files));
        if (!r.ok) {
          failed.push(`${service}: ${r.message ?? 'failed'}`);
          break;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, deps.parallel ?? DEFAULT_PARALLEL) }, worker));
  failed.sort();
  if (drain && previous !== undefined) {
    const back = previous;
    const { ok: rejoined } = await record(
      drain.target.host,
      back === 'ready' || back === 'unknown' ? 'undrain' : 'restore',
      {
        cause:
          back === 'ready' || back === 'unknown'
            ? 'changes done'
            : `back to ${back}, as before berth drained it`,
      },
      () =>
        back === 'ready' || back === 'unknown'
          ? drain.provider.undrain(drain.target)
          : drain.provider.restore(drain.target, back),
    );
    if (rejoined) await drain.marker.clear();
    else failed.push(`${drain.target.host}: could not put it back into the load balancer`);
  }
  const error = failed.length ? failed.join('; ') : undefined;
  await deps.store.finishApply(applyId, {
    result: failed.length ? 'failed' : 'succeeded',
    message: error,
    finishedAt: iso(),
  });
  return { applyId, ok: failed.length === 0, steps, error };
}

function interruptedBy(plan: Plan): string {
  const names = plan.operations
    .filter((op) => (op.kind === 'recreate' || op.kind === 'adopt') && op.spec.drain)
    .map((op) => op.service);
  return `${[...new Set(names)].join(', ')} will restart`;
}

function describe(op: Operation): {
  cause: string;
  fromImage?: string;
  toImage?: string;
  spec?: ServiceSpec;
} {
  switch (op.kind) {
    case 'create':
      return { cause: op.cause, toImage: op.spec.image, spec: op.spec };
    case 'recreate':
    case 'adopt':
      return { cause: op.cause, fromImage: op.fromImage, toImage: op.spec.image, spec: op.spec };
    case 'start':
      return { cause: op.cause, fromImage: op.image, toImage: op.image };
    case 'remove':
      return { cause: op.cause, fromImage: op.fromImage };
    case 'write-env':
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
    case 'recover':
      await engine.rename(op.containerId, op.service);
      return;
    case 'remove-aside':
      await engine.remove(op.containerId, { force: true });
      return;
    case 'remove':
      await engine.stop(op.containerId);
      await engine.remove(op.containerId, { force: true });
      await files.remove(op.envFile);
      return;
    case 'create':
    case 'recreate':
    case 'adopt':
      throw new Error(`bug: ${op.kind} goes through replaceRecorded`);
  }
}

/** Every health wait has one overall deadline; never shorter than this. */
const MIN_HEALTH_DEADLINE_MS = 5_000;

type Recorder = (
  service: string,
  kind: string,
  detail: { cause: string; fromImage?: string; toImage?: string; spec?: ServiceSpec },
  work: () => Promise<void>,
) => Promise<{ ok: boolean; message?: string }>;

/**
 * Create (or replace) a service's container as three recorded steps: the change itself, the
 * health wait, and, when either fails, the rollback. A replaced container is stopped and set
 * aside under another name, not removed, until its successor is healthy; on failure the new one
 * is removed and the old one gets its name back and is started again.
 */
async function replaceRecorded(
  op: Extract<Operation, { kind: 'create' | 'recreate' | 'adopt' }>,
  commit: string | undefined,
  engine: Engine,
  record: Recorder,
): Promise<{ ok: boolean; message?: string }> {
  const spec = op.spec;
  const oldId = op.kind === 'create' ? undefined : op.containerId;
  let asideDone = false;
  let newId: string | undefined;
  const change = await record(op.service, op.kind, describe(op), async () => {
    if (oldId) {
      await engine.stop(oldId, spec.stopTimeout);
      await engine.rename(oldId, asideName(spec.name));
      asideDone = true;
      failpoint('after-aside');
    }
    newId = await engine.create(createSpec(spec, commit));
    failpoint('after-create');
    await engine.start(newId);
    failpoint('after-start');
  });
  let outcome = change;
  if (change.ok) {
    const health = healthFor(spec, engine, newId!);
    const deadlineMs = Math.max(suggestedDeadline(health.check), MIN_HEALTH_DEADLINE_MS);
    outcome = await record(op.service, 'health', { cause: health.kind }, async () => {
      const r = await waitServiceHealthy(spec, engine, newId!, { deadlineMs });
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
