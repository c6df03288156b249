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
  /**
   * Before the drain: a lease in each of the host's groups, so no more than the cap of each
   * group is out of rotation at once. Without it the host does not drain, and nothing changes.
   */
  lease?: LeasePlan;
  /** An interrupted apply left the host out of rotation already (a drain marker was found). */
  alreadyOut?: boolean;
}

/** The lease a host takes before it leaves rotation. */
export interface LeasePlan {
  /** The fleet the groups belong to (`project/environment`). */
  scope: string;
  /** Each of the host's groups with the most hosts of it that may be out at once. */
  groups: Array<{ name: string; cap: number }>;
  /** How long the lease lasts if its holder stops renewing it. */
  expiryMs: number;
  /** Why, for the plan and the record. */
  cause: string;
}

/** How long a host waits for a lease to leave rotation when the caller does not say. */
export const DEFAULT_LEASE_WAIT_MS = 10 * 60_000;
