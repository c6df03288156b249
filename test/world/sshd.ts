import { execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  appendFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { alive, freePort, GiveUp, killOnExit, stopPid, waitUntil } from './proc.js';

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
  /** SIGTERM (then SIGKILL) to sshd's PID, deletes `dir`. Safe twice. */
  stop(): Promise<void>;
}

const SSHD = '/usr/sbin/sshd';

function keygen(file: string): string {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'berth-test', '-f', file], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return readFileSync(`${file}.pub`, 'utf8').trim();
}

/** Whether sshd on `port` answers with its SSH banner (bounded). */
function banner(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
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

/**
 * Start Debian's sshd in the foreground (`-D -e`) with its own config, host key, authorized
 * keys and PidFile in a temp dir, listening on 127.0.0.1 and a free port. Public-key login only,
 * for the current user; stream-local and TCP forwarding allowed (for engine sockets later).
 * Resolves once it sends its banner (≤ 10 s).
 */
export async function startSshd(opts: { readyTimeoutMs?: number } = {}): Promise<SshdHandle> {
  // sshd's privilege separation needs this; Debian's package makes it only at boot. Without
  // root this may fail, and sshd then says what it misses in its log (part of the error).
  try {
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  } catch {
    // See above.
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bw-sshd-'));
  try {
    const hostKey = path.join(dir, 'host_ed25519');
    const hostPub = keygen(hostKey);
    const authorized = path.join(dir, 'authorized_keys');
    writeFileSync(authorized, '', { mode: 0o600 });
    let keys = 0;
    const newKey = (auth: boolean) => {
      const file = path.join(dir, `client_${++keys}`);
      const pub = keygen(file);
      if (auth) appendFileSync(authorized, pub + '\n');
      return file;
    };
    const identityFile = newKey(true);
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      try {
        return await startOnce({ dir, port, hostKey, hostPub, authorized, identityFile, newKey, opts });
      } catch (e) {
        lastError = e;
      }
    }
    throw lastError;
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

async function startOnce(a: {
  dir: string;
  port: number;
  hostKey: string;
  hostPub: string;
  authorized: string;
  identityFile: string;
  newKey: (auth: boolean) => string;
  opts: { readyTimeoutMs?: number };
}): Promise<SshdHandle> {
  const { dir, port } = a;
  const config = path.join(dir, 'sshd_config');
  const pidFile = path.join(dir, 'sshd.pid');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${a.hostKey}`,
      `PidFile ${pidFile}`,
      `AuthorizedKeysFile ${a.authorized}`,
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
      'MaxSessions 100',
      'LogLevel INFO',
      '',
    ].join('\n'),
  );
  const logFile = path.join(dir, `sshd-${port}.log`);
  const log = openSync(logFile, 'a');
  const child = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', log, log], detached: false });
  closeSync(log);
  const pid = child.pid;
  if (pid === undefined) throw new Error('sshd did not start');
  child.unref();
  const forget = killOnExit(pid);
  const readLog = () => {
    try {
      return readFileSync(logFile, 'utf8').slice(-2000);
    } catch {
      return '';
    }
  };
  try {
    await waitUntil(
      `sshd on 127.0.0.1:${port}`,
      async () => {
        if (!alive(pid)) throw new GiveUp(`sshd exited: ${readLog()}`);
        return banner(port);
      },
      { timeoutMs: a.opts.readyTimeoutMs ?? 10_000, intervalMs: 50 },
    );
  } catch (e) {
    await stopPid(pid, 2_000);
    forget();
    throw e instanceof GiveUp ? new Error(e.message) : e;
  }

  const knownHosts = path.join(dir, 'known_hosts');
  const [type, key] = a.hostPub.split(' ');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${type} ${key}\n`);
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
    pid,
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
        await stopPid(pid, 5_000);
        forget();
        rmSync(dir, { recursive: true, force: true });
      })()),
  };
}
