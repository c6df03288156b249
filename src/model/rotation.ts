/** Where a host stands in its load balancer. */
export type LbState = 'ready' | 'drain' | 'maint' | 'unknown';

/** The host's place in its load balancer, read before planning an apply. */
export interface ObservedRotation {
  /** The provider berth.yaml (or the host's vars) names. */
  provider: string;
  /** What the provider says now; `unknown` when it could not tell (see `error`). */
  state: LbState;
  /** Why the state could not be read. */
  error?: string;
  /** Set when an interrupted apply left the host drained: the state the host had before that. */
  leftover?: LbState;
}

/**
 * How the host leaves and rejoins rotation around the plan's changes, decided by the planner so
 * the executor only carries it out.
 */
export interface RotationPlan {
  provider: string;
  /** The state to put back: after the changes, and at once if the drain itself fails. */
  previous: LbState;
  /** Take the host out before any change, because `cause`. */
  drain?: { cause: string };
  /** After the changes, whatever their result: back into rotation, or back to `previous`. */
  rejoin?: { kind: 'undrain' | 'restore'; cause: string };
}
