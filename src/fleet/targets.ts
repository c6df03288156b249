/**
 * Which hosts a fleet command acts on, and how each is reached: pure, from the inventory.
 *
 * SSH settings are inventory.yaml's `ssh:`, then an `ssh` map in the vars of each of the host's
 * groups (in the order the host lists them), then in the host's own vars, key by key; the
 * engine's socket is the `docker_socket` var (default /var/run/docker.sock). Whatever none of
 * them sets comes from the user's ssh config, as with `ssh` itself.
 */
import type { SshSettings } from '../adapters/ssh.js';
import { sshSchema } from '../config/schema.js';
import { ConfigError, UsageError, type ConfigIssue } from '../model/errors.js';
import type { Inventory, InventoryHost } from '../model/service.js';
import { DEFAULT_DOCKER_SOCKET, type SshHostTarget } from '../host/target.js';

/** A host of the fleet: its inventory entry and how to reach it. */
export interface FleetHost extends SshHostTarget {
  groups: string[];
}

const isMap = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** One layer of ssh settings, checked where it was written; its issues carry that path. */
function checkLayer(raw: Record<string, unknown>, where: string, issues: ConfigIssue[]): boolean {
  const r = sshSchema.safeParse(raw);
  if (r.success) return true;
  for (const i of r.error.issues) {
    const key = [...i.path, ...((i as { keys?: string[] }).keys ?? [])].join('.');
    issues.push({
      file: 'inventory.yaml',
      path: key ? `${where}.${key}` : where,
      message: i.message,
      severity: 'error',
    });
  }
  return false;
}

/** The merged settings as the SSH adapter takes them. */
function toSettings(raw: Record<string, unknown>): SshSettings {
  const r = sshSchema.safeParse(raw);
  if (!r.success) return {};
  const v = r.data;
  const s: SshSettings = {};
  if (v.user !== undefined) s.user = v.user;
  if (v.port !== undefined) s.port = v.port;
  if (v.identity_file !== undefined) s.identityFile = v.identity_file;
  if (v.known_hosts !== undefined) s.knownHosts = v.known_hosts;
  if (v.bastion !== undefined) s.bastion = v.bastion;
  if (v.host_key_checking !== undefined) s.hostKeyChecking = v.host_key_checking;
  if (v.config_file !== undefined) s.configFile = v.config_file;
  if (v.connect_timeout !== undefined) s.connectTimeoutMs = v.connect_timeout;
  return s;
}

/** The ssh map of a host: inventory-wide, then its groups', then its own, key by key. */
function sshFor(h: InventoryHost, inv: Inventory, issues: ConfigIssue[]): SshSettings {
  const merged: Record<string, unknown> = { ...inv.ssh };
  let ok = true;
  const layer = (v: unknown, where: string) => {
    if (v === undefined) return;
    if (!isMap(v)) {
      issues.push({
        file: 'inventory.yaml',
        path: where,
        message: 'expected a map of ssh settings (user, port, identity_file, ...)',
        severity: 'error',
      });
      ok = false;
      return;
    }
    if (checkLayer(v, where, issues)) Object.assign(merged, v);
    else ok = false;
  };
  for (const g of h.groups) layer(inv.groups[g]?.vars.ssh, `groups.${g}.vars.ssh`);
  layer(h.vars.ssh, `hosts.${h.name}.vars.ssh`);
  return ok ? toSettings(merged) : {};
}

function dockerSocketFor(h: InventoryHost, inv: Inventory, issues: ConfigIssue[]): string {
  let socket: unknown = DEFAULT_DOCKER_SOCKET;
  let where = '';
  for (const g of h.groups) {
    const v = inv.groups[g]?.vars.docker_socket;
    if (v !== undefined) [socket, where] = [v, `groups.${g}.vars.docker_socket`];
  }
  if (h.vars.docker_socket !== undefined)
    [socket, where] = [h.vars.docker_socket, `hosts.${h.name}.vars.docker_socket`];
  if (typeof socket !== 'string' || !socket.startsWith('/') || /[\n\0]/.test(socket)) {
    issues.push({
      file: 'inventory.yaml',
      path: where,
      message: 'docker_socket must be the absolute path of the engine socket on the host',
      severity: 'error',
    });
    return DEFAULT_DOCKER_SOCKET;
  }
  return socket;
}

/**
 * The hosts `limit` names (host or group names; all hosts without one), in inventory order,
 * each with how to reach it.
 * @throws UsageError for a limit that names nothing; ConfigError for bad ssh settings.
 */
export function fleetHosts(inv: Inventory, limit?: string[]): FleetHost[] {
  let chosen = inv.hosts;
  if (limit?.length) {
    const known = new Set([...inv.hosts.map((h) => h.name), ...Object.keys(inv.groups)]);
    const unknown = limit.filter((l) => !known.has(l));
    if (unknown.length) {
      throw new UsageError(
        `--limit: ${unknown.map((u) => JSON.stringify(u)).join(', ')} is neither a host nor a group of the inventory ` +
          `(hosts: ${inv.hosts.map((h) => h.name).join(', ') || 'none'}; groups: ${Object.keys(inv.groups).sort().join(', ') || 'none'})`,
      );
    }
    const want = new Set(limit);
    chosen = inv.hosts.filter((h) => want.has(h.name) || h.groups.some((g) => want.has(g)));
  }
  const issues: ConfigIssue[] = [];
  const hosts = chosen.map((h): FleetHost => {
    const ssh = sshFor(h, inv, issues);
    return {
      name: h.name,
      address: h.address,
      groups: [...h.groups],
      ssh,
      dockerSocket: dockerSocketFor(h, inv, issues),
    };
  });
  if (issues.length) throw new ConfigError(dedupe(issues));
  return hosts;
}

function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = `${i.path} ${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
