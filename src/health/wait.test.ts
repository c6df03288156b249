import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HealthcheckSpec } from '../model/service.js';
import { compareHealth, probeState, worstHealth, type ProbeResult, type RunState } from './types.js';
import { suggestedDeadline, waitHealthy, type WaitDeps, type WaitOptions } from './wait.js';

/**
 * A clock that only moves when every pending promise has settled: each `sleep` is a timer, and
 * the earliest one fires (moving `now` to its time) on the next macrotask. No real waiting.
 */
function fakeClock() {
  let t = 0;
  const timers: Array<{ at: number; fire: () => void }> = [];
  let scheduled = false;
  const tick = () => {
    scheduled = false;
    timers.sort((a, b) => a.at - b.at);
    const next = timers.shift();
    if (!next) return;
    t = Math.max(t, next.at);
    next.fire();
    if (timers.length > 0) schedule();
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(tick);
  };
  const sleep = (ms: number, signal?: AbortSignal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = {
        at: t + ms,
        fire: () => {
          signal?.removeEventListener('abort', cancel);
          resolve();
        },
      };
      const cancel = () => {
        const i = timers.indexOf(timer);
        if (i >= 0) timers.splice(i, 1);
        resolve();
      };
      timers.push(timer);
      signal?.addEventListener('abort', cancel, { once: true });
      schedule();
    });
  return { now: () => t, sleep };
}

type Step = 'ok' | 'fail' | 'starting' | 'hang' | 'final' | 'throw' | { after: number; then: Step };

/**
 * A probe that answers `steps` in order (the last one repeats), and a container that runs until
 * `exitAt` (a time on the fake clock) with `exitCode`. Records when each check began.
 */
function world(steps: Step[], opts: { exitAt?: number; exitCode?: number; runningThrows?: boolean } = {}) {
  const clock = fakeClock();
  const calls: number[] = [];
  const signals: AbortSignal[] = [];
  const answer = async (step: Step, n: number, signal?: AbortSignal): Promise<ProbeResult> => {
    if (typeof step === 'object') {
      await clock.sleep(step.after);
      return answer(step.then, n, signal);
    }
    switch (step) {
      case 'ok':
        return { ok: true, output: `pass ${n}` };
      case 'fail':
        return { ok: false, output: `fail ${n}` };
      case 'starting':
        return { ok: false, starting: true, output: `starting ${n}` };
      case 'final':
        return { ok: false, final: true, output: 'the image has no Docker HEALTHCHECK' };
      case 'throw':
        throw new Error(`engine down ${n}`);
      case 'hang':
        return new Promise<ProbeResult>(() => undefined);
    }
  };
  const deps: WaitDeps = {
    now: clock.now,
    sleep: clock.sleep,
    probe: (signal) => {
      calls.push(clock.now());
      if (signal) signals.push(signal);
      const n = calls.length;
      return answer(steps[Math.min(n - 1, steps.length - 1)]!, n, signal);
    },
    containerRunning: async (): Promise<RunState> => {
      if (opts.runningThrows) throw new Error('docker: inspect container c1: no such container');
      if (opts.exitAt !== undefined && clock.now() >= opts.exitAt) {
        return { running: false, exitCode: opts.exitCode ?? 1, status: 'exited' };
      }
      return { running: true };
    },
  };
  return { clock, calls, signals, deps };
}

const spec = (o: Partial<HealthcheckSpec> = {}): HealthcheckSpec => ({
  interval: 1000,
  timeout: 500,
  retries: 3,
  startPeriod: 0,
  ...o,
});
const long: WaitOptions = { deadlineMs: 600_000 };

test('the first check runs at once, and one pass is healthy at once', async () => {
  const w = world(['ok']);
  const r = await waitHealthy(spec(), w.deps, long);
  assert.deepEqual(r, { healthy: true, state: 'healthy', checks: 1, output: 'pass 1' });
  assert.deepEqual(w.calls, [0]);
  assert.equal(w.clock.now(), 0);
});

test('checks are one interval apart, and a pass after failures is healthy', async () => {
  const w = world(['fail', 'fail', 'ok']);
  const r = await waitHealthy(spec({ retries: 3 }), w.deps, long);
  assert.deepEqual(r, { healthy: true, state: 'healthy', checks: 3, output: 'pass 3' });
  assert.deepEqual(w.calls, [0, 1000, 2000]);
});

test('the interval runs from the end of the previous check', async () => {
  const w = world([{ after: 300, then: 'fail' }, 'ok']);
  const r = await waitHealthy(spec(), w.deps, long);
  assert.equal(r.healthy, true);
  assert.deepEqual(w.calls, [0, 1300]);
});

test('`retries` consecutive failures are unhealthy, with the last output', async () => {
  const w = world(['fail']);
  const r = await waitHealthy(spec({ retries: 3 }), w.deps, long);
  assert.deepEqual(r, {
    healthy: false,
    state: 'unhealthy',
    reason: '3 consecutive checks failed',
    output: 'fail 3',
    checks: 3,
  });
  assert.deepEqual(w.calls, [0, 1000, 2000]);
});

test('retries below 1 mean 1, as Docker', async () => {
  const w = world(['fail']);
  const r = await waitHealthy(spec({ retries: 0 }), w.deps, long);
  assert.equal(r.healthy, false);
  assert.equal(r.checks, 1);
});

test('failures of checks that began within the start period do not count', async () => {
  const w = world(['fail']);
  const r = await waitHealthy(spec({ startPeriod: 2500, retries: 2 }), w.deps, long);
  assert.equal(r.healthy, false);
  assert.equal(r.healthy === false && r.reason, '2 consecutive checks failed');
  // 0, 1000, 2000 are in the start period; 3000 and 4000 count.
  assert.deepEqual(w.calls, [0, 1000, 2000, 3000, 4000]);
});

test('a pass within the start period is healthy at once', async () => {
  const w = world(['fail', 'fail', 'ok']);
  const r = await waitHealthy(spec({ startPeriod: 10_000, retries: 1 }), w.deps, long);
  assert.equal(r.healthy, true);
  assert.deepEqual(w.calls, [0, 1000, 2000]);
});

test('a pass breaks a run of failures', async () => {
  // Needs two passes in a row; with retries 2 the failures at 0 and 2000 are not consecutive.
  const w = world(['fail', 'ok', 'fail', 'ok', 'ok']);
  const r = await waitHealthy(spec({ retries: 2 }), w.deps, { ...long, successes: 2 });
  assert.deepEqual(r, { healthy: true, state: 'healthy', checks: 5, output: 'pass 5' });
});

test('`successes` consecutive passes are needed; a failure starts the count again', async () => {
  const w = world(['ok', 'fail', 'ok', 'ok']);
  const r = await waitHealthy(spec({ interval: 100 }), w.deps, { ...long, successes: 2 });
  assert.equal(r.healthy, true);
  assert.deepEqual(w.calls, [0, 100, 200, 300]);
});

test('a check is bounded by the timeout, counts as a failure, and is told to stop', async () => {
  const w = world(['hang']);
  const r = await waitHealthy(spec({ timeout: 500, retries: 2 }), w.deps, long);
  assert.deepEqual(r, {
    healthy: false,
    state: 'unhealthy',
    reason: '2 consecutive checks failed',
    output: 'no answer within 500 ms',
    checks: 2,
  });
  assert.deepEqual(w.calls, [0, 1500]);
  assert.equal(w.clock.now(), 2000);
  assert.ok(w.signals.every((s) => s.aborted));
});

test('a check that answers in time leaves no timer behind to move the clock', async () => {
  const w = world([{ after: 100, then: 'ok' }]);
  const r = await waitHealthy(spec({ timeout: 5000 }), w.deps, long);
  assert.equal(r.healthy, true);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(w.clock.now(), 100);
});

test('one deadline bounds the whole wait, start period included', async () => {
  const w = world(['fail']);
  const r = await waitHealthy(spec({ startPeriod: 60_000 }), w.deps, { deadlineMs: 5000 });
  assert.deepEqual(r, {
    healthy: false,
    state: 'unhealthy',
    reason: 'timed out after 5 s',
    output: 'fail 5',
    checks: 5,
  });
  assert.deepEqual(w.calls, [0, 1000, 2000, 3000, 4000]);
  assert.equal(w.clock.now(), 5000);
});

test('the deadline also cuts a check short', async () => {
  const w = world(['hang']);
  const r = await waitHealthy(spec({ timeout: 5000, startPeriod: 60_000 }), w.deps, { deadlineMs: 1500 });
  assert.equal(r.healthy === false && r.reason, 'timed out after 1.5 s');
  assert.equal(w.clock.now(), 1500);
  assert.deepEqual(w.calls, [0]);
});

test('the deadline cuts the last sleep short: the wait ends at the deadline, not the next check', async () => {
  const w = world(['fail']);
  const r = await waitHealthy(spec({ startPeriod: 60_000 }), w.deps, { deadlineMs: 2500 });
  assert.equal(r.healthy === false && r.reason, 'timed out after 2.5 s');
  assert.deepEqual(w.calls, [0, 1000, 2000]);
  assert.equal(w.clock.now(), 2500);
});

test("Docker's `starting` never counts as a failure: only the deadline ends it", async () => {
  const w = world(['starting']);
  const r = await waitHealthy(spec({ retries: 1 }), w.deps, { deadlineMs: 3000 });
  assert.equal(r.healthy === false && r.reason, 'timed out after 3 s');
  assert.equal(r.output, 'starting 3');
  assert.equal(r.checks, 3);
});

test('`starting` then healthy', async () => {
  const w = world(['starting', 'starting', 'ok']);
  const r = await waitHealthy(spec({ retries: 1 }), w.deps, long);
  assert.equal(r.healthy, true);
  assert.equal(r.checks, 3);
});

test('a container that exits fails at once with its exit code', async () => {
  const w = world(['fail'], { exitAt: 1000, exitCode: 3 });
  const r = await waitHealthy(spec({ retries: 5, startPeriod: 60_000 }), w.deps, long);
  assert.deepEqual(r, {
    healthy: false,
    state: 'failed',
    reason: 'container exited with code 3',
    output: 'fail 1',
    checks: 1,
  });
});

test('a container already stopped is never probed', async () => {
  const w = world(['ok'], { exitAt: 0, exitCode: 137 });
  const r = await waitHealthy(spec(), w.deps, long);
  assert.equal(r.healthy === false && r.reason, 'container exited with code 137');
  assert.equal(r.checks, 0);
  assert.deepEqual(w.calls, []);
});

test('when the last allowed failure came from a container that died, the exit code is the reason', async () => {
  const w = world([{ after: 200, then: 'fail' }], { exitAt: 100, exitCode: 2 });
  const r = await waitHealthy(spec({ retries: 1 }), w.deps, long);
  assert.equal(r.healthy === false && r.reason, 'container exited with code 2');
});

test('a final probe result fails at once with its output', async () => {
  const w = world(['final']);
  const r = await waitHealthy(spec({ retries: 5 }), w.deps, long);
  assert.deepEqual(r, {
    healthy: false,
    state: 'failed',
    reason: 'the image has no Docker HEALTHCHECK',
    output: 'the image has no Docker HEALTHCHECK',
    checks: 1,
  });
});

test('a probe that throws is a failed check, not an exception', async () => {
  const w = world(['throw', 'ok']);
  const r = await waitHealthy(spec(), w.deps, long);
  assert.equal(r.healthy, true);
  const w2 = world(['throw']);
  const r2 = await waitHealthy(spec({ retries: 1 }), w2.deps, long);
  assert.equal(r2.output, 'engine down 1');
});

test('a container whose state cannot be read fails, as data', async () => {
  const w = world(['ok'], { runningThrows: true });
  const r = await waitHealthy(spec(), w.deps, long);
  assert.equal(
    r.healthy === false && r.reason,
    "cannot read the container's state: docker: inspect container c1: no such container",
  );
});

test('an abort ends the wait during a sleep', async () => {
  const w = world(['fail']);
  const ac = new AbortController();
  const pending = waitHealthy(spec({ startPeriod: 60_000 }), w.deps, {
    deadlineMs: 60_000,
    signal: ac.signal,
  });
  setImmediate(() => ac.abort());
  const r = await pending;
  assert.equal(r.healthy === false && r.reason, 'aborted');
  assert.ok(w.clock.now() < 60_000);
});

test('suggestedDeadline leaves room for the start period and every retry', () => {
  assert.equal(suggestedDeadline(spec({ startPeriod: 10_000, retries: 3 })), 10_000 + 4 * 1500);
});

test('health states: worst wins, none is healthy', () => {
  assert.equal(worstHealth([]), 'healthy');
  assert.equal(worstHealth(['healthy', 'starting', 'healthy']), 'starting');
  assert.equal(worstHealth(['unhealthy', 'failed', 'starting']), 'failed');
  assert.ok(compareHealth('healthy', 'unhealthy') < 0);
  assert.equal(probeState({ ok: true, output: '' }), 'healthy');
  assert.equal(probeState({ ok: false, starting: true, output: '' }), 'starting');
  assert.equal(probeState({ ok: false, output: '' }), 'unhealthy');
  assert.equal(probeState({ ok: false, final: true, output: '' }), 'failed');
});
