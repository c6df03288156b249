import { UsageError } from '../model/errors.js';
import type { DesiredState, StateRepo } from '../model/service.js';

/**
 * What one host should run. Without an inventory every service runs everywhere. With one,
 * `host` must be an inventory host, and a service runs there when its `hosts:` is absent or
 * names the host or one of its groups.
 * @throws UsageError when the repo has an inventory and `host` is missing or not in it.
 */
export function desiredForHost(repo: StateRepo, host?: string): DesiredState {
  const base: DesiredState = { ref: repo.ref, envDir: repo.envDir, services: repo.services };
  if (repo.commit !== undefined) base.commit = repo.commit;
  if (host !== undefined) base.host = host;
  const inv = repo.inventory;
  if (!inv) return base;

  const known = inv.hosts.map((h) => h.name).sort();
  const list = known.length ? known.join(', ') : 'none: inventory.yaml lists no hosts';
  if (host === undefined)
    throw new UsageError(`this repo has an inventory; pass --host NAME (one of: ${list})`);
  const h = inv.hosts.find((x) => x.name === host);
  if (!h) throw new UsageError(`host ${JSON.stringify(host)} is not in the inventory (known hosts: ${list})`);

  const mine = new Set([h.name, ...h.groups]);
  return {
    ...base,
    services: repo.services.filter((s) => s.hosts === undefined || s.hosts.some((t) => mine.has(t))),
  };
}
