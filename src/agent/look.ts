import { healthFor, probeState, type HealthState } from '../health/index.js';
import type { LoadedRepo } from '../host/desired.js';
import { planFor, wantedFor, type HostRequest } from '../host/pipeline.js';
import type { Host } from '../host/target.js';
import { LABEL } from '../model/labels.js';
import type { ObservedHost } from '../model/observed.js';
import type { ServiceSpec } from '../model/service.js';
import { openStore } from '../store/registry.js';
import type { HistoryRow } from '../store/types.js';
import type { Look } from './agent.js';
import { serviceRows } from './status.js';

/** How many health checks run at once during a look. */
const PROBE_CONCURRENCY = 8;
/** Rows of the record a look reads to find each service's newest action. */
const HISTORY_ROWS = 500;

/**
 * Look at the host against a commit already read: render it again (so a secret that changed
 * on the host counts), observe and plan without the lock (reads only), check each running
 * service's health once, and read each service's newest recorded action.
 */
export async function lookAt(
  host: Host,
  request: HostRequest,
  loaded: LoadedRepo,
  store: string,
  signal: AbortSignal,
): Promise<Look> {
  const req = { ...request, loaded };
  const wanted = await wantedFor(host, req, signal);
  const prepared = await planFor(host, wanted, req);
  const [health, history] = await Promise.all([
    probeAll(host, prepared.desired.services, prepared.observed, signal),
    recentHistory(store, prepared.desired.host),
  ]);
  return { prepared, services: serviceRows(prepared.desired, prepared.observed, health, history) };
}

/** One check per running service, by its own health check (or "is it running" without one). */
async function probeAll(
  host: Host,
  services: ServiceSpec[],
  observed: ObservedHost,
  signal: AbortSignal,
): Promise<Map<string, HealthState>> {
  const out = new Map<string, HealthState>();
  const byName = new Map(
    observed.containers.filter((c) => c.labels[LABEL.service] === c.name).map((c) => [c.name, c]),
  );
  const queue = services.filter((s) => byName.has(s.name));
  for (const s of services) if (!byName.has(s.name)) out.set(s.name, 'failed');
  const worker = async () => {
    for (let s = queue.shift(); s; s = queue.shift()) {
      const c = byName.get(s.name)!;
      if (c.state !== 'running') {
        out.set(s.name, 'failed');
        continue;
      }
      const h = healthFor(s, host.engine, c.id);
      const timeout = AbortSignal.any([signal, AbortSignal.timeout(h.check.timeout)]);
      try {
        out.set(s.name, probeState(await h.probe(timeout)));
      } catch {
        out.set(s.name, 'unhealthy');
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PROBE_CONCURRENCY, queue.length) }, worker));
  return out;
}

/** The newest actions of this host in the record; none when the record cannot be read. */
export async function recentHistory(location: string, host?: string, service?: string, limit = HISTORY_ROWS) {
  let rows: HistoryRow[] = [];
  try {
    const store = await openStore(location);
    try {
      rows = await store.history({
        limit,
        ...(host !== undefined ? { host } : {}),
        ...(service !== undefined ? { service } : {}),
      });
    } finally {
      await store.close();
    }
  } catch {
    // A record that cannot be read costs the status its "last result", nothing more.
  }
  return rows;
}
