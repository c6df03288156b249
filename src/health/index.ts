import type { Engine } from '../adapters/engine.js';
import type { HealthcheckSpec, ServiceSpec } from '../model/service.js';
import { dockerProbe, httpProbe, tcpProbe } from './probes.js';
import type { Probe, RunState } from './types.js';
import { realClock, waitHealthy, type WaitResult } from './wait.js';

export * from './types.js';
export { dockerProbe, httpProbe, parseHostPort, tcpProbe } from './probes.js';
export { shortOutput } from './output.js';
export { realClock, suggestedDeadline, waitHealthy } from './wait.js';
export type { WaitDeps, WaitOptions, WaitResult } from './wait.js';

/**
 * A service without a healthcheck only has to stay up: running at two checks 50 ms apart.
 * That catches an image that exits at once (a bad command, a missing env var) without
 * slowing down every apply; anything subtler needs a healthcheck in the service file.
 */
export const SETTLE_CHECK: HealthcheckSpec = { interval: 50, timeout: 2000, retries: 1, startPeriod: 0 };
export const SETTLE_SUCCESSES = 2;

/** How to tell whether one container of a service is healthy. */
export interface ServiceHealth {
  /** What the record says was checked: `http http://…`, `tcp host:port`, `docker HEALTHCHECK`, `running`. */
  kind: string;
  check: HealthcheckSpec;
  /** Consecutive passes needed. */
  successes: number;
  probe: Probe;
  containerRunning: () => Promise<RunState>;
}

/** The probe for `spec`'s healthcheck against container `containerId`, or the settle check. */
export function healthFor(spec: ServiceSpec, engine: Engine, containerId: string): ServiceHealth {
  const containerRunning = async (): Promise<RunState> => {
    const s = await engine.inspect(containerId);
    // A restarting container is one that exited: Docker reports it as Running meanwhile.
    return { running: s.running && s.status === 'running', exitCode: s.exitCode, status: s.status };
  };
  const hc = spec.healthcheck;
  if (hc?.http !== undefined) {
    const url = hc.http;
    return {
      kind: `http ${url}`,
      check: hc,
      successes: 1,
      containerRunning,
      probe: (signal) => httpProbe(url, hc.timeout, signal, engine.network),
    };
  }
  if (hc?.tcp !== undefined) {
    const target = hc.tcp;
    return {
      kind: `tcp ${target}`,
      check: hc,
      successes: 1,
      containerRunning,
      probe: (signal) => tcpProbe(target, hc.timeout, signal, engine.network),
    };
  }
  if (hc?.docker) {
    return {
      kind: 'docker HEALTHCHECK',
      check: hc,
      successes: 1,
      containerRunning,
      probe: () => dockerProbe(engine, containerId),
    };
  }
  return {
    kind: 'running',
    check: SETTLE_CHECK,
    successes: SETTLE_SUCCESSES,
    containerRunning,
    probe: async () => {
      const s = await containerRunning();
      return s.running ? { ok: true, output: 'running' } : { ok: false, final: true, output: `not running` };
    },
  };
}

/** Wait, on the real clock, until container `containerId` of `spec` is healthy or cannot be. */
export function waitServiceHealthy(
  spec: ServiceSpec,
  engine: Engine,
  containerId: string,
  opts: { deadlineMs: number; signal?: AbortSignal; minSuccesses?: number },
): Promise<WaitResult> {
  const h = healthFor(spec, engine, containerId);
  const { minSuccesses, ...rest } = opts;
  return waitHealthy(
    h.check,
    { probe: h.probe, containerRunning: h.containerRunning, ...realClock },
    { ...rest, successes: Math.max(h.successes, minSuccesses ?? 1) },
  );
}
