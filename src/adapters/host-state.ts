import type { LbState } from '../model/rotation.js';

/**
 * State that belongs to a host rather than to whoever runs berth against it: the apply lock,
 * the note that berth drained the host, and the key of the secret digests. It is kept where
 * the host's engine is and reached through the same connection, so a person's `apply`, a
 * `deploy` from a laptop or CI and the host's own agent all see one lock and one key, whatever
 * record folder or DOCKER_HOST spelling each of them uses.
 */
export interface HostState {
  /**
   * Take the host's lock for `holder`, or fail with HostBusyError naming who holds it and since
   * when. A holder that is gone (its process died on this machine, or it stopped renewing from
   * another one) is replaced at once. With `waitMs`, a live holder is waited for that long.
   */
  lock(holder: LockHolder, opts?: { waitMs?: number; signal?: AbortSignal }): Promise<HeldLock>;
  /** Who holds the lock now, if anyone (a read: `plan` says the host is busy). */
  lockHolder(): Promise<LockInfo | undefined>;
  /** The drain marker: set while berth has the host out of its load balancer. */
  readonly drainMarker: DrainMarker;
  /** This host's key for digests of secret-bearing values; made on first use. */
  digestKey(): Promise<Buffer>;
}

/** Who is asking for the lock; shown to whoever finds the host busy. */
export interface LockHolder {
  /** What runs: `berth apply`, `berth agent`, `berth deploy`. */
  command: string;
}

/** A lock as another process sees it. */
export interface LockInfo {
  command: string;
  /** The machine the holder runs on (its hostname). */
  machine: string;
  pid: number;
  user: string;
  /** When the lock was taken, ISO 8601 in the host's own clock. */
  since: string;
}

export interface HeldLock {
  /** Who holds it (this process); `since` is filled in by `describe()`. */
  readonly info: LockInfo;
  /** The lock as others see it, `since` on the host's clock. */
  describe(): Promise<LockInfo>;
  /** Give the lock back; safe to call twice. */
  release(): Promise<void>;
}

/**
 * A note that berth took this host out of rotation, written before the drain and removed once
 * the host is back. If berth dies in between, the next apply finds it and puts the host back
 * into the state it had before, so no host stays drained by berth.
 */
export interface DrainMarker {
  /** The state the host had before berth drained it, or undefined when there is no marker. */
  read(): Promise<LbState | undefined>;
  /** Set the marker; a marker already there keeps its own (earlier) state. */
  write(previous: LbState): Promise<void>;
  clear(): Promise<void>;
}
