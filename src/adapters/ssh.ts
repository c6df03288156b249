/**
 * Reaching a host over SSH with the system's OpenSSH client, so the user's ~/.ssh/config,
 * keys, ssh-agent and known_hosts are honoured exactly as `ssh` (and Ansible) would honour them.
 *
 * One connection per host for the whole run: a ControlMaster process (`ssh -M -N`) that
 * everything else goes through: forwarded unix sockets (the Docker engine's socket, tunnels for
 * health checks) and one long-lived `sh` on the host for file work (ssh-shell.ts). Every process
 * started here is tracked by PID and stopped when the connection is closed, and SIGKILLed
 * if berth exits without closing it (an error, a second Ctrl-C). The master runs in a process
 * group of its own, so a Ctrl-C at the terminal reaches berth alone, which then stops at a safe
 * point with the connection still up, and closes it afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sleep } from './clock.js';
import { ExternalError } from '../model/errors.js';

/** How to reach hosts: inventory.yaml's `ssh:` (and `vars.ssh` of groups and hosts), resolved. */
export interface SshSettings {
  user?: string;
  port?: number;
  /** A private key file; only this key (and the agent's copy of it) is offered. */
  identityFile?: string;
  /** The known_hosts file to check host keys against (default: the user's own). */
  knownHosts?: string;
  /** A jump host, `[user@]host[:port]`, reached with the same key and known_hosts. */
  bastion?: string;
  /** `strict` (default): a host whose key is not in known_hosts is refused. `accept-new`: a new host's key is recorded; a changed key is still refused. */
  hostKeyChecking?: 'strict' | 'accept-new';
  /** An ssh_config file to read instead of ~/.ssh/config (and /etc/ssh/ssh_config). */
  configFile?: string;
  /** Bound on establishing the TCP connection and the SSH handshake, per hop. */
  connectTimeoutMs?: number;
}

/** One host as SSH reaches it. */
export interface SshEndpoint {
  /** The inventory name, for messages. */
  name: string;
  /** Where to connect: an address or a name ssh resolves (the user's config may map it). */
  address: string;
  settings: SshSettings;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** `[user@]host[:port]` as inventory.yaml writes a bastion. */
export function parseBastion(spec: string): { user?: string; host: string; port?: number } | undefined {
  const m = /^(?:([^@\s]+)@)?([^@:\s]+)(?::(\d{1,5}))?$/.exec(spec);
  if (!m) return undefined;
  const out: { user?: string; host: string; port?: number } = { host: m[2]! };
  if (m[1] !== undefined) out.user = m[1];
  if (m[3] !== undefined) {
    const port = Number(m[3]);
    if (port < 1 || port > 65535) return undefined;
    out.port = port;
  }
  return out;
}

/**
 * The options every ssh process of a connection shares: no prompts (a deploy must never wait
 * for a password nobody types), host keys checked, a bounded connect, a dead peer noticed.
 */
function commonOptions(s: SshSettings): string[] {
  const o = (k: string, v: string) => ['-o', `${k}=${v}`];
  const secs = Math.max(1, Math.ceil((s.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS) / 1000));
  const args = [
    ...(s.configFile ? ['-F', s.configFile] : []),
    ...o('BatchMode', 'yes'),
    ...o('StrictHostKeyChecking', s.hostKeyChecking === 'accept-new' ? 'accept-new' : 'yes'),
    ...o('ConnectTimeout', String(secs)),
    ...o('ServerAliveInterval', '10'),
    ...o('ServerAliveCountMax', '3'),
  ];
  if (s.knownHosts) args.push(...o('UserKnownHostsFile', s.knownHosts));
  if (s.identityFile) args.push('-i', s.identityFile, ...o('IdentitiesOnly', 'yes'));
  return args;
}

/** `%` is special in ssh_config values (%h, %p); a literal one is written `%%`. */
const escapePercent = (s: string) => s.replace(/%/g, '%%');

/** One word for a POSIX shell: as is when it is plain, else in single quotes. */
const shellWord = (s: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/**
 * The ssh command line for `endpoint` with `extra` options before the destination (pure, so the
 * tests compare exact argv). A bastion becomes a ProxyCommand running the same ssh with the same
 * key, known_hosts and checks (ProxyJump would not pass `-o` options on to the jump host).
 */
export function sshArgv(endpoint: SshEndpoint, extra: string[] = []): string[] {
  const s = endpoint.settings;
  const args = [...commonOptions(s)];
  if (s.bastion) {
    const b = parseBastion(s.bastion);
    if (!b) throw new ExternalError('ssh', `bastion ${JSON.stringify(s.bastion)} is not [user@]host[:port]`);
    const jump = [
      'ssh',
      ...commonOptions(s),
      ...(b.port ? ['-p', String(b.port)] : []),
      ...(b.user ? ['-l', b.user] : []),
      '-W',
      '[%h]:%p',
      b.host,
    ];
    // Run by the user's shell after ssh expands %h and %p: quote for the one, escape for the other.
    const command = jump.map((a) => (a === '[%h]:%p' ? shellWord(a) : escapePercent(shellWord(a)))).join(' ');
    args.push('-o', `ProxyCommand=${command}`);
  }
  if (s.port) args.push('-p', String(s.port));
  if (s.user) args.push('-l', s.user);
  args.push(...extra, endpoint.address);
  return args;
}

/** How the connection is described in messages: `app-1 (admin@10.0.1.11:22 via bastion.example.com)`. */
export function describeEndpoint(e: SshEndpoint): string {
  const s = e.settings;
  const where = `${s.user ? `${s.user}@` : ''}${e.address}${s.port ? `:${s.port}` : ''}`;
  return `${e.name} (${where}${s.bastion ? ` via ${s.bastion}` : ''})`;
}

/**
 * What went wrong, from ssh's own words on stderr: the last lines that say something, without
 * the big "REMOTE HOST IDENTIFICATION HAS CHANGED" banner (replaced by one sentence).
 */
export function sshFailure(stderr: string, e: SshEndpoint): string {
  const lines = stderr
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  const text = lines.join('\n');
  const knownHosts = e.settings.knownHosts ?? '~/.ssh/known_hosts';
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED/.test(text)) {
    return (
      `the host key has CHANGED since it was recorded in ${knownHosts}: refused (the host may ` +
      `have been rebuilt, or someone may be intercepting the connection; check, then update known_hosts)`
    );
  }
  if (/Host key verification failed/.test(text)) {
    const unknown = /No \S+ host key is known for (\S+)/.exec(text);
    return unknown
      ? `no host key for ${unknown[1]} in ${knownHosts}, and strict checking is on: refused ` +
          `(add it with ssh-keyscan after checking its fingerprint, or set ssh.host_key_checking: accept-new)`
      : `host key verification failed against ${knownHosts}: refused`;
  }
  const said = lines.filter(
    (l) =>
      !/^(Warning: Permanently added|@@@|WARNING|IT IS POSSIBLE|Someone could|It is also|The fingerprint|Please contact|Add correct|Offending|Host key for .* has changed|debug)/.test(
        l,
      ),
  );
  return said.slice(-3).join('; ') || 'ssh exited without saying why';
}

/** One ssh process berth started and must stop. */
interface Tracked {
  child: ChildProcess;
  /** Whether it runs in a process group of its own (kill the group, helpers included). */
  group: boolean;
}

const running = new Set<Tracked>();
/** Private folders of open connections (sockets), removed on exit if not before. */
const folders = new Set<string>();
let exitHook = false;

/** Kill by PID (its group when it leads one); quiet when it is gone already. */
function kill(t: Tracked, signal: NodeJS.Signals): void {
  const pid = t.child.pid;
  if (pid === undefined || t.child.exitCode !== null || t.child.signalCode !== null) return;
  try {
    process.kill(t.group ? -pid : pid, signal);
  } catch {
    // Already gone.
  }
}

/** Track a process; if berth exits without stopping it, the exit hook SIGKILLs it. */
function track(child: ChildProcess, group: boolean): Tracked {
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const t of running) kill(t, 'SIGKILL');
      for (const d of folders) rmSync(d, { recursive: true, force: true });
    });
  }
  const t = { child, group };
  running.add(t);
  child.once('exit', () => running.delete(t));
  return t;
}

/** Stop a tracked process: SIGTERM, a bounded wait, then SIGKILL. */
async function stop(t: Tracked, graceMs = 3_000): Promise<void> {
  if (t.child.exitCode !== null || t.child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => t.child.once('exit', () => resolve()));
  kill(t, 'SIGTERM');
  const timer = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), graceMs).unref());
  if ((await Promise.race([exited, timer])) === 'late') {
    kill(t, 'SIGKILL');
    await Promise.race([exited, sleep(2_000)]);
  }
  running.delete(t);
}

/** How many ssh processes berth has running now (for tests: none is left behind). */
export function runningSshProcesses(): number[] {
  return [...running].map((t) => t.child.pid!).filter((p) => p !== undefined);
}

/** Run a short-lived ssh client through the master; its output, bounded in time. */
function runClient(
  argv: string[],
  opts: { timeoutMs: number; what: string; endpoint: SshEndpoint },
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', argv, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const t = track(child, true);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-8_192)));
    const timer = setTimeout(() => {
      void stop(t, 500);
      reject(
        new ExternalError(
          'ssh',
          `${describeEndpoint(opts.endpoint)}: ${opts.what}: no answer within ${Math.round(opts.timeoutMs / 1000)} s`,
        ),
      );
    }, opts.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new ExternalError('ssh', `cannot run ssh (is OpenSSH's client installed?): ${e.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 255, stdout, stderr });
    });
  });
}

/** An open connection to one host. */
export interface SshConnection {
  readonly endpoint: SshEndpoint;
  /** The master's PID. */
  readonly pid: number;
  /** `app-1 (admin@10.0.1.11 via bastion)`, for messages. */
  readonly description: string;
  /** Whether the master still runs. */
  alive(): boolean;
  /**
   * A local unix socket (in a private folder) that reaches `remote` on the host: a unix socket
   * path, or `HOST:PORT` as the host would connect to it. Made once per target, then reused.
   */
  forward(remote: string): Promise<string>;
  /**
   * Start a process on the host through the master: `command` is handed to the user's login
   * shell there. Used for the long-lived shell that does file work (ssh-shell.ts).
   */
  spawn(command: string): ChildProcess;
  /** Stop every process of this connection (the master last); safe to call twice. */
  close(): Promise<void>;
}

export interface ConnectOptions {
  /** Stops waiting for the connection (the master is stopped). */
  signal?: AbortSignal;
  /** Bound on the whole connection set-up, bastion included (default: twice the connect timeout + 10 s). */
  timeoutMs?: number;
}

/**
 * Open the one connection to a host: start the master, wait until it is authenticated (its
 * control socket appears) or has failed (it exits; ssh's words say why), bounded in time.
 * @throws ExternalError naming the host and what ssh said.
 */
export async function connectSsh(endpoint: SshEndpoint, opts: ConnectOptions = {}): Promise<SshConnection> {
  const description = describeEndpoint(endpoint);
  // A short, private folder: unix socket paths are limited to ~107 bytes, and a forwarded
  // Docker socket gives whoever can open it root on the host.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-ssh-'));
  folders.add(dir);
  const control = path.join(dir, 'ctl');
  const master = spawn(
    'ssh',
    sshArgv(endpoint, ['-M', '-S', control, '-o', 'ControlPersist=no', '-N', '-T']),
    // Its own process group: the terminal's Ctrl-C must not take the connection away while
    // berth is finishing at a safe point.
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  const tracked = track(master, true);
  let stderr = '';
  master.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-16_384)));
  const spawnError = new Promise<Error>((resolve) => master.once('error', resolve));
  let spawnFailed: Error | undefined;
  void spawnError.then((e) => (spawnFailed = e));
  const cleanup = async () => {
    await stop(tracked);
    rmSync(dir, { recursive: true, force: true });
    folders.delete(dir);
  };

  const connectMs = endpoint.settings.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const timeoutMs = opts.timeoutMs ?? 2 * connectMs + 10_000;
  const deadline = Date.now() + timeoutMs;
  const maxTries = Math.ceil(timeoutMs / 20) + 1;
  for (let i = 0; ; i++) {
    if (spawnFailed) {
      await cleanup();
      throw new ExternalError(
        'ssh',
        `cannot run ssh (is OpenSSH's client installed?): ${spawnFailed.message}`,
      );
    }
    if (existsSync(control)) break;
    if (master.exitCode !== null || master.signalCode !== null) {
      // Let the last of stderr arrive.
      await new Promise<void>((r) =>
        master.stderr!.readableEnded ? r() : master.stderr!.once('end', () => r()),
      );
      await cleanup();
      throw new ExternalError('ssh', `cannot connect to ${description}: ${sshFailure(stderr, endpoint)}`);
    }
    if (opts.signal?.aborted) {
      await cleanup();
      throw new ExternalError('ssh', `connecting to ${description}: cancelled`);
    }
    if (Date.now() > deadline || i >= maxTries) {
      await cleanup();
      const said = sshFailure(stderr, endpoint);
      throw new ExternalError(
        'ssh',
        `cannot connect to ${description}: no connection within ${Math.round(timeoutMs / 1000)} s` +
          (said.startsWith('ssh exited') ? '' : ` (${said})`),
      );
    }
    await sleep(20);
  }

  const client = (extra: string[]) => sshArgv(endpoint, ['-S', control, '-o', 'ControlMaster=no', ...extra]);
  const forwards = new Map<string, Promise<string>>();
  const children = new Set<Tracked>();
  let n = 0;
  let closed: Promise<void> | undefined;
  const conn: SshConnection = {
    endpoint,
    pid: master.pid!,
    description,
    alive: () => master.exitCode === null && master.signalCode === null && closed === undefined,
    forward(remote) {
      let f = forwards.get(remote);
      if (!f) {
        f = (async () => {
          if (!conn.alive()) throw lost();
          const local = path.join(dir, `f${n++}.sock`);
          const r = await runClient(client(['-O', 'forward', '-L', `${local}:${remote}`]), {
            timeoutMs: 30_000,
            what: `forward ${remote}`,
            endpoint,
          });
          if (r.code !== 0) {
            throw new ExternalError(
              'ssh',
              `${description}: cannot forward ${remote}: ${sshFailure(r.stderr, endpoint)}`,
            );
          }
          return local;
        })();
        forwards.set(remote, f);
        f.catch(() => forwards.delete(remote));
      }
      return f;
    },
    spawn(command) {
      if (!conn.alive()) throw lost();
      // The command follows the destination: ssh reads no options after it. A RemoteCommand
      // in the user's config would take its place.
      const child = spawn('ssh', [...client(['-T', '-o', 'RemoteCommand=none']), command], {
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
      });
      const t = track(child, true);
      children.add(t);
      child.once('exit', () => children.delete(t));
      return child;
    },
    close: () =>
      (closed ??= (async () => {
        await Promise.all([...children].map((c) => stop(c, 1_000)));
        await cleanup();
      })()),
  };
  const lost = () =>
    new ExternalError(
      'ssh',
      `the connection to ${description} was lost${stderr ? `: ${sshFailure(stderr, endpoint)}` : ''}`,
    );
  return conn;
}

/**
 * One connection per host for a whole run (deploy, status, wait): opened on first use, shared
 * by every caller, closed together at the end.
 */
export class SshPool {
  private readonly open = new Map<string, Promise<SshConnection>>();

  constructor(private readonly opts: ConnectOptions = {}) {}

  /**
   * The host's connection: the open one, or a new one when there is none or it died. A failed
   * attempt is forgotten, so a later call tries again.
   */
  connect(endpoint: SshEndpoint): Promise<SshConnection> {
    const key = endpoint.name;
    const known = this.open.get(key);
    if (!known) return this.start(key, endpoint);
    return known.then((conn) => {
      if (conn.alive()) return conn;
      // Replaced once, however many callers found it dead at the same time.
      if (this.open.get(key) === known) {
        void conn.close();
        return this.start(key, endpoint);
      }
      return this.open.get(key) ?? this.start(key, endpoint);
    });
  }

  private start(key: string, endpoint: SshEndpoint): Promise<SshConnection> {
    const c = connectSsh(endpoint, this.opts);
    this.open.set(key, c);
    c.catch(() => {
      if (this.open.get(key) === c) this.open.delete(key);
    });
    return c;
  }

  /** Close every connection (each stops its processes by PID). */
  async closeAll(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(all.map((c) => c.then((conn) => conn.close()).catch(() => undefined)));
  }
}
