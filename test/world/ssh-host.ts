/**
 * Simulated SSH hosts for fleet tests: a real OpenSSH server (Debian's sshd) per host, each on
 * its own loopback address, and one more as a bastion. Self-contained (the git tests have their
 * own sshd helper for repositories).
 *
 * A host's sshd runs in a mount namespace of its own (`unshare --mount`, private propagation)
 * in which `/run` is a folder of that host (`runDir`) and `/run/docker.sock` (so also
 * `/var/run/docker.sock`) is that host's private engine: whoever logs in sees one machine with
 * one engine at the usual place, its own `/run/berth/env` and `/run/berth/secrets`, and the real
 * system's programs (sh, base64, stat, bash). The test reads and writes the host's files from
 * outside under `runDir`. The namespace ends with the sshd and its sessions, which `stop()` ends
 * by PID.
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { alive, GiveUp, killOnExit, processes, stopPid, waitUntil } from './proc.js';

const SSHD = '/usr/sbin/sshd';

/** A client key pair that every sshd of a test accepts. */
export interface SshClientKey {
  /** Private key (no passphrase), for `identity_file`. */
  identityFile: string;
  publicKey: string;
}

/** One running sshd: a simulated host or the bastion. */
export interface SshdServer {
  pid: number;
  address: string;
  port: number;
  dir: string;
  /** The server's host public key, `ssh-ed25519 AAAA…`. */
  hostKey: string;
  /** `[address]:port ssh-ed25519 AAAA…`: its line in a known_hosts file. */
  knownHostsLine(): string;
  /** What sshd logged so far (logins: `Accepted publickey for …`). */
  log(): string;
  /** How many logins it accepted so far. */
  logins(): number;
  /** SIGTERM (then SIGKILL) to sshd and to its sessions, by PID; deletes `dir`. Safe twice. */
  stop(): Promise<void>;
}

/** A simulated host: an sshd whose logins see its own /run, and `engineSocket` at /run/docker.sock. */
export interface SshHost extends SshdServer {
  name: string;
  /** The host's /run as seen from outside: `berth/env`, `berth/secrets` are under it. */
  runDir: string;
}

/** A fresh ed25519 key pair in `dir`. */
export function clientKey(dir: string, name = 'client'): SshClientKey {
  const file = path.join(dir, name);
  const publicKey = keygen(file);
  return { identityFile: file, publicKey };
}

function keygen(file: string): string {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'berth-test', '-f', file], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return readFileSync(`${file}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
}

/** Write a known_hosts file that lists `servers` (plain, not hashed). */
export function writeKnownHosts(file: string, servers: Array<{ knownHostsLine(): string }>): void {
  writeFileSync(file, servers.map((s) => s.knownHostsLine() + '\n').join(''), { mode: 0o600 });
}

/** A port that is free on every one of `addresses` a moment ago (tries a few). */
export async function commonFreePort(addresses: string[]): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    // 10000-17999: below the ports tests fix (24xxx-31xxx) and the kernel's ephemeral range.
    const port = 10_000 + Math.floor(Math.random() * 8_000);
    const servers: net.Server[] = [];
    let ok = true;
    for (const a of addresses) {
      const s = net.createServer();
      const bound = await new Promise<boolean>((resolve) => {
        s.once('error', () => resolve(false));
        s.listen(port, a, () => resolve(true));
      });
      servers.push(s);
      if (!bound) {
        ok = false;
        break;
      }
    }
    await Promise.all(servers.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r()))));
    if (ok) return port;
  }
  throw new Error(`no port free on all of ${addresses.join(', ')}`);
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

interface SshdOptions {
  address: string;
  port: number;
  /** Public keys allowed to log in (as the user running the tests). */
  authorizedKeys: string[];
  readyTimeoutMs?: number;
}

function sshdConfig(dir: string, o: SshdOptions, hostKey: string): string {
  const authorized = path.join(dir, 'authorized_keys');
  writeFileSync(authorized, o.authorizedKeys.map((k) => k + '\n').join(''), { mode: 0o600 });
  const config = path.join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${o.port}`,
      `ListenAddress ${o.address}`,
      `HostKey ${hostKey}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${authorized}`,
      // The temp dir is under /tmp (world-writable), which StrictModes would refuse.
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'PermitRootLogin prohibit-password',
      'AllowStreamLocalForwarding yes',
      'AllowTcpForwarding yes',
      'MaxStartups 100:30:200',
      'MaxSessions 20',
      'LogLevel INFO',
      '',
    ].join('\n'),
  );
  return config;
}

/**
 * Start sshd in the foreground (`-D -e`, logging to a file), optionally through `prefix` (the
 * namespace setup), and wait for its banner. The spawned process is sshd itself (unshare and sh
 * exec into it), so its PID is sshd's.
 */
async function startSshd(
  dir: string,
  o: SshdOptions,
  wrap: (sshdArgv: string[]) => string[],
): Promise<Omit<SshdServer, 'stop'> & { stopProcess: () => Promise<void> }> {
  const hostKeyFile = path.join(dir, 'host_ed25519');
  const hostKey = keygen(hostKeyFile);
  const config = sshdConfig(dir, o, hostKeyFile);
  const logFile = path.join(dir, 'sshd.log');
  const log = openSync(logFile, 'a');
  const argv = wrap([SSHD, '-D', '-e', '-f', config]);
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
  const stopProcess = async () => {
    // Sessions are sshd's children (and theirs); they would keep the namespace alive.
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
    await stopProcess();
    throw new Error(`${(e as Error).message}\n${readLog().split('\n').slice(-10).join('\n')}`);
  }
  return {
    pid,
    address: o.address,
    port: o.port,
    dir,
    hostKey,
    knownHostsLine: () => `[${o.address}]:${o.port} ${hostKey}`,
    log: readLog,
    logins: () => (readLog().match(/Accepted publickey for /g) ?? []).length,
    stopProcess,
  };
}

function finish(s: Omit<SshdServer, 'stop'> & { stopProcess: () => Promise<void> }, dir: string) {
  let stopped: Promise<void> | undefined;
  const { stopProcess, ...rest } = s;
  return {
    ...rest,
    stop: () =>
      (stopped ??= (async () => {
        await stopProcess();
        rmSync(dir, { recursive: true, force: true });
      })()),
  };
}

/**
 * A simulated host: sshd on `address:port` in its own mount namespace, where /run is `runDir`
 * (with `berth/env` and `berth/secrets` made, 0700) and /run/docker.sock is `engineSocket`.
 */
export async function startSshHost(
  o: SshdOptions & { name: string; engineSocket?: string },
): Promise<SshHost> {
  // sshd's privilege separation needs this on the real /run for the bastion; made here too.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = mkdtempSync('/tmp/bw-ssh-');
  const runDir = path.join(dir, 'run');
  mkdirSync(path.join(runDir, 'sshd'), { recursive: true, mode: 0o755 });
  mkdirSync(path.join(runDir, 'berth/env'), { recursive: true, mode: 0o700 });
  mkdirSync(path.join(runDir, 'berth/secrets'), { recursive: true, mode: 0o700 });
  const setup = [`mount --bind '${runDir}' /run`];
  if (o.engineSocket) {
    writeFileSync(path.join(runDir, 'docker.sock'), '');
    setup.push(`mount --bind '${o.engineSocket.replace(/^unix:\/\//, '')}' /run/docker.sock`);
  }
  try {
    const s = await startSshd(dir, o, (argv) => [
      'unshare',
      '--mount',
      '--propagation',
      'private',
      '--',
      'sh',
      '-c',
      [...setup, 'exec "$@"'].join(' && '),
      'sh',
      ...argv,
    ]);
    return { ...finish(s, dir), name: o.name, runDir };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/** A bastion: a plain sshd (TCP forwarding allowed) on `address:port`. */
export async function startBastion(o: SshdOptions): Promise<SshdServer> {
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = mkdtempSync('/tmp/bw-bastion-');
  try {
    return finish(await startSshd(dir, o, (argv) => argv), dir);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
