import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import {
  alive,
  GiveUp,
  httpRequest,
  killOnExit,
  killTree,
  stopPid,
  unmountUnder,
  waitUntil,
} from './proc.js';

/** A private Docker engine started by `startEngine`. */
export interface EngineHandle {
  /** unix:///tmp/bw-XXXX/d.sock: give it to DOCKER_HOST. */
  dockerHost: string;
  /** The temp dir holding data-root, exec-root, socket, pidfile and dockerd.log. */
  dir: string;
  /** dockerd's PID. */
  pid: number;
  /** Removes its containers, stops dockerd and its containerd by PID, unmounts, deletes `dir`. */
  stop(): Promise<void>;
}

/**
 * Start a private dockerd (engine 20.10, API 1.41) that reaches nothing but loopback: no bridge,
 * no iptables, containers use `network_mode: host` or `none`. Its own data-root, exec-root,
 * socket and containerd under a fresh /tmp/bw-XXXX dir (short: unix socket paths are limited to
 * ~107 bytes). Resolves once /_ping answers (bounded), or rejects with the log's tail.
 */
export async function startEngine(opts: { readyTimeoutMs?: number } = {}): Promise<EngineHandle> {
  const dir = mkdtempSync('/tmp/bw-');
  const sock = path.join(dir, 'd.sock');
  const ns = `berth-${path.basename(dir)}`;
  const log = openSync(path.join(dir, 'dockerd.log'), 'a');
  const child = spawn(
    'dockerd',
    [
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
      `--data-root=${dir}/root`,
      `--exec-root=${dir}/exec`,
      `--pidfile=${dir}/d.pid`,
      `--host=unix://${sock}`,
      // If a system containerd runs, dockerd shares it; its own namespaces keep engines apart.
      `--containerd-namespace=${ns}`,
      `--containerd-plugins-namespace=${ns}-plugins`,
    ],
    { detached: true, stdio: ['ignore', log, log] },
  );
  closeSync(log);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error('could not start dockerd (is docker.io installed? run scripts/setup.sh)');
  }
  const forget = killOnExit(pid);
  let containerdPid: number | undefined;

  const stop = async () => {
    if (alive(pid)) {
      // Removing containers first makes shutdown quick: dockerd would otherwise give each
      // running container its full stop timeout.
      await removeAllContainers(sock).catch(() => undefined);
    }
    containerdPid ??= readPid(path.join(dir, 'exec/containerd/containerd.pid'));
    await stopPid(pid);
    if (containerdPid !== undefined) await stopPid(containerdPid, 5_000);
    // Shims (and their containers) outlive a killed containerd; they name our dir in their argv.
    await killTree(dir);
    forget();
    await unmountUnder(dir);
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // A busy mount we could not detach: leave the dir rather than fail the test run.
    }
  };

  try {
    await waitUntil(
      `dockerd at ${sock} to answer /_ping`,
      async () => {
        if (!alive(pid)) throw new GiveUp('dockerd exited');
        const r = await httpRequest({ socketPath: sock, url: 'http://docker/_ping', timeoutMs: 2_000 });
        return r.status === 200;
      },
      { timeoutMs: opts.readyTimeoutMs ?? 30_000 },
    );
  } catch (e) {
    const tail = logTail(path.join(dir, 'dockerd.log'));
    await stop();
    throw new Error(`${(e as Error).message}${alive(pid) ? '' : ' (dockerd exited)'}\n${tail}`);
  }
  containerdPid = readPid(path.join(dir, 'exec/containerd/containerd.pid'));
  if (containerdPid !== undefined) killOnExit(containerdPid);
  return { dockerHost: `unix://${sock}`, dir, pid, stop };
}

function readPid(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '';
  }
}

async function removeAllContainers(sock: string): Promise<void> {
  const list = await httpRequest({ socketPath: sock, url: 'http://docker/containers/json?all=1' });
  const ids = (JSON.parse(list.body) as { Id: string }[]).map((c) => c.Id);
  await Promise.all(
    ids.map((id) =>
      httpRequest({
        socketPath: sock,
        url: `http://docker/containers/${id}?force=1&v=1`,
        method: 'DELETE',
        timeoutMs: 10_000,
      }),
    ),
  );
}
