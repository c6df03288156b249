import type { HealthState } from '../health/types.js';
import type { HostOutcomeStatus } from '../host/pipeline.js';
import { LABEL } from '../model/labels.js';
import type { ObservedHost } from '../model/observed.js';
import type { Plan } from '../model/plan.js';
import type { DesiredState } from '../model/service.js';
import type { HistoryRow } from '../store/types.js';

/**
 * The agent's status document, `GET /v1/status`: what `berth status` and a dashboard read. It
 * is versioned: fields are only ever added within a version; a change of meaning or a removal
 * makes a new `version`. It holds commits, images, states and reasons, never an env value.
 */
export const STATUS_VERSION = 'berth.agent.status/v1';

/** What the agent is doing right now. */
export type AgentActivity =
  'starting' | 'idle' | 'checking' | 'reconciling' | 'waiting-for-lock' | 'stopping';

/** The whole document. Times are ISO 8601 (UTC); absent values are `null`, never missing keys. */
export interface AgentStatusV1 {
  version: typeof STATUS_VERSION;
  generatedAt: string;
  agent: {
    pid: number;
    startedAt: string;
    berthVersion: string;
    activity: AgentActivity;
    intervalMs: number;
    selfHeal: boolean;
    verifySignatures: boolean;
  };
  /** The host's inventory name; null for "this host" in a repo without an inventory. */
  host: string | null;
  env: string;
  /** The state repo, credentials removed. */
  repo: string;
  source: {
    /** The commit the branch names on the remote, as last seen. */
    desiredCommit: string | null;
    lastCheckAt: string | null;
    /** Last time the remote answered. */
    lastContactAt: string | null;
    /** True when the remote has not answered for longer than the stale threshold (or never). */
    stale: boolean;
    /** Why the last look at the remote failed; null when it worked. */
    error: string | null;
  };
  applied: {
    /** The last commit the host was converged to (succeeded, or converged with services held). */
    commit: string | null;
    at: string | null;
    result: HostOutcomeStatus | null;
  };
  lastReconcile: ReconcileSummary | null;
  /** The commit in backoff after failing, and when it is tried again. */
  failure: { commit: string; failures: number; retryAt: string; reason: string } | null;
  /** A commit that will not be applied as it stands (bad signature, invalid repo), and why. */
  refused: { commit: string; reason: string } | null;
  drift: {
    checkedAt: string | null;
    /** Each difference between the host and the applied commit, as the plan names it. */
    changes: Array<{ service: string; kind: string; cause: string }>;
    selfHeal: boolean;
    /** Self-heal applies since the agent started. */
    repairs: number;
  };
  engine: { reachable: boolean | null; checkedAt: string | null; error: string | null };
  /** Per service of the applied commit (and any managed container the repo no longer has). */
  services: ServiceStatus[];
  /** Services left as they run because their values could not be made (a missing secret). */
  held: Array<{ service: string; reason: string }>;
}

export interface ReconcileSummary {
  commit: string | null;
  /** What started it: `start`, `interval`, `webhook:github`, `api`, `drift`, `retry`. */
  trigger: string;
  status: HostOutcomeStatus | 'refused' | 'error';
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  /** The record's id of the apply, when something was recorded. */
  applyId: number | null;
  error: string | null;
}

export interface ServiceStatus {
  name: string;
  /** The image reference the running container was made from; null when there is none. */
  image: string | null;
  /** The image's registry digest (`sha256:…`), when the engine knows one. */
  digest: string | null;
  /** The engine's state (`running`, `exited`, `paused`, …) or `missing`. */
  state: string;
  /** The service's own health check (or "running" when it has none) at the last look; `unknown` before one. */
  health: HealthState | 'unknown';
  gitCommit: string | null;
  buildNumber: string | null;
  /** The state commit the container was made from. */
  stateCommit: string | null;
  /** True when the repo no longer has it (it will be removed). */
  orphan: boolean;
  /** The newest recorded action on this service. */
  lastResult: { action: string; result: string; at: string; message: string | null } | null;
}

/**
 * One row per service from a look at the host: the desired services first (in the repo's
 * order), then managed containers the repo no longer has. Pure: health and history come in.
 */
export function serviceRows(
  desired: DesiredState,
  observed: ObservedHost,
  health: ReadonlyMap<string, HealthState>,
  history: readonly HistoryRow[],
): ServiceStatus[] {
  const managed = new Map(
    observed.containers
      .filter((c) => c.labels[LABEL.service] !== undefined && c.name === c.labels[LABEL.service])
      .map((c) => [c.name, c]),
  );
  const lastAction = new Map<string, HistoryRow>();
  for (const row of history) {
    // Rows come newest first; a shared pull names its services joined by commas.
    for (const s of row.service.split(',')) if (!lastAction.has(s)) lastAction.set(s, row);
  }
  const digestOf = (imageId: string, image: string): string | null => {
    const img = observed.images.find((i) => i.id === imageId);
    const repo = image.replace(/@.*$/, '').replace(/:[^/:]+$/, '');
    const d = img?.repoDigests.find((r) => r.startsWith(`${repo}@`)) ?? img?.repoDigests[0];
    return d ? d.slice(d.indexOf('@') + 1) : null;
  };
  const row = (name: string, orphan: boolean): ServiceStatus => {
    const c = managed.get(name);
    const last = lastAction.get(name);
    return {
      name,
      image: c?.image ?? null,
      digest: c ? digestOf(c.imageId, c.image) : null,
      state: c?.state ?? 'missing',
      health: health.get(name) ?? 'unknown',
      gitCommit: c?.labels[LABEL.gitCommit] || null,
      buildNumber: c?.labels[LABEL.buildNumber] || null,
      stateCommit: c?.labels[LABEL.stateCommit] || null,
      orphan,
      lastResult: last
        ? {
            action: last.action,
            result: last.result,
            at: last.finishedAt ?? last.startedAt,
            message: last.message ?? null,
          }
        : null,
    };
  };
  const names = desired.services.map((s) => s.name);
  const wanted = new Set([...names, ...(desired.held ?? [])]);
  return [
    ...names.map((n) => row(n, false)),
    ...[...managed.keys()].filter((n) => !wanted.has(n)).map((n) => row(n, true)),
  ];
}

/** The plan's differences, one entry per operation, as `drift.changes` lists them. */
export function driftChanges(plan: Plan): AgentStatusV1['drift']['changes'] {
  return plan.operations.map((op) => ({ service: op.service, kind: op.kind, cause: op.cause }));
}
