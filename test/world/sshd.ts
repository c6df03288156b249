/**
 * Debian's OpenSSH server for tests. `launchSshd` runs one sshd with a config of its own and waits
 * for its banner; the fleet's simulated hosts and bastion (ssh-host.ts) are built on it, and so is
 * `startSshd`, a git server on 127.0.0.1 with its own keys and known_hosts.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { alive, freePort, GiveUp, killOnExit, processes, stopPid, waitUntil } from './proc.js';

/** A private OpenSSH server on loopback, started by `startSshd`. */
export interface SshdHandle {
  pid: number;
  /** Its temp dir: config, host key, authorized keys, client keys, log. */
  dir: string;
  host: '127.0.0.1';
  port: number;
  /** The user clients log in as: whoever runs the tests. */
  user: string;
  /** A client private key that the server accepts. */
  identityFile: string;
  /** A known_hosts file holding this server's host key for `[127.0.0.1]:port`. */
  knownHosts: string;
  /**
   * An ssh command line for `GIT_SSH_COMMAND` (or `ssh -o ...`): this key only, this known_hosts
   * only (strict), no ~/.ssh/config, no prompts, this port.
   */
  sshCommand(identityFile?: string): string;
  /** `{ GIT_SSH_COMMAND }` for a git or berth process that should reach this server. */
  gitEnv(identityFile?: string): Record<string, string>;
  /** `ssh://user@127.0.0.1:port/abs/path`: a repository on this machine, reached through sshd. */
  url(absPath: string): string;
  /** A new client key pair in `dir`; `authorized: true` also lets it log in. Returns the private key's path. */
  newKey(authorized: boolean): string;
  /** SIGTERM (then SIGKILL) to sshd's PID and its sessions', deletes `dir`. Safe twice. */
  stop(): Promise<void>;
}

const SSHD = '/usr/sbin/sshd';

/** A fresh ed25519 key pair at `file` (no passphrase); its public key, `ssh-ed25519 AAAA…`. */
export function keygen(file: string): string {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'berth-test', '-f', file], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return readFileSync(`${file}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
}

/** Whether an sshd answers with its SSH banner at address:port (bounded). */
function banner(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: address, port });
    let data = '';
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1_000, () => done(false));
    sock.on('data', (d: Buffer) => {
      data += d.toString('latin1');
      if (data.includes('\n')) done(data.startsWith('SSH-2.0-'));
    });
    sock.on('error', () => done(false));
  });
}

/** Where and how `launchSshd` runs one sshd. */
export interface SshdLaunch {
  /** Its temp dir: sshd_config, PidFile and log are written here. */
  dir: string;
  address: string;
  port: number;
  /** The host's private key file. */
  hostKeyFile: string;
  /** Read by sshd at each login, so keys may be added while it runs. */
  authorizedKeysFile: string;
  /** sshd's MaxSessions (sessions per connection). */
  maxSessions: number;
  /** How long to wait for the banner (default 10 s). */
  readyTimeoutMs?: number;
  /** Wrap sshd's argv (e.g. in a namespace); the wrapper must exec into sshd, so the PID is sshd's. */
  wrap?: (sshdArgv: string[]) => string[];
}

/** A running sshd from `launchSshd`. */
export interface LaunchedSshd {
  pid: number;
  /** What sshd logged so far. */
  log(): string;
  /** SIGTERM (then SIGKILL) to sshd, then to its sessions, by PID. Leaves `dir` in place. */
  stop(): Promise<void>;
}

/**
 * Start Debian's sshd in the foreground (`-D -e`, logging to a file in `dir`) with its own
 * config: public-key login only, for the user running the tests; stream-local and TCP forwarding
 * allowed. Resolves once it sends its banner; on failure it is stopped again and the error carries
 * the end of its log.
 */
export async function launchSshd(o: SshdLaunch): Promise<LaunchedSshd> {
  // sshd's privilege separation needs this; Debian's package makes it only at boot. Without
  // root this may fail, and sshd then says what it misses in its log (part of the error).
  try {
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  } catch {
    // See above.
  }
  const config = path.join(o.dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${o.port}`,
      `ListenAddress ${o.address}`,
      `HostKey ${o.hostKeyFile}`,
      `PidFile ${path.join(o.dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${o.authorizedKeysFile}`,
      // The temp dir lives under /tmp (world-writable), which StrictModes would refuse.
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'PermitRootLogin prohibit-password',
      'AllowStreamLocalForwarding yes',
      'AllowTcpForwarding yes',
      'MaxStartups 100:30:200',
      `MaxSessions ${o.maxSessions}`,
      'LogLevel INFO',
      '',
    ].join('\n'),
  );
  const logFile = path.join(o.dir, `sshd-${o.port}.log`);
  const log = openSync(logFile, 'a');
  const argv = (o.wrap ?? ((a: string[]) => a))([SSHD, '-D', '-e', '-f', config]);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', log, log], detached: true });
  closeSync(log);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start sshd (is openssh-server installed?)');
  const forget = killOnExit(pid);
  const readLog = () => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const stop = async () => {
    // Sessions are sshd's children (and theirs); in a namespace they would keep it alive.
    const all = processes();
    const tree = new Set<number>([pid]);
    for (let grew = true; grew;) {
      grew = false;
      for (const p of all)
        if (tree.has(p.ppid) && !tree.has(p.pid)) {
          tree.add(p.pid);
          grew = true;
        }
    }
    await stopPid(pid, 5_000);
    for (const p of tree) if (p !== pid) await stopPid(p, 2_000);
    forget();
  };
  try {
    await waitUntil(
      `sshd on ${o.address}:${o.port} to answer`,
      async () => {
        if (!alive(pid)) throw new GiveUp('sshd exited');
        return banner(o.address, o.port);
      },
      { timeoutMs: o.readyTimeoutMs ?? 10_000, intervalMs: 50 },
    );
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}\n${readLog().split('\n').slice(-10).join('\n')}`);
  }
  return { pid, log: readLog, stop };
}

/**
 * Start Debian's sshd in the foreground (`-D -e`) with its own config, host key, authorized
 * keys and PidFile in a temp dir, listening on 127.0.0.1 and a free port. Public-key login only,
 * for the current user; stream-local and TCP forwarding allowed (for engine sockets later).
 * Resolves once it sends its banner (≤ 10 s).
 */
export async function startSshd(opts: { readyTimeoutMs?: number } = {}): Promise<SshdHandle> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bw-sshd-'));
  try {
    const hostKeyFile = path.join(dir, 'host_ed25519');
    const hostKey = keygen(hostKeyFile);
    const authorizedKeysFile = path.join(dir, 'authorized_keys');
    writeFileSync(authorizedKeysFile, '', { mode: 0o600 });
    let keys = 0;
    const newKey = (auth: boolean) => {
      const file = path.join(dir, `client_${++keys}`);
      const pub = keygen(file);
      if (auth) appendFileSync(authorizedKeysFile, pub + '\n');
      return file;
    };
    const identityFile = newKey(true);
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      let sshd: LaunchedSshd;
      try {
        sshd = await launchSshd({
          dir,
          address: '127.0.0.1',
          port,
          hostKeyFile,
          authorizedKeysFile,
          maxSessions: 100,
          readyTimeoutMs: opts.readyTimeoutMs,
        });
      } catch (e) {
        lastError = e;
        continue;
      }
      return handle({ dir, port, hostKey, identityFile, newKey, sshd });
    }
    throw lastError;
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

function handle(a: {
  dir: string;
  port: number;
  hostKey: string;
  identityFile: string;
  newKey: (auth: boolean) => string;
  sshd: LaunchedSshd;
}): SshdHandle {
  const { dir, port } = a;
  const knownHosts = path.join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${a.hostKey}\n`);
  const user = os.userInfo().username;
  const sshCommand = (identityFile = a.identityFile) =>
    [
      'ssh',
      '-F /dev/null',
      `-i ${identityFile}`,
      '-o IdentitiesOnly=yes',
      `-o UserKnownHostsFile=${knownHosts}`,
      '-o GlobalKnownHostsFile=/dev/null',
      '-o StrictHostKeyChecking=yes',
      '-o BatchMode=yes',
      '-o ConnectTimeout=10',
      `-p ${port}`,
    ].join(' ');
  let stopped: Promise<void> | undefined;
  return {
    pid: a.sshd.pid,
    dir,
    host: '127.0.0.1',
    port,
    user,
    identityFile: a.identityFile,
    knownHosts,
    sshCommand,
    gitEnv: (identityFile) => ({ GIT_SSH_COMMAND: sshCommand(identityFile) }),
    url: (absPath) => `ssh://${user}@127.0.0.1:${port}${absPath}`,
    newKey: a.newKey,
    stop: () =>
      (stopped ??= (async () => {
        await a.sshd.stop();
        rmSync(dir, { recursive: true, force: true });
      })()),
  };
}
