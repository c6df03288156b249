import type { SshPool } from '../adapters/ssh.js';
import { openSshHost, type Host } from '../host/target.js';
import type { FleetHost } from './targets.js';

/** How a fleet command opens one of its hosts (SSH in berth; anything in tests). */
export type HostOpener = (h: FleetHost) => Promise<Host>;

/**
 * Hosts over SSH, one connection each from `pool`, opened once and kept for the whole run (a
 * `wait` that looks every few seconds reuses them); a host whose connection died is opened anew.
 */
export function sshOpener(pool: SshPool, opts: { engineTimeoutMs?: number } = {}): HostOpener {
  const open = new Map<string, { host: Promise<Host>; alive: () => boolean }>();
  return (h) => {
    const known = open.get(h.name);
    if (known?.alive()) return known.host;
    let alive = () => true;
    const host = pool.connect({ name: h.name, address: h.address, settings: h.ssh }).then((conn) => {
      alive = () => conn.alive();
      return openSshHost(h, conn, opts);
    });
    const entry = { host, alive: () => alive() };
    open.set(h.name, entry);
    host.catch(() => {
      if (open.get(h.name) === entry) open.delete(h.name);
    });
    return host;
  };
}
