/**
 * The contract every drain provider keeps, run against each one with a harness that can see the
 * load balancer's real state without going through the provider under test.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';
import { ExternalError } from '../../model/errors.js';
import type { DrainProvider, DrainTarget, LbState } from './types.js';

export interface DrainHarness {
  /** The host under test; its entry exists in the load balancer. */
  target(): DrainTarget;
  /** The target's real state, read without the provider. */
  observe(): Promise<LbState>;
  /** Force the target into a state without the provider (before each case: ready). */
  set(state: Exclude<LbState, 'unknown'>): Promise<void>;
  /** A client connection through the load balancer to the target, held open until released. */
  hold(): Promise<{ release(): void; done: Promise<number> }>;
  /** Whether a request through the load balancer reaches the target now (bounded). */
  reaches(): Promise<boolean>;
  /** Targets that must fail clearly: each error must be an ExternalError naming `mentions`. */
  broken(): Array<{ what: string; target: DrainTarget; mentions: string[] }>;
  /**
   * Set when the load balancer does not tell when a host's last connection ends, so a drain
   * waits a fixed grace instead of watching sessions (Octavia has no per-member connection
   * count; ELBv2 shows a target `draining` for the group's whole deregistration delay).
   * `timeout`: the provider itself waits the whole timeout, then takes the host out. A number:
   * the load balancer's own delay in ms, during which the host is `drain`; the provider waits for
   * it, at most its timeout. Absent: the provider sees sessions and returns when they end.
   */
  grace?: 'timeout' | number;
}

const STATES = ['ready', 'drain', 'maint'] as const;

/**
 * How long a `drain` with nothing to wait for may take: generous, as every upper bound on wall
 * time in our tests (shared CI machines). Where "at once" must differ from "waited", the timeout
 * it must not have waited for is far longer (LONG_MS).
 */
const QUICK_MS = 10_000;
const LONG_MS = 60_000;

/** A drain timeout long enough for every wait the contract expects to end before it. */
const SHORT_MS = 1_200;

/** How long a drain with a timeout of `timeoutMs` waits on a load balancer with a fixed grace. */
function graceWait(grace: 'timeout' | number, timeoutMs: number): number {
  return grace === 'timeout' ? timeoutMs : Math.min(grace, timeoutMs);
}

/** The state a drain leaves behind: maint, unless the load balancer's own delay outlasted it. */
function stateAfter(grace: 'timeout' | number | undefined, timeoutMs: number): LbState {
  return grace === undefined || grace === 'timeout' || grace < timeoutMs ? 'maint' : 'drain';
}

async function timed<T>(f: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await f();
  return { value, ms: performance.now() - start };
}

/** Register the contract's tests for `provider`; `harness` is called once the test's world is up. */
export function drainContract(provider: DrainProvider, harness: () => DrainHarness): void {
  describe(`drain provider contract: ${provider.name}`, () => {
    let h: DrainHarness;
    let t: DrainTarget;
    beforeEach(async () => {
      h = harness();
      t = h.target();
      await h.set('ready');
    });

    test('status reports each state the load balancer is in', async () => {
      for (const s of STATES) {
        await h.set(s);
        assert.equal(await provider.status(t), s, `after setting ${s}`);
      }
    });

    test('drain with no sessions: ready -> maint at once (or after the fixed grace)', async () => {
      assert.equal(await provider.status(t), 'ready');
      const grace = h.grace;
      const timeoutMs = grace === undefined ? LONG_MS : 1_500;
      const { ms } = await timed(() => provider.drain(t, { timeoutMs }));
      if (grace === undefined) {
        assert.ok(ms < QUICK_MS, `drain took ${Math.round(ms)} ms with nothing to wait for`);
      } else {
        const wait = graceWait(grace, timeoutMs);
        assert.ok(ms >= wait - 50, `returned after ${Math.round(ms)} ms, before the ${wait} ms grace`);
        assert.ok(ms < wait + QUICK_MS, `took ${Math.round(ms)} ms for a ${wait} ms grace`);
      }
      assert.equal(await h.observe(), 'maint');
      assert.equal(await provider.status(t), 'maint');
      assert.equal(await h.reaches(), false, 'traffic still reaches a drained host');
    });

    test('drain keeps a request in flight answered while it waits its fixed grace, then maint', async (c) => {
      const grace = h.grace;
      if (grace === undefined) return c.skip('this provider watches sessions (next case)');
      const wait = graceWait(grace, 1_500);
      const held = await h.hold();
      const started = performance.now();
      let settled = false;
      const draining = provider.drain(t, { timeoutMs: 1_500 }).finally(() => (settled = true));
      await new Promise((r) => setTimeout(r, wait * 0.4));
      assert.equal(settled, false, 'drain returned before its grace');
      assert.equal(await h.observe(), 'drain', 'out of rotation for new requests while waiting');
      assert.equal(await h.reaches(), false, 'a new request reached the draining host');
      setTimeout(() => held.release(), Math.max(0, wait * 0.6 - (performance.now() - started)));
      await draining;
      const ms = performance.now() - started;
      assert.ok(ms >= wait - 50, `drain returned after ${Math.round(ms)} ms, before its ${wait} ms grace`);
      assert.ok(ms < wait + QUICK_MS, `drain took ${Math.round(ms)} ms for a ${wait} ms grace`);
      assert.equal(await held.done, 200, 'the request in flight was answered');
      assert.equal(await h.observe(), 'maint');
    });

    test('drain waits for a request in flight, which completes, then goes to maint', async (c) => {
      if (h.grace !== undefined) return c.skip('this provider cannot see sessions (previous case)');
      const held = await h.hold();
      const started = performance.now();
      let settled = false;
      const draining = provider.drain(t, { timeoutMs: LONG_MS }).finally(() => (settled = true));
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(settled, false, 'drain returned while a request was in flight');
      assert.equal(await h.observe(), 'drain', 'out of rotation for new requests while waiting');
      setTimeout(() => held.release(), 600);
      await draining;
      const ms = performance.now() - started;
      assert.ok(ms >= 900, `drain returned after ${Math.round(ms)} ms, before the request ended`);
      assert.ok(ms < 1_000 + QUICK_MS, `drain took ${Math.round(ms)} ms after the request ended`);
      assert.equal(await held.done, 200, 'the request in flight was answered');
      assert.equal(await h.observe(), 'maint');
    });

    test('drain gives up waiting at the timeout and still takes the host out', async () => {
      const held = await h.hold();
      try {
        const { ms } = await timed(() => provider.drain(t, { timeoutMs: 500 }));
        assert.ok(ms >= 450, `returned after ${Math.round(ms)} ms, before the 500 ms timeout`);
        assert.ok(ms < 500 + QUICK_MS, `returned ${Math.round(ms)} ms after a 500 ms timeout`);
        // Out for new requests either way; `drain` only while the load balancer's own delay runs.
        assert.equal(await h.observe(), stateAfter(h.grace, 500));
        assert.equal(await h.reaches(), false, 'traffic reaches a host drained up to its timeout');
      } finally {
        held.release();
        await held.done;
      }
    });

    test('an aborted drain stops waiting at once and does not take the host out', async () => {
      const held = await h.hold();
      try {
        const ac = new AbortController();
        setTimeout(() => ac.abort(new Error('rollout cancelled')), 200);
        const started = performance.now();
        await assert.rejects(
          provider.drain(t, { timeoutMs: LONG_MS, signal: ac.signal }),
          /rollout cancelled/,
        );
        assert.ok(performance.now() - started < 200 + QUICK_MS);
        assert.notEqual(await h.observe(), 'maint');
      } finally {
        held.release();
        await held.done;
      }
    });

    test('undrain puts the host back in rotation and traffic reaches it again', async () => {
      await provider.drain(t, { timeoutMs: SHORT_MS });
      assert.equal(await h.reaches(), false);
      await provider.undrain(t);
      assert.equal(await h.observe(), 'ready');
      assert.equal(await provider.status(t), 'ready');
      assert.equal(await h.reaches(), true, 'no request reached the host after undrain');
    });

    test('drain and undrain are idempotent', async () => {
      const progress: string[] = [];
      await provider.drain(t, { timeoutMs: SHORT_MS });
      const { ms } = await timed(() =>
        provider.drain(t, { timeoutMs: LONG_MS, onProgress: (m) => progress.push(m) }),
      );
      assert.ok(ms < QUICK_MS);
      assert.equal(await h.observe(), 'maint');
      await provider.undrain(t);
      await provider.undrain(t);
      assert.equal(await h.observe(), 'ready');
    });

    test('restore puts back each saved state, from any state; unknown changes nothing', async () => {
      for (const from of STATES) {
        for (const saved of STATES) {
          await h.set(from);
          await provider.restore(t, saved);
          assert.equal(await h.observe(), saved, `restore ${saved} from ${from}`);
        }
      }
      await h.set('drain');
      await provider.restore(t, 'unknown');
      assert.equal(await h.observe(), 'drain');
    });

    test('a wrong target or an unreachable load balancer fails clearly, naming it', async () => {
      for (const b of h.broken()) {
        const calls: Array<[string, () => Promise<unknown>]> = [
          ['status', () => provider.status(b.target)],
          ['drain', () => provider.drain(b.target, { timeoutMs: 500 })],
          ['undrain', () => provider.undrain(b.target)],
          ['restore', () => provider.restore(b.target, 'ready')],
        ];
        for (const [op, call] of calls) {
          const { value: err, ms } = await timed(() =>
            call().then(
              () => undefined,
              (e: unknown) => e,
            ),
          );
          assert.ok(err instanceof ExternalError, `${b.what}: ${op} gave ${String(err)}`);
          for (const word of b.mentions) {
            assert.ok(err.message.includes(word), `${b.what}: ${op}: "${err.message}" does not name ${word}`);
          }
          assert.ok(ms < QUICK_MS, `${b.what}: ${op} took ${Math.round(ms)} ms to fail`);
        }
      }
      assert.equal(await h.observe(), 'ready', 'the real target was touched');
    });
  });
}
