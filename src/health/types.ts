/**
 * Health states, best first. When several containers or checks are summed up, the worst one
 * wins (as argo's gitops-engine does): one failed container makes the service failed.
 */
export const HEALTH_STATES = ['healthy', 'starting', 'unhealthy', 'failed'] as const;

/**
 * - `healthy`: the last check passed.
 * - `starting`: no verdict yet (start period, or Docker's own HEALTHCHECK still `starting`).
 * - `unhealthy`: checks fail, but a later one could still pass.
 * - `failed`: no later check can pass: the container exited, or it cannot be checked at all.
 */
export type HealthState = (typeof HEALTH_STATES)[number];

/** Negative when `a` is better than `b`, 0 when equal, positive when worse. */
export function compareHealth(a: HealthState, b: HealthState): number {
  return HEALTH_STATES.indexOf(a) - HEALTH_STATES.indexOf(b);
}

/** The worst of `states`; `healthy` when there are none (nothing to wait for). */
export function worstHealth(states: Iterable<HealthState>): HealthState {
  let worst: HealthState = 'healthy';
  for (const s of states) if (compareHealth(s, worst) > 0) worst = s;
  return worst;
}

/** What one check found. */
export interface ProbeResult {
  ok: boolean;
  /** The check's output, short and on one line, for the record (`HTTP 500: boom`). */
  output: string;
  /**
   * No verdict yet (Docker's own HEALTHCHECK says `starting`): neither a pass nor a failure
   * that counts toward `retries`. Only with `ok: false`.
   */
  starting?: boolean;
  /** No later check can pass (the container exited, the image has no HEALTHCHECK): stop now. */
  final?: boolean;
}

/** The state one probe result stands for. */
export function probeState(r: ProbeResult): HealthState {
  if (r.ok) return 'healthy';
  if (r.final) return 'failed';
  return r.starting ? 'starting' : 'unhealthy';
}

/** Whether the container is still up; `exitCode` once it has stopped. */
export interface RunState {
  running: boolean;
  exitCode?: number;
  /** The engine's word for the state (`exited`, `restarting`, `dead`), for the reason text. */
  status?: string;
}

/**
 * A probe as `waitHealthy` calls it. It should end by itself within the check's timeout; the
 * signal aborts when `waitHealthy` stops waiting for it, so a socket is not left open.
 */
export type Probe = (signal?: AbortSignal) => Promise<ProbeResult>;
