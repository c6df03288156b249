import type { CommitSignature } from '../adapters/git.js';
import type { LockInfo } from '../adapters/host-state.js';
import type { LoadedRepo } from '../host/desired.js';
import type {
  ConvergeOptions,
  HostOutcome,
  HostOutcomeStatus,
  HostRequest,
  PipelineReporter,
  Prepared,
} from '../host/pipeline.js';
import { ConfigError, ExternalError, HostBusyError, UsageError, formatIssue } from '../model/errors.js';
import type { Plan } from '../model/plan.js';
import { summary } from '../reconcile/format.js';
import type { Logger } from './log.js';
import type { AgentMetrics } from './metrics.js';
import { notifyAll, type Notifier, type Report, type ReportState } from './notifiers/index.js';
import {
  afterFailure,
  isStale,
  jittered,
  mayTry,
  type BackoffSettings,
  type FailureState,
} from './policy.js';
import {
  STATUS_VERSION,
  driftChanges,
  type AgentActivity,
  type AgentStatusV1,
  type ReconcileSummary,
  type ServiceStatus,
} from './status.js';

/**
 * The agent: a loop over the host pipeline. Each turn looks at the remote branch (a ref lookup,
 * no fetch), reads and converges a commit it has not converged yet, then looks at the host
 * against the commit it last converged to (drift) and, with self-heal, applies that commit
 * again. One turn at a time: a webhook or `POST /v1/sync` during a turn makes the next turn
 * start at once, never a second turn beside it. Everything it knows is kept for the status API.
 */

/** One look at the host against a commit: the plan, and each service as it runs. */
export interface Look {
  prepared: Prepared;
  services: ServiceStatus[];
}

/** The agent's edges: the remote, the repo, the host, the clock. Tests replace any of them. */
export interface AgentDeps {
  now(): number;
  random(): number;
  /** The commit the branch names on the remote now (`git ls-remote`); throws when it cannot tell. */
  headOf(signal: AbortSignal): Promise<string>;
  /** Fetch and read the branch, checked; throws ConfigError for an invalid repo. */
  load(signal: AbortSignal): Promise<LoadedRepo>;
  /** The commit's signature, when signatures are checked. */
  verify?(loaded: LoadedRepo, commit: string): Promise<CommitSignature>;
  converge(req: HostRequest, opts: ConvergeOptions): Promise<HostOutcome>;
  /** Observe and plan against `loaded` (no lock, reads only), with each service's health. */
  look(loaded: LoadedRepo, signal: AbortSignal): Promise<Look>;
  /** Who holds the host's lock now, if anyone. */
  lockHolder(): Promise<LockInfo | undefined>;
  /** The record's newest converged commit of this host and branch, from before this process. */
  lastRecorded(): Promise<{ commit: string; at: string } | undefined>;
  /**
   * Called at the end of a turn that reconciled: the agent idles next, so what the reconcile
   * left on the heap may be handed back to the system now rather than whenever the engine's
   * own idle collection runs (a full garbage collection in the daemon).
   */
  settle?(): void;
}

export interface AgentOptions {
  request: HostRequest;
  env: string;
  /** The host's inventory name, if any. */
  hostName?: string;
  /** How the host is named in reports: its inventory name, else this machine's name. */
  reportHost: string;
  /** The repo with credentials removed. */
  repoLabel: string;
  store: string;
  intervalMs: number;
  staleAfterMs: number;
  selfHeal: boolean;
  backoff: BackoffSettings;
  /** How long a turn waits for another berth that holds the host before trying again later. */
  waitLockMs: number;
  parallel?: number;
  spoolDir?: string;
  berthVersion: string;
  log: Logger;
  metrics: AgentMetrics;
  /** Builds the notifiers from the `agent` settings of the commit being reported. */
  notifiers(loaded: LoadedRepo | undefined): Notifier[];
  deps: AgentDeps;
}

/** The commit the host was converged to, with the repo as read at it (for drift and self-heal). */
interface Applied {
  commit: string;
  at: number;
  result: HostOutcomeStatus | null;
  loaded?: LoadedRepo;
}

/** How soon a turn tries again when another berth holds the host. */
const BUSY_RETRY_MS = 5_000;

export class Agent {
  private activity: AgentActivity = 'starting';
  private readonly startedAt: number;
  private desired?: string;
  private lastCheckAt?: number;
  private lastContactAt?: number;
  private sourceError?: string;
  private wasStale = false;
  private applied?: Applied;
  private last?: ReconcileSummary;
  private lastPlan?: { commit: string | null; plan: Plan };
  private failure?: FailureState;
  private refused?: { commit: string; reason: string };
  private drift: { checkedAt?: number; changes: AgentStatusV1['drift']['changes']; plan?: Plan } = {
    changes: [],
  };
  private repairs = 0;
  private engine: { reachable: boolean | null; checkedAt?: number; error: string | null } = {
    reachable: null,
    error: null,
  };
  private services: ServiceStatus[] = [];
  private held: Array<{ service: string; reason: string }> = [];
  private reported?: { commit: string; state: ReportState };
  private busyUntil?: number;
  private pending?: string;
  private wake?: (reason: string) => void;
  private cycles = 0;
  private lastCycleAt?: number;

  constructor(private readonly o: AgentOptions) {
    this.startedAt = o.deps.now();
  }

  /** Ask for a turn now (webhook, API); coalesced with any turn already asked for. */
  trigger(reason: string): void {
    this.pending ??= reason;
    this.wake?.(this.pending);
  }

  /** Turns until `signal` aborts; a turn under way stops at its next safe point. */
  async run(signal: AbortSignal): Promise<void> {
    const recorded = await this.o.deps.lastRecorded().catch(() => undefined);
    if (recorded) this.applied = { commit: recorded.commit, at: Date.parse(recorded.at), result: null };
    let reason = 'start';
    while (!signal.aborted) {
      await this.turn(reason, signal);
      if (signal.aborted) break;
      reason = await this.nextTurn(signal);
    }
    this.activity = 'stopping';
  }

  /** Number of turns finished, and when the last one did (for /healthz). */
  progress(): { cycles: number; lastCycleAt?: number; activity: AgentActivity } {
    return { cycles: this.cycles, lastCycleAt: this.lastCycleAt, activity: this.activity };
  }

  /** Wait for the interval (with jitter), a retry that falls due, or a trigger. */
  private nextTurn(signal: AbortSignal): Promise<string> {
    const now = this.o.deps.now();
    if (this.pending !== undefined) {
      const r = this.pending;
      this.pending = undefined;
      return Promise.resolve(r);
    }
    let wait = jittered(this.o.intervalMs, this.o.deps.random());
    let why = 'interval';
    const retryAt = this.failure && this.failure.commit === this.desired ? this.failure.retryAt : undefined;
    for (const [at, r] of [
      [retryAt, 'retry'],
      [this.busyUntil, 'busy-retry'],
    ] as const) {
      if (at !== undefined && at - now < wait) {
        wait = Math.max(0, at - now);
        why = r;
      }
    }
    return new Promise((resolve) => {
      const done = (r: string) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.wake = undefined;
        this.pending = undefined;
        resolve(r);
      };
      const onAbort = () => done('stop');
      const timer = setTimeout(() => done(why), wait);
      signal.addEventListener('abort', onAbort, { once: true });
      this.wake = done;
    });
  }

  /** One turn: look at the remote, converge a new commit, look at the host for drift. */
  async turn(trigger: string, signal: AbortSignal): Promise<void> {
    this.activity = 'checking';
    let reconciled = false;
    try {
      await this.checkSource(signal);
      const target = this.desired;
      const now = this.o.deps.now();
      const converged = this.applied?.loaded !== undefined && target === this.applied.commit;
      if (
        !signal.aborted &&
        target !== undefined &&
        !converged &&
        this.refused?.commit !== target &&
        (this.busyUntil === undefined || now >= this.busyUntil)
      ) {
        if (mayTry(this.failure, target, now)) {
          await this.reconcile(target, trigger, signal);
          reconciled = true;
        } else this.o.log.debug({ commit: target, retryAt: iso(this.failure!.retryAt) }, 'in backoff');
      }
      if (!signal.aborted) await this.inspect(signal);
    } catch (e) {
      // A bug in a turn must not end the agent: log it, and the next turn starts afresh.
      this.o.log.error(
        { error: (e as Error)?.stack ?? String(e) },
        'internal error in a turn (this is a bug)',
      );
    } finally {
      this.cycles++;
      this.lastCycleAt = this.o.deps.now();
      if ((this.activity as AgentActivity) !== 'stopping') this.activity = 'idle';
      if (reconciled) this.o.deps.settle?.();
    }
  }

  private async checkSource(signal: AbortSignal): Promise<void> {
    const { deps, metrics, log } = this.o;
    this.lastCheckAt = deps.now();
    try {
      const head = await deps.headOf(signal);
      if (this.sourceError !== undefined) log.info({ commit: head }, 'the remote answers again');
      this.sourceError = undefined;
      this.lastContactAt = deps.now();
      if (head !== this.desired) {
        if (this.desired !== undefined)
          log.info({ commit: head, previous: this.desired }, 'new commit on the branch');
        this.desired = head;
        metrics.setCommit(metrics.desiredCommit, head);
      }
      metrics.sourceChecks.inc({ result: 'ok' });
      metrics.sourceLastContact.set(this.lastContactAt / 1000);
    } catch (e) {
      if (signal.aborted) return;
      const msg = (e as Error).message;
      if (msg !== this.sourceError)
        log.warn({ error: msg }, 'cannot look at the remote; the host keeps running what it runs');
      this.sourceError = msg;
      metrics.sourceChecks.inc({ result: 'error' });
    }
    const stale = isStale(this.lastContactAt, deps.now(), this.o.staleAfterMs);
    if (stale && !this.wasStale && this.lastContactAt !== undefined) {
      log.error(
        { lastContactAt: iso(this.lastContactAt), error: this.sourceError },
        'the source is stale: the remote has not answered for longer than the stale threshold',
      );
    }
    this.wasStale = stale;
    metrics.sourceStale.set(stale ? 1 : 0);
  }

  /** Read the branch, check it, converge the host to it, and report how it went. */
  private async reconcile(target: string, trigger: string, signal: AbortSignal): Promise<void> {
    const { deps, log } = this.o;
    const started = deps.now();
    this.activity = 'reconciling';
    let loaded: LoadedRepo;
    try {
      loaded = await deps.load(signal);
    } catch (e) {
      if (signal.aborted) return;
      if (e instanceof ConfigError) {
        const reason = `the state repo has ${e.issues.length} problem(s): ${e.issues.map(formatIssue).slice(0, 3).join('; ')}`;
        return this.refuse(target, reason, trigger, started, undefined);
      }
      return this.failed(target, (e as Error).message, trigger, started, 'error', undefined);
    }
    const commit = loaded.files.commit ?? target;
    if (commit !== this.desired) {
      // Pushed between the look and the fetch: what was read is the newest.
      this.desired = commit;
      this.o.metrics.setCommit(this.o.metrics.desiredCommit, commit);
    }
    if (this.refused?.commit === commit) return;
    if (this.applied?.commit === commit && this.applied.loaded === undefined) this.applied.loaded = loaded;
    log.info({ commit, trigger }, 'reconciling');
    await this.report(loaded, commit, 'pending', 'berth agent is applying this commit');
    if (deps.verify) {
      const sig = await deps.verify(loaded, commit).catch((e: unknown): CommitSignature => ({
        ok: false,
        detail: `cannot check the signature: ${(e as Error).message}`,
      }));
      if (!sig.ok)
        return this.refuse(commit, `signature check failed: ${sig.detail}`, trigger, started, loaded);
      log.info({ commit, signature: sig.detail }, 'signature verified');
    }
    const holder = await deps.lockHolder().catch(() => undefined);
    if (holder) {
      this.activity = 'waiting-for-lock';
      log.info({ holder }, 'another berth acts on this host; waiting for it');
    }
    let outcome: HostOutcome;
    try {
      outcome = await deps.converge({ ...this.o.request, loaded }, this.convergeOptions(signal));
    } catch (e) {
      if (e instanceof HostBusyError) {
        this.busyUntil = deps.now() + BUSY_RETRY_MS;
        log.info({ error: e.message }, 'the host is still busy; trying again shortly');
        this.last = this.summary(commit, trigger, 'error', started, undefined, e.message);
        return;
      }
      if (e instanceof ConfigError || e instanceof UsageError) {
        const msg = e instanceof ConfigError ? e.issues.map(formatIssue).slice(0, 3).join('; ') : e.message;
        return this.refuse(commit, msg, trigger, started, loaded);
      }
      if (e instanceof ExternalError) this.engineSaw(e);
      else
        log.error(
          { error: (e as Error)?.stack ?? String(e) },
          'internal error while converging (this is a bug)',
        );
      return this.failed(commit, (e as Error).message, trigger, started, 'error', loaded);
    }
    this.busyUntil = undefined;
    this.engineSaw();
    await this.finish(commit, outcome, trigger, started, loaded);
  }

  private convergeOptions(signal: AbortSignal): ConvergeOptions {
    return {
      store: this.o.store,
      command: 'berth agent',
      repoLabel: this.o.repoLabel,
      reporter: this.reporter(),
      signal,
      parallel: this.o.parallel,
      waitLockMs: this.o.waitLockMs,
      spoolDir: this.o.spoolDir,
    };
  }

  /** How a converge ended: the state the status shows, backoff, metrics, reports. */
  private async finish(
    commit: string,
    outcome: HostOutcome,
    trigger: string,
    started: number,
    loaded: LoadedRepo,
  ): Promise<void> {
    const { log, metrics, deps } = this.o;
    const { status } = outcome;
    if (outcome.plan) this.lastPlan = { commit, plan: outcome.plan };
    if (status === 'cancelled') {
      this.last = this.summary(commit, trigger, status, started, outcome.applyId, outcome.error);
      log.warn({ commit, error: outcome.error }, 'stopped at a safe point');
      return this.count(trigger, status, started);
    }
    if (status === 'applied' || status === 'no-op' || status === 'held') {
      // A look at the host compared it with the commit applied before: until the next look,
      // the status lists no services and no drift rather than the older commit's.
      if (this.applied?.commit !== commit) this.absorbNothing();
      this.applied = { commit, at: deps.now(), result: status, loaded };
      // Converged: whatever failed before (this commit or an older one) is behind us.
      this.failure = undefined;
      this.refused = undefined;
      metrics.consecutiveFailures.set(0);
      metrics.setCommit(metrics.appliedCommit, commit);
      this.last = this.summary(commit, trigger, status, started, outcome.applyId, outcome.error);
      this.count(trigger, status, started);
      const what = outcome.plan ? summary(outcome.plan) : status;
      if (status === 'held') {
        const held = (outcome.plan?.held ?? []).map((h) => `${h.service}: ${h.reason}`).join('; ');
        log.warn({ commit, held }, 'converged, with services held');
        await this.report(loaded, commit, 'failure', `services held: ${held}`);
      } else {
        log.info(
          { commit, status, durationMs: deps.now() - started },
          status === 'no-op' ? 'host matches the commit' : 'applied',
        );
        await this.report(
          loaded,
          commit,
          'success',
          status === 'no-op' ? `the host already runs it. ${what}` : `applied: ${what}`,
        );
      }
      return;
    }
    const reason =
      status === 'blocked'
        ? `blocked: ${outcome.plan?.blockers.join('; ') ?? 'the plan is blocked'}`
        : (outcome.error ?? status);
    await this.failed(commit, reason, trigger, started, status, loaded, outcome.applyId);
  }

  private async failed(
    commit: string,
    reason: string,
    trigger: string,
    started: number,
    status: ReconcileSummary['status'],
    loaded: LoadedRepo | undefined,
    applyId?: number,
  ): Promise<void> {
    const { log, metrics, deps } = this.o;
    this.failure = afterFailure(this.failure, commit, reason, deps.now(), this.o.backoff);
    metrics.consecutiveFailures.set(this.failure.failures);
    this.last = this.summary(commit, trigger, status, started, applyId, reason);
    this.count(trigger, status, started);
    log.error(
      { commit, status, error: reason, failures: this.failure.failures, retryAt: iso(this.failure.retryAt) },
      'reconcile failed; backing off',
    );
    // Only a verdict on the commit is reported; an outage (engine, git) is not the commit's fault.
    if (status !== 'error') await this.report(loaded, commit, 'failure', reason);
  }

  private async refuse(
    commit: string,
    reason: string,
    trigger: string,
    started: number,
    loaded: LoadedRepo | undefined,
  ): Promise<void> {
    this.refused = { commit, reason };
    this.last = this.summary(commit, trigger, 'refused', started, undefined, reason);
    this.count(trigger, 'refused', started);
    this.o.log.error({ commit, reason }, 'commit refused: it is not applied');
    await this.report(loaded, commit, 'failure', `not applied: ${reason}`);
  }

  private count(trigger: string, result: string, started: number): void {
    const t = trigger.startsWith('webhook:') ? 'webhook' : trigger;
    this.o.metrics.reconciles.inc({ result });
    this.o.metrics.reconcileDuration.observe({ trigger: t, result }, (this.o.deps.now() - started) / 1000);
  }

  private summary(
    commit: string | null,
    trigger: string,
    status: ReconcileSummary['status'],
    started: number,
    applyId: number | undefined,
    error: string | undefined,
  ): ReconcileSummary {
    const finished = this.o.deps.now();
    return {
      commit,
      trigger,
      status,
      startedAt: iso(started),
      finishedAt: iso(finished),
      durationMs: finished - started,
      applyId: applyId ?? null,
      error: error ?? null,
    };
  }

  /** Tell the notifiers what became of a commit. */
  private async report(
    loaded: LoadedRepo | undefined,
    commit: string,
    state: ReportState,
    description: string,
  ) {
    // Once per commit and outcome: a retry in backoff does not say "pending" again, and the
    // same verdict is not sent twice; a different verdict (failed, then applied) is.
    if (this.reported?.commit === commit && (state === 'pending' || this.reported.state === state)) return;
    this.reported = { commit, state };
    const notifiers = this.o.notifiers(loaded ?? this.applied?.loaded);
    if (!notifiers.length) return;
    const report: Report = {
      state,
      commit,
      host: this.o.reportHost,
      env: this.o.env,
      repo: this.o.repoLabel,
      description: oneLine(description),
    };
    await notifyAll(notifiers, report, { log: this.o.log, metrics: this.o.metrics });
  }

  /** Look at the host against the applied commit; put drift right when self-heal is on. */
  private async inspect(signal: AbortSignal): Promise<void> {
    const { deps, log, metrics } = this.o;
    const applied = this.applied;
    if (!applied?.loaded) return;
    let look: Look;
    try {
      const holder = await deps.lockHolder();
      // Mid-apply the host is between states; its own apply's result tells more than a look.
      if (holder) return;
      look = await deps.look(applied.loaded, signal);
    } catch (e) {
      if (signal.aborted) return;
      if (e instanceof ExternalError) this.engineSaw(e);
      else log.warn({ error: (e as Error).message }, 'cannot look at the host');
      return;
    }
    this.engineSaw();
    this.absorb(look);
    const changes = this.drift.changes;
    const services = new Set(changes.map((c) => c.service));
    metrics.driftServices.set(services.size);
    if (!changes.length) return;
    metrics.driftDetected.inc();
    log.warn({ commit: applied.commit, changes }, 'drift: the host differs from the applied commit');
    // A newer commit that failed may have changed part of the host: putting the older commit
    // back would undo what succeeded. Only report drift until that commit is sorted out.
    const otherFailing = this.failure !== undefined && this.failure.commit !== applied.commit;
    if (!this.o.selfHeal || otherFailing || !mayTry(this.failure, applied.commit, deps.now())) return;
    await this.heal(applied, signal);
  }

  /** Forget the last look (it was against another commit). */
  private absorbNothing(): void {
    this.drift = { changes: [] };
    this.services = [];
    this.held = [];
  }

  /** Keep what a look found for the status. */
  private absorb(look: Look): void {
    const { plan } = look.prepared;
    this.drift = { checkedAt: this.o.deps.now(), changes: driftChanges(plan), plan };
    this.services = look.services;
    this.held = plan.held;
  }

  private async heal(applied: Applied, signal: AbortSignal): Promise<void> {
    const { deps, log, metrics } = this.o;
    const started = deps.now();
    this.activity = 'reconciling';
    log.info({ commit: applied.commit }, 'self-heal: applying the applied commit again');
    let outcome: HostOutcome;
    try {
      outcome = await deps.converge(
        { ...this.o.request, loaded: applied.loaded },
        this.convergeOptions(signal),
      );
    } catch (e) {
      if (e instanceof HostBusyError) return;
      if (e instanceof ExternalError) this.engineSaw(e);
      metrics.driftRepairs.inc({ result: 'error' });
      return this.failed(applied.commit, (e as Error).message, 'drift', started, 'error', applied.loaded);
    }
    this.repairs++;
    metrics.driftRepairs.inc({ result: outcome.status });
    if (outcome.plan) this.lastPlan = { commit: applied.commit, plan: outcome.plan };
    const ok = outcome.status === 'applied' || outcome.status === 'no-op' || outcome.status === 'held';
    if (!ok && outcome.status !== 'cancelled') {
      const reason = outcome.error ?? outcome.status;
      return this.failed(
        applied.commit,
        reason,
        'drift',
        started,
        outcome.status,
        undefined,
        outcome.applyId,
      );
    }
    this.last = this.summary(
      applied.commit,
      'drift',
      outcome.status,
      started,
      outcome.applyId,
      outcome.error,
    );
    this.count('drift', outcome.status, started);
    log.info({ commit: applied.commit, status: outcome.status }, 'self-heal done');
    if (signal.aborted) return;
    // Look again so the status shows the host as it is now.
    try {
      this.absorb(await deps.look(applied.loaded!, signal));
      metrics.driftServices.set(new Set(this.drift.changes.map((c) => c.service)).size);
    } catch {
      // The next turn looks again.
    }
  }

  private engineSaw(e?: ExternalError): void {
    const now = this.o.deps.now();
    if (e && e.system !== 'docker') return;
    const reachable = e === undefined;
    if (reachable && this.engine.reachable === false) this.o.log.info('the engine answers again');
    if (!reachable && this.engine.reachable !== false)
      this.o.log.error({ error: e.message }, 'the engine does not answer');
    this.engine = { reachable, checkedAt: now, error: e?.message ?? null };
  }

  /** What the pipeline says while converging, as log lines; pulls at most every few seconds. */
  private reporter(): PipelineReporter {
    const log = this.o.log;
    const lastPull = new Map<string, number>();
    const layers = new Map<string, Map<string, { current: number; total: number }>>();
    return {
      warnings: (issues) => issues.forEach((i) => log.warn({ issue: formatIssue(i) }, 'state repo warning')),
      notice: (message) => log.info(message),
      planned: (plan) =>
        log.info(
          {
            commit: plan.commit,
            summary: summary(plan),
            operations: plan.operations.map((op) => `${op.service} ${op.kind}: ${op.cause}`),
          },
          'plan',
        ),
      step: (service, kind, status, message) => {
        if (status === 'start') return;
        if (status === 'ok') log.info({ service, step: kind }, 'step done');
        else log.warn({ service, step: kind, error: message }, 'step failed');
      },
      pullProgress: (image, p) => {
        if (p.id && p.total) {
          const l = layers.get(image) ?? new Map<string, { current: number; total: number }>();
          layers.set(image, l);
          l.set(p.id, { current: p.current ?? 0, total: p.total });
        }
        const now = Date.now();
        if (now - (lastPull.get(image) ?? 0) < PULL_LOG_EVERY_MS) return;
        lastPull.set(image, now);
        const all = [...(layers.get(image)?.values() ?? [])];
        const total = all.reduce((a, x) => a + x.total, 0);
        const current = all.reduce((a, x) => a + Math.min(x.current, x.total), 0);
        log.info(
          {
            image,
            layers: all.length,
            percent: total ? Math.floor((current / total) * 100) : null,
            status: p.status,
          },
          'pulling',
        );
      },
    };
  }

  /** The status document (see status.ts). */
  status(): AgentStatusV1 {
    const now = this.o.deps.now();
    return {
      version: STATUS_VERSION,
      generatedAt: iso(now),
      agent: {
        pid: process.pid,
        startedAt: iso(this.startedAt),
        berthVersion: this.o.berthVersion,
        activity: this.activity,
        intervalMs: this.o.intervalMs,
        selfHeal: this.o.selfHeal,
        verifySignatures: this.o.deps.verify !== undefined,
      },
      host: this.o.hostName ?? null,
      env: this.o.env,
      repo: this.o.repoLabel,
      source: {
        desiredCommit: this.desired ?? null,
        lastCheckAt: isoOrNull(this.lastCheckAt),
        lastContactAt: isoOrNull(this.lastContactAt),
        stale: isStale(this.lastContactAt, now, this.o.staleAfterMs),
        error: this.sourceError ?? null,
      },
      applied: {
        commit: this.applied?.commit ?? null,
        at: isoOrNull(this.applied?.at),
        result: this.applied?.result ?? null,
      },
      lastReconcile: this.last ?? null,
      failure: this.failure
        ? {
            commit: this.failure.commit,
            failures: this.failure.failures,
            retryAt: iso(this.failure.retryAt),
            reason: this.failure.reason,
          }
        : null,
      refused: this.refused ?? null,
      drift: {
        checkedAt: isoOrNull(this.drift.checkedAt),
        changes: this.drift.changes,
        selfHeal: this.o.selfHeal,
        repairs: this.repairs,
      },
      engine: {
        reachable: this.engine.reachable,
        checkedAt: isoOrNull(this.engine.checkedAt),
        error: this.engine.error,
      },
      services: this.services,
      held: this.held,
    };
  }

  /** The plans behind the status: drift against the applied commit, and the last reconcile's. */
  plans(): {
    drift?: { commit: string | null; checkedAt: string | null; plan: Plan };
    lastReconcile?: { commit: string | null; plan: Plan };
  } {
    const out: ReturnType<Agent['plans']> = {};
    if (this.drift.plan) {
      out.drift = {
        commit: this.applied?.commit ?? null,
        checkedAt: isoOrNull(this.drift.checkedAt),
        plan: this.drift.plan,
      };
    }
    if (this.lastPlan) out.lastReconcile = this.lastPlan;
    return out;
  }
}

/** How often a long pull is logged. */
const PULL_LOG_EVERY_MS = 5_000;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function isoOrNull(ms: number | undefined): string | null {
  return ms === undefined ? null : iso(ms);
}

function oneLine(s: string): string {
  const line = s.replace(/\s+/g, ' ').trim();
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}
