/**
 * The agent's failure policy as pure functions of the clock: when to look again, when a commit
 * that failed may be tried again, when the source counts as stale. The loop asks; nothing here
 * waits or reads a clock.
 */

/** How a failing commit is retried: doubling waits from `baseMs`, never longer than `maxMs`. */
export interface BackoffSettings {
  baseMs: number;
  maxMs: number;
}

/** The commit that failed last, how often in a row, and when it may be tried again. */
export interface FailureState {
  commit: string;
  failures: number;
  /** Epoch ms. */
  retryAt: number;
  /** One line for people: why the last try failed. */
  reason: string;
}

/**
 * The failure state after `commit` failed at `now`. Failures of the same commit double the
 * wait up to the cap; another commit starts again from the base (a new commit resets backoff).
 */
export function afterFailure(
  prev: FailureState | undefined,
  commit: string,
  reason: string,
  now: number,
  s: BackoffSettings,
): FailureState {
  const failures = prev?.commit === commit ? prev.failures + 1 : 1;
  // 2^30 is far past any cap; the exponent is bounded so the number stays finite.
  const wait = Math.min(s.maxMs, s.baseMs * 2 ** Math.min(failures - 1, 30));
  return { commit, failures, retryAt: now + wait, reason };
}

/** Whether `commit` may be tried now: it is not the one in backoff, or its wait is over. */
export function mayTry(state: FailureState | undefined, commit: string, now: number): boolean {
  return state === undefined || state.commit !== commit || now >= state.retryAt;
}

/**
 * The wait before the next look: the interval, moved by up to ±`spread` of itself so that a
 * fleet started at once does not poll its git server in step. `random` is in [0, 1).
 */
export function jittered(intervalMs: number, random: number, spread = 0.1): number {
  return Math.max(1, Math.round(intervalMs * (1 - spread + 2 * spread * random)));
}

/**
 * Whether what the agent knows of its source is too old to trust: it has never reached the
 * remote, or not for longer than `staleAfterMs`.
 */
export function isStale(lastContact: number | undefined, now: number, staleAfterMs: number): boolean {
  return lastContact === undefined || now - lastContact > staleAfterMs;
}
