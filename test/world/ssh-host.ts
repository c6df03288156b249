/**
 * Simulated SSH hosts for fleet tests: a real OpenSSH server (Debian's sshd) per host, each on
 * its own loopback address, and one more as a bastion, each started by sshd.ts's `launchSshd`
 * (which the git tests' `startSshd` uses too).
 *
 * A host's sshd runs in a mount namespace of its own (`unshare --mount`, private propagation)
 * in which `/run` is a folder of that host (`runDir`) and `/run/docker.sock` (so also
 * `/var/run/docker.sock`) is that host's private engine: whoever logs in sees one machine with
 * one engine at the usual place, its own `/run/berth/env` and `/run/berth/secrets`, and the real
 * system's programs (sh, base64, stat, bash). The test reads and writes the host's files from
 * outside under `runDir`. The namespace ends with the sshd and its sessions, which `stop()` ends
 * by PID.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { keygen, launchSshd, type LaunchedSshd } from './sshd.js';

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

interface SshdOptions {
  address: string;
  port: number;
  /** Public keys allowed to log in (as the user running the tests). */
  authorizedKeys: string[];
  readyTimeoutMs?: number;
}

/**
 * Start sshd for `o` with its files in `dir`, optionally wrapped by `wrap`. `dir` is deleted by
 * `stop()`, or at once if sshd does not start.
 */
async function startServer(
  dir: string,
  o: SshdOptions,
  wrap?: (sshdArgv: string[]) => string[],
): Promise<SshdServer> {
  const hostKeyFile = path.join(dir, 'host_ed25519');
  const authorizedKeysFile = path.join(dir, 'authorized_keys');
  let hostKey: string;
  let sshd: LaunchedSshd;
  try {
    hostKey = keygen(hostKeyFile);
    writeFileSync(authorizedKeysFile, o.authorizedKeys.map((k) => k + '\n').join(''), { mode: 0o600 });
    const { address, port, readyTimeoutMs } = o;
    sshd = await launchSshd({
      dir,
      address,
      port,
      hostKeyFile,
      authorizedKeysFile,
      maxSessions: 20,
      readyTimeoutMs,
      wrap,
    });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  let stopped: Promise<void> | undefined;
  return {
    pid: sshd.pid,
    address: o.address,
    port: o.port,
    dir,
    hostKey,
    knownHostsLine: () => `[${o.address}]:${o.port} ${hostKey}`,
    log: sshd.log,
    logins: () => (sshd.log().match(/Accepted publickey for /g) ?? []).length,
    stop: () =>
      (stopped ??= (async () => {
        await sshd.stop();
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
  const s = await startServer(dir, o, (argv) => [
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
  return { ...s, name: o.name, runDir };
}

/** A bastion: a plain sshd (TCP forwarding allowed) on `address:port`. */
export async function startBastion(o: SshdOptions): Promise<SshdServer> {
  return startServer(mkdtempSync('/tmp/bw-bastion-'), o);
}
