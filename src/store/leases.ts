import { sleep as abortableSleep } from '../adapters/clock.js';
import { CancelledError, ExternalError } from '../model/errors.js';
import { StoreUnavailableError } from './types.js';

/**
 * Leases that cap how many hosts of a group are out of rotation at once, whoever drives them
 * (agents acting on their own, `deploy`, a person's `apply`). A host takes one before it drains
 * and gives it back once it is in rotation again; the database that holds the fleet's record
 * holds the leases too, so there is one place to ask. A lease has an expiry its holder keeps
 * pushing out while it lives: a holder that dies loses the lease after the expiry, never sooner.
 */

/** A group of hosts and how many of them may hold a lease at once. */
export interface LeaseGroup {
  name: string;
  /** At most this many holders at once (at least 1). */
  cap: number;
}

/** What a host asks for before it drains. */
export interface LeaseRequest {
  /**
   * The fleet the groups belong to (`project/environment`): `app_server` of staging and of
   * production are different hosts.
   */
  scope: string;
  /** Every group the host is in: it takes a lease in all of them at once, or in none. */
  groups: LeaseGroup[];
  /** The host. One lease per host and group: a host that asks again (after a crash) takes its own back. */
  holder: string;
  /** Who asks, shown to whoever waits: `berth apply`, `berth agent`, `berth deploy`. */
  command: string;
  /** How long the lease lasts without renewal. */
  ttlMs: number;
}

/** A live lease as others see it. */
export interface LeaseInfo {
  scope: string;
  group: string;
  holder: string;
  command: string;
  /** When it was taken (ISO 8601). */
  acquiredAt: string;
  /** When it lapses unless renewed (ISO 8601, the database's clock). */
  expiresAt: string;
}

/** One try: the lease, or the group that is full and who fills it. */
export type LeaseAttempt =
  { ok: true; token: string } | { ok: false; group: string; cap: number; holders: LeaseInfo[] };

/**
 * Where leases are kept: the store's own database. Expiry is judged on the database's clock, so
 * hosts whose clocks disagree still agree on who holds a lease.
 */
export interface LeaseBackend {
  /**
   * Take a lease in every group of the request if each has room (leases of other holders that
   * are still live count; the holder's own do not), all in one transaction; otherwise take none.
   * @throws StoreUnavailableError when the database cannot be reached.
   */
  tryAcquire(req: LeaseRequest): Promise<LeaseAttempt>;
  /** Push the expiry out by `ttlMs`; false when the lease is gone (it lapsed, or was given back). */
  renew(req: LeaseRequest, token: string): Promise<boolean>;
  /** Give the lease back; nothing happens when it is already gone. */
  release(req: LeaseRequest, token: string): Promise<void>;
  /** The live leases of a scope, oldest first. */
  list(scope: string): Promise<LeaseInfo[]>;
}

/** A lease this process holds; it is renewed in the background until released or abandoned. */
export interface HeldLease {
  readonly request: LeaseRequest;
  /** Set when a renewal found the lease gone; the holder goes on, but others may have taken its place. */
  lost(): boolean;
  /** Stop renewing and give the lease back (errors are reported, not thrown). */
  release(): Promise<void>;
  /**
   * Stop renewing and leave the lease to lapse: for a host that could not be put back into
   * rotation, which is still unavailable and should keep others from draining meanwhile.
   */
  abandon(): void;
}

export interface TakeLeaseOptions {
  /** How long to wait for room (or for the database) before giving up. */
  waitMs: number;
  signal?: AbortSignal;
  /** Progress for whoever watches: why it waits. Called when the reason changes, and now and then. */
  onWait?: (message: string) => void;
  /** Trouble after the lease was taken (renewals failing, the lease lost). */
  onTrouble?: (message: string) => void;
  /** For tests: the clock and the pause between tries. */
  now?: () => number;
  pollMs?: number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** No lease could be had in time: the host must not drain. */
export class LeaseUnavailableError extends ExternalError {
  constructor(message: string) {
    super('lease', message);
    this.name = 'LeaseUnavailableError';
  }
}

const DEFAULT_POLL_MS = 500;
const MAX_POLL_MS = 2_000;
/** Repeat an unchanged "still waiting" at most this often. */
const REPEAT_WAIT_MS = 10_000;

/**
 * Take a lease, waiting up to `waitMs` for room in every group and for the database to answer.
 * Once taken, it is renewed every third of its lifetime until released.
 * @throws LeaseUnavailableError after `waitMs`; CancelledError when `signal` aborts.
 */
export async function takeLease(
  backend: LeaseBackend,
  req: LeaseRequest,
  opts: TakeLeaseOptions,
): Promise<HeldLease> {
  const now = opts.now ?? Date.now;
  const pause = opts.sleep ?? abortableSleep;
  const deadline = now() + opts.waitMs;
  let poll = opts.pollMs ?? DEFAULT_POLL_MS;
  let lastReason = '';
  let lastSaid = -Infinity;
  const say = (reason: string) => {
    if (reason === lastReason && now() - lastSaid < REPEAT_WAIT_MS) return;
    lastReason = reason;
    lastSaid = now();
    opts.onWait?.(reason);
  };
  for (;;) {
    if (opts.signal?.aborted) throw new CancelledError('cancelled while waiting for a lease');
    let why: string;
    try {
      const r = await backend.tryAcquire(req);
      if (r.ok) return hold(backend, req, r.token, opts);
      why = full(req, r);
    } catch (e) {
      if (!(e instanceof StoreUnavailableError)) throw e;
      why = `the record cannot be reached (${e.message.replace(/^store: /, '')})`;
    }
    const left = deadline - now();
    if (left <= 0) {
      throw new LeaseUnavailableError(`no lease for ${req.holder} after ${seconds(opts.waitMs)}: ${why}`);
    }
    say(`waiting for a lease: ${why}`);
    // A little jitter, so hosts that wait together do not ask together.
    const ms = Math.min(left, poll * (0.8 + Math.random() * 0.4));
    // Ends early when the signal aborts; the top of the loop then says so.
    await pause(ms, opts.signal);
    poll = Math.min(MAX_POLL_MS, Math.round(poll * 1.5));
  }
}

function hold(backend: LeaseBackend, req: LeaseRequest, token: string, opts: TakeLeaseOptions): HeldLease {
  let lost = false;
  let done = false;
  let renewing: Promise<void> | undefined;
  const trouble = (m: string) => opts.onTrouble?.(m);
  const renew = async () => {
    try {
      if (!(await backend.renew(req, token)) && !done) {
        lost = true;
        trouble(`the lease of ${req.holder} lapsed before it was renewed; other hosts may drain meanwhile`);
      }
    } catch (e) {
      // The database may come back before the lease lapses; keep trying at the next tick.
      if (!done) trouble(`renewing the lease of ${req.holder} failed: ${(e as Error).message}`);
    }
  };
  const timer = setInterval(
    () => {
      if (done || lost || renewing) return;
      renewing = renew().finally(() => (renewing = undefined));
    },
    Math.max(100, Math.floor(req.ttlMs / 3)),
  );
  timer.unref();
  const stop = () => {
    done = true;
    clearInterval(timer);
  };
  return {
    request: req,
    lost: () => lost,
    async release() {
      if (done) return;
      stop();
      await renewing;
      try {
        await backend.release(req, token);
      } catch (e) {
        trouble(
          `giving back the lease of ${req.holder} failed (${(e as Error).message}); it lapses in ${seconds(req.ttlMs)}`,
        );
      }
    },
    abandon: stop,
  };
}

function full(req: LeaseRequest, r: Extract<LeaseAttempt, { ok: false }>): string {
  const who = r.holders
    .map((h) => `${h.holder} (${h.command}, since ${h.acquiredAt.slice(11, 19)}Z)`)
    .join(', ');
  return `${r.holders.length} of ${r.cap} hosts of group ${r.group} (${req.scope}) are out of rotation: ${who}`;
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
