/**
 * HAProxy through its runtime API (the admin socket): one command per connection, as HAProxy's
 * non-interactive mode expects, each bounded in time.
 */
import net from 'node:net';
import { ExternalError } from '../../model/errors.js';
import { assertValid, durationIssue, hasTemplate, sleep, unknownKeys } from './settings.js';
import type {
  DrainOptions,
  DrainProvider,
  DrainProviderPlugin,
  DrainTarget,
  LbState,
  SettingIssue,
} from './types.js';

export const HAPROXY_SETTINGS = ['socket', 'backend', 'server', 'drain_timeout'] as const;

/**
 * Names HAProxy accepts for proxies and servers. Anything else is refused before it reaches the
 * socket: the runtime API runs `a; b` as two commands, so a `;` or newline in a rendered name
 * would be a command injection.
 */
const NAME = /^[A-Za-z0-9_.:-]+$/;

/** srv_admin_state bits (HAProxy's include/haproxy/server-t.h). */
const ADMF = {
  FMAINT: 0x01, // forced maintenance (`state maint`)
  IMAINT: 0x02, // inherited from a tracked server
  CMAINT: 0x04, // `disabled` in the configuration
  FDRAIN: 0x08, // forced drain (`state drain`)
  IDRAIN: 0x10, // inherited drain
  RMAINT: 0x20, // its DNS name does not resolve
  HMAINT: 0x40, // maintenance while its FQDN changes
} as const;
const MAINT_BITS = ADMF.FMAINT | ADMF.IMAINT | ADMF.CMAINT | ADMF.RMAINT | ADMF.HMAINT;
const DRAIN_BITS = ADMF.FDRAIN | ADMF.IDRAIN;

/** An admin-state number to our states; maintenance wins over drain, as it does in HAProxy. */
export function lbStateOf(adminState: number): LbState {
  if (!Number.isInteger(adminState) || adminState < 0) return 'unknown';
  if (adminState & MAINT_BITS) return 'maint';
  if (adminState & DRAIN_BITS) return 'drain';
  return 'ready';
}

export type SocketAddress = { path: string } | { host: string; port: number };

/** `/run/haproxy/admin.sock`, `unix:///path`, `tcp://127.0.0.1:9999`, `127.0.0.1:9999`, `[::1]:9999`. */
export function parseSocket(socket: string): SocketAddress | { error: string } {
  if (socket.startsWith('/')) return { path: socket };
  if (socket.startsWith('unix://')) {
    const path = socket.slice('unix://'.length);
    return path.startsWith('/') ? { path } : { error: `unix socket path must be absolute: ${socket}` };
  }
  const hostPort = socket.startsWith('tcp://') ? socket.slice('tcp://'.length) : socket;
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(hostPort);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) {
    return { error: `expected a unix socket path or host:port (tcp://host:port), got "${socket}"` };
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

export function validateHaproxySettings(
  s: Record<string, unknown>,
  { base, rendered }: { base: string; rendered: boolean },
): SettingIssue[] {
  const issues = unknownKeys(s, HAPROXY_SETTINGS, base);
  const str = (key: string, required: boolean, check: (v: string) => string | undefined) => {
    const v = s[key];
    const path = `${base}.${key}`;
    if (v === undefined) {
      if (required) issues.push({ path, message: 'required by the haproxy provider' });
      return;
    }
    if (typeof v !== 'string' || v === '') {
      issues.push({ path, message: 'expected a non-empty string' });
      return;
    }
    if (!rendered && hasTemplate(v)) return;
    const problem = check(v);
    if (problem) issues.push({ path, message: problem });
  };
  str('socket', true, (v) => {
    const a = parseSocket(v);
    return 'error' in a ? a.error : undefined;
  });
  const nameCheck = (v: string) =>
    NAME.test(v) ? undefined : `"${v}" is not an HAProxy name (letters, digits, - _ . : only)`;
  str('backend', true, nameCheck);
  str('server', false, nameCheck);
  issues.push(...durationIssue(s.drain_timeout, `${base}.drain_timeout`, rendered));
  return issues;
}

interface Resolved {
  socket: string;
  address: SocketAddress;
  backend: string;
  server: string;
  /** `backend/server via socket`, for messages. */
  where: string;
}

function resolve(t: DrainTarget): Resolved {
  const s = t.settings;
  const server = s.server === undefined ? t.host : s.server;
  assertValid(t, validateHaproxySettings({ ...s, server }, { base: 'load_balancer', rendered: true }));
  const socket = s.socket as string;
  const backend = s.backend as string;
  const address = parseSocket(socket) as SocketAddress;
  return { socket, address, backend, server: server as string, where: `${backend}/${server} via ${socket}` };
}

/**
 * Send one command and return HAProxy's whole answer (it closes the connection after it).
 * Bounded by `timeoutMs` from connect to the last byte.
 */
export function runtimeCommand(address: SocketAddress, command: string, timeoutMs: number): Promise<string> {
  const socketName = 'path' in address ? address.path : `${address.host}:${address.port}`;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let done = false;
    const conn = net.connect(address);
    const finish = (err: Error | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      conn.destroy();
      if (err) reject(err);
      else resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const timer = setTimeout(
      () => finish(new Error(`no answer from ${socketName} within ${timeoutMs} ms to "${command}"`)),
      timeoutMs,
    );
    conn.on('connect', () => conn.end(`${command}\n`));
    conn.on('data', (d: Buffer) => chunks.push(d));
    conn.on('end', () => finish(undefined));
    conn.on('close', () => finish(undefined));
    conn.on('error', (e: NodeJS.ErrnoException) =>
      finish(
        new Error(`cannot reach the runtime API at ${socketName}: ${e.code ?? e.message}`, { cause: e }),
      ),
    );
  });
}

/** The admin state of `server` from `show servers state BACKEND`, or undefined when it is not listed. */
export function parseServersState(text: string, server: string): number | undefined {
  const lines = text.split('\n');
  const header = lines.find((l) => l.startsWith('# '));
  if (!header) return undefined;
  const cols = header.slice(2).trim().split(/\s+/);
  const nameAt = cols.indexOf('srv_name');
  const adminAt = cols.indexOf('srv_admin_state');
  if (nameAt < 0 || adminAt < 0) return undefined;
  for (const line of lines) {
    if (line.startsWith('#') || !line.trim()) continue;
    const f = line.trim().split(/\s+/);
    if (f[nameAt] === server) return Number(f[adminAt]);
  }
  return undefined;
}

/** Current sessions (`scur`) of `backend/server` from `show stat` CSV, or undefined when absent. */
export function parseScur(csv: string, backend: string, server: string): number | undefined {
  const lines = csv.split('\n');
  const header = lines.find((l) => l.startsWith('# '));
  if (!header) return undefined;
  const cols = header.slice(2).split(',');
  const px = cols.indexOf('pxname');
  const sv = cols.indexOf('svname');
  const scur = cols.indexOf('scur');
  if (px < 0 || sv < 0 || scur < 0) return undefined;
  for (const line of lines) {
    if (line.startsWith('#') || !line) continue;
    // Names cannot hold commas (NAME), so a plain split is exact for the columns we read.
    const f = line.split(',');
    if (f[px] === backend && f[sv] === server) {
      const n = Number(f[scur]);
      return Number.isFinite(n) ? n : undefined;
    }
  }
  return undefined;
}

export interface HaproxyOptions {
  /** Bound on each runtime API command. */
  commandTimeoutMs?: number;
  /** Time between two looks at the server's sessions while draining. */
  pollIntervalMs?: number;
}

export class HaproxyProvider implements DrainProvider {
  readonly name = 'haproxy';
  private readonly commandTimeoutMs: number;
  private readonly pollIntervalMs: number;

  constructor(opts: HaproxyOptions = {}) {
    this.commandTimeoutMs = opts.commandTimeoutMs ?? 5_000;
    this.pollIntervalMs = opts.pollIntervalMs ?? 250;
  }

  private async send(r: Resolved, command: string): Promise<string> {
    try {
      return await runtimeCommand(r.address, command, this.commandTimeoutMs);
    } catch (e) {
      throw new ExternalError(
        'haproxy',
        `${(e as Error).message} (backend ${r.backend}, server ${r.server})`,
        {
          cause: e,
        },
      );
    }
  }

  /** `set server` answers nothing on success and one line of complaint otherwise. */
  private async setState(r: Resolved, state: 'ready' | 'drain' | 'maint'): Promise<void> {
    const answer = (await this.send(r, `set server ${r.backend}/${r.server} state ${state}`)).trim();
    if (answer) throw new ExternalError('haproxy', `set ${r.where} to ${state}: ${answer}`);
  }

  private async read(r: Resolved): Promise<LbState> {
    const answer = await this.send(r, `show servers state ${r.backend}`);
    if (!answer.includes('# be_id')) {
      throw new ExternalError(
        'haproxy',
        `show servers state for ${r.where}: ${answer.trim() || 'empty answer'}`,
      );
    }
    const admin = parseServersState(answer, r.server);
    if (admin === undefined) {
      throw new ExternalError('haproxy', `${r.where}: No such server ${r.server} in backend ${r.backend}.`);
    }
    return lbStateOf(admin);
  }

  private async sessions(r: Resolved): Promise<number> {
    const answer = await this.send(r, `show stat ${r.backend} 4 -1`);
    const n = parseScur(answer, r.backend, r.server);
    if (n === undefined) {
      throw new ExternalError(
        'haproxy',
        `show stat for ${r.where}: ${answer.startsWith('#') ? 'server not listed' : answer.trim() || 'empty answer'}`,
      );
    }
    return n;
  }

  status(t: DrainTarget): Promise<LbState> {
    return this.read(resolve(t));
  }

  async drain(t: DrainTarget, opts: DrainOptions): Promise<void> {
    const r = resolve(t);
    const { signal, onProgress } = opts;
    if (signal?.aborted) throw signal.reason ?? new Error('aborted');
    // Already out (a drain that completed earlier, or a crashed apply's): nothing to wait for.
    if ((await this.read(r)) === 'maint') {
      onProgress?.(`${r.where}: already out of rotation`);
      return;
    }
    await this.setState(r, 'drain');
    const timeoutMs = Math.max(0, opts.timeoutMs);
    const deadline = Date.now() + timeoutMs;
    // Bounded in tries too, so a clock jump cannot make this loop endless.
    const maxTries = Math.ceil(timeoutMs / this.pollIntervalMs) + 2;
    for (let i = 0; i < maxTries; i++) {
      const left = await this.sessions(r);
      if (left === 0) break;
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        onProgress?.(`${r.where}: drain timeout after ${timeoutMs} ms with ${left} session(s) open`);
        break;
      }
      onProgress?.(`${r.where}: ${left} session(s) left`);
      await sleep(Math.min(this.pollIntervalMs, remaining), signal);
    }
    if (signal?.aborted) throw signal.reason ?? new Error('aborted');
    await this.setState(r, 'maint');
  }

  async undrain(t: DrainTarget): Promise<void> {
    await this.setState(resolve(t), 'ready');
  }

  async restore(t: DrainTarget, state: LbState): Promise<void> {
    const r = resolve(t);
    if (state === 'unknown') return;
    await this.setState(r, state);
  }
}

export const haproxyPlugin: DrainProviderPlugin = {
  name: 'haproxy',
  create: () => new HaproxyProvider(),
  validate: validateHaproxySettings,
};
