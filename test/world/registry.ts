import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { alive, GiveUp, freePort, httpRequest, killOnExit, stopPid, waitUntil } from './proc.js';

/** A private registry started by `startRegistry`. */
export interface RegistryHandle {
  /** 127.0.0.1:PORT: plain HTTP, which the engine allows for loopback without configuration. */
  address: string;
  /** docker-registry's PID. */
  pid: number;
  /** Storage, config and log. */
  dir: string;
  /** SIGTERM (then SIGKILL) to its PID, then deletes `dir`. */
  stop(): Promise<void>;
}

/**
 * Start `docker-registry serve` (distribution 2.8) on a free loopback port with storage in a
 * fresh temp dir. Resolves once GET /v2/ answers (bounded). Deleting is enabled so tests can
 * make a tag disappear.
 */
export async function startRegistry(opts: { readyTimeoutMs?: number } = {}): Promise<RegistryHandle> {
  // The port was free a moment ago; another process may take it first, so try a few.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(await freePort(), opts.readyTimeoutMs ?? 15_000);
    } catch (e) {
      lastError = e;
    }
  }
  throw lastError;
}

async function startOnce(port: number, readyTimeoutMs: number): Promise<RegistryHandle> {
  const dir = mkdtempSync('/tmp/bw-reg-');
  const address = `127.0.0.1:${port}`;
  const config = [
    'version: 0.1',
    'log: { level: warn }',
    'storage:',
    `  filesystem: { rootdirectory: ${dir}/data }`,
    '  delete: { enabled: true }',
    `http: { addr: "${address}" }`,
    '',
  ].join('\n');
  writeFileSync(path.join(dir, 'config.yml'), config);
  const log = openSync(path.join(dir, 'registry.log'), 'a');
  const child = spawn('docker-registry', ['serve', path.join(dir, 'config.yml')], {
    detached: true,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error('could not start docker-registry (is it installed? run scripts/setup.sh)');
  }
  const forget = killOnExit(pid);
  const stop = async () => {
    await stopPid(pid, 5_000);
    forget();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitUntil(
      `registry at ${address} to answer /v2/`,
      async () => {
        if (!alive(pid)) throw new GiveUp('docker-registry exited');
        return (await httpRequest({ url: `http://${address}/v2/`, timeoutMs: 2_000 })).status === 200;
      },
      { timeoutMs: readyTimeoutMs },
    );
  } catch (e) {
    const tail = readFileSync(path.join(dir, 'registry.log'), 'utf8').split('\n').slice(-10).join('\n');
    await stop();
    throw new Error(`${(e as Error).message}\n${tail}`);
  }
  return { address, pid, dir, stop };
}
