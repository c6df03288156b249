import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The agent's Prometheus metrics, on a registry of its own (never prom-client's global one, so
 * two agents in one test process never share counters). Names follow Prometheus conventions:
 * `_total` for counters, `_seconds` for durations, `_info` for a label carrying a value.
 */
export interface AgentMetrics {
  readonly registry: Registry;
  reconcileDuration: Histogram<'trigger' | 'result'>;
  reconciles: Counter<'result'>;
  sourceChecks: Counter<'result'>;
  sourceStale: Gauge;
  sourceLastContact: Gauge;
  driftServices: Gauge;
  driftDetected: Counter;
  driftRepairs: Counter<'result'>;
  appliedCommit: Gauge<'commit'>;
  desiredCommit: Gauge<'commit'>;
  consecutiveFailures: Gauge;
  webhooks: Counter<'kind' | 'result'>;
  notifications: Counter<'notifier' | 'result'>;
  /** Point an `_info` gauge at `commit` (one series at 1, the previous one removed). */
  setCommit(g: Gauge<'commit'>, commit: string | undefined): void;
}

export function agentMetrics(opts: { processMetrics?: boolean } = {}): AgentMetrics {
  const registry = new Registry();
  const registers = [registry];
  if (opts.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'berth_agent_' });
  const m: AgentMetrics = {
    registry,
    reconcileDuration: new Histogram({
      name: 'berth_agent_reconcile_duration_seconds',
      help: 'Time of one reconcile: read the commit, plan, apply, record.',
      labelNames: ['trigger', 'result'],
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    }),
    reconciles: new Counter({
      name: 'berth_agent_reconciles_total',
      help: 'Reconciles by how they ended: applied, no-op, held, blocked, failed, cancelled, refused, error.',
      labelNames: ['result'],
      registers,
    }),
    sourceChecks: new Counter({
      name: 'berth_agent_source_checks_total',
      help: 'Looks at the remote branch (git ls-remote), by result: ok or error.',
      labelNames: ['result'],
      registers,
    }),
    sourceStale: new Gauge({
      name: 'berth_agent_source_stale',
      help: '1 when the remote has not answered for longer than the stale threshold.',
      registers,
    }),
    sourceLastContact: new Gauge({
      name: 'berth_agent_source_last_contact_timestamp_seconds',
      help: 'When the remote last answered (Unix time).',
      registers,
    }),
    driftServices: new Gauge({
      name: 'berth_agent_drift_services',
      help: 'Services whose containers differ from the applied commit at the last look.',
      registers,
    }),
    driftDetected: new Counter({
      name: 'berth_agent_drift_detected_total',
      help: 'Looks that found the host different from the applied commit.',
      registers,
    }),
    driftRepairs: new Counter({
      name: 'berth_agent_drift_repairs_total',
      help: 'Self-heal applies of the applied commit, by how they ended.',
      labelNames: ['result'],
      registers,
    }),
    appliedCommit: new Gauge({
      name: 'berth_agent_applied_commit_info',
      help: 'The state commit the host was last converged to (the label holds it).',
      labelNames: ['commit'],
      registers,
    }),
    desiredCommit: new Gauge({
      name: 'berth_agent_desired_commit_info',
      help: 'The commit the branch names on the remote, as last seen (the label holds it).',
      labelNames: ['commit'],
      registers,
    }),
    consecutiveFailures: new Gauge({
      name: 'berth_agent_consecutive_failures',
      help: 'Failed tries of the commit in backoff (0 when none).',
      registers,
    }),
    webhooks: new Counter({
      name: 'berth_agent_webhooks_total',
      help: 'Webhooks received, by form and result: accepted, bad_signature, too_large, disabled.',
      labelNames: ['kind', 'result'],
      registers,
    }),
    notifications: new Counter({
      name: 'berth_agent_notifications_total',
      help: 'Commit statuses and notifications sent, by notifier and result: sent or failed.',
      labelNames: ['notifier', 'result'],
      registers,
    }),
    setCommit(g, commit) {
      g.reset();
      if (commit) g.set({ commit }, 1);
    },
  };
  return m;
}
