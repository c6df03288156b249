import type { HealthcheckSpec } from '../model/service.js';
import { notRunningText, shortOutput } from './output.js';
import type { Probe, ProbeResult, RunState } from './types.js';
import { sleep } from '../adapters/clock.js';

/** What `waitHealthy` needs from the world; tests give a fake clock. */
export interface WaitDeps {
  probe: Probe;
  containerRunning: () => Promise<RunState>;
  /** Milliseconds on a clock that does not jump (not wall time). */
  now: () => number;
  /** Resolve after `ms`, or early once `signal` aborts. */
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export interface WaitOptions {
  /** One bound on the whole wait, start period included. */
  deadlineMs: number;
  /** Consecutive passes needed (default 1: the first pass is enough). */
  successes?: number;
  /** Stop waiting (berth is shutting down); the result says `aborted`. */
  signal?: AbortSignal;
}

export type WaitResult =
  | { healthy: true; state: 'healthy'; checks: number; output: string }
  | {
      healthy: false;
      /** `failed` when the container exited or cannot pass; `unhealthy` when checks failed. */
      state: 'unhealthy' | 'failed';
      /** Why, in a few words: `timed out after 60 s`, `container exited with code 1`. */
      reason: string;
      /** The last check's output. */
      output: string;
      checks: number;
    };

/** The real clock and timers. */
export const realClock: Pick<WaitDeps, 'now' | 'sleep'> = {
  now: () => performance.now(),
  sleep,
};

/**
 * A deadline that leaves room for every check the spec allows: the start period, then `retries`
 * failures one interval apart, each taking its whole timeout, plus one more of each.
 */
export function suggestedDeadline(check: HealthcheckSpec): number {
  return check.startPeriod + (Math.max(1, check.retries) + 1) * (check.interval + check.timeout);
}

function seconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}

/** Run `probe` once, bounded by `ms` on the injected clock; a throw is a failed check. */
async function bounded(deps: WaitDeps, ms: number, outer?: AbortSignal): Promise<ProbeResult> {
  const local = new AbortController();
  const signal = outer ? AbortSignal.any([local.signal, outer]) : local.signal;
  try {
    const answer = deps.probe(signal).catch((e: unknown): ProbeResult => ({
      ok: false,
      output: shortOutput(e instanceof Error ? e.message : String(e)),
    }));
    const late = deps
      .sleep(ms, signal)
      .then((): ProbeResult => ({ ok: false, output: `no answer within ${ms} ms` }));
    return await Promise.race([answer, late]);
  } finally {
    // Ends whichever lost: the timer, or a probe still waiting on a socket.
    local.abort();
  }
}

/**
 * Check until healthy, with Docker's and Kubernetes' rules:
 * - the first check runs at once, then one every `interval` (from the end of the previous one);
 * - each check is bounded by `timeout` (and by what is left of the deadline);
 * - a failure of a check that began within `startPeriod` does not count;
 * - after it, `retries` consecutive failures make the container unhealthy;
 * - `successes` consecutive passes (default 1) make it healthy;
 * - a container that stops running fails at once, with its exit code;
 * - the whole wait is bounded by `deadlineMs`.
 * Failure is returned as data, never thrown.
 */
export async function waitHealthy(
  check: HealthcheckSpec,
  deps: WaitDeps,
  opts: WaitOptions,
): Promise<WaitResult> {
  const started = deps.now();
  const deadline = started + opts.deadlineMs;
  const graceEnd = started + check.startPeriod;
  const retries = Math.max(1, check.retries);
  const successes = Math.max(1, opts.successes ?? 1);
  let checks = 0;
  let output = '';
  let failures = 0;
  let passes = 0;

  const fail = (state: 'unhealthy' | 'failed', reason: string): WaitResult => ({
    healthy: false,
    state,
    reason,
    output,
    checks,
  });
  /** Undefined while the container runs; else the result that says why it stopped. */
  const stopped = async (): Promise<WaitResult | undefined> => {
    let run: RunState;
    try {
      run = await deps.containerRunning();
    } catch (e) {
      return fail(
        'failed',
        `cannot read the container's state: ${shortOutput(e instanceof Error ? e.message : String(e))}`,
      );
    }
    return run.running ? undefined : fail('failed', notRunningText(run));
  };

  for (;;) {
    if (opts.signal?.aborted) return fail('unhealthy', 'aborted');
    const exited = await stopped();
    if (exited) return exited;
    const left = deadline - deps.now();
    if (left <= 0) return fail('unhealthy', `timed out after ${seconds(opts.deadlineMs)}`);

    const began = deps.now();
    const r = await bounded(deps, Math.min(check.timeout, left), opts.signal);
    checks++;
    output = r.output;
    if (opts.signal?.aborted) return fail('unhealthy', 'aborted');

    if (r.ok) {
      passes++;
      failures = 0;
      if (passes >= successes) return { healthy: true, state: 'healthy', checks, output };
    } else {
      passes = 0;
      if (r.final) return (await stopped()) ?? fail('failed', output);
      if (!r.starting && began >= graceEnd) failures++;
      if (failures >= retries) {
        // A check that failed because the container died says less than its exit code.
        return (await stopped()) ?? fail('unhealthy', `${failures} consecutive checks failed`);
      }
    }

    const wait = Math.min(check.interval, deadline - deps.now());
    if (wait > 0) await deps.sleep(wait, opts.signal);
  }
}
