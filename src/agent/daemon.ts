import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createAdaptorServer } from '@hono/node-server';
import { lsRemote, redact, verifyCommit } from '../adapters/git.js';
import { loadRepo, type LoadedRepo } from '../host/desired.js';
import { convergeHost, type HostRequest } from '../host/pipeline.js';
import type { Host } from '../host/target.js';
import { ExternalError, UsageError } from '../model/errors.js';
import { cacheName, isLocalRepo } from '../source/read.js';
import { openStore } from '../store/registry.js';
import { Agent, type AgentDeps } from './agent.js';
import { agentApi, DEFAULT_MAX_BODY } from './api.js';
import type { Logger } from './log.js';
import { lookAt } from './look.js';
import { agentMetrics, type AgentMetrics } from './metrics.js';
import { notifiersFor, type NotifierFactories } from './notifiers/index.js';

/**
 * The agent as a process: the loop (agent.ts) over the real remote, repo, engine and record,
 * and its HTTP API on a real socket. Built by `berth agent`; returns when the signal aborts
 * and the turn under way has stopped at a safe point.
 */

export interface DaemonOptions {
  host: Host;
  request: HostRequest;
  env: string;
  store: string;
  /** Where the API listens. */
  listen: { host: string; port: number };
  intervalMs: number;
  staleAfterMs: number;
  selfHeal: boolean;
  backoffMaxMs: number;
  waitLockMs: number;
  parallel?: number;
  /** Where a networked record keeps outcomes while it cannot be reached. */
  spoolDir?: string;
  /** Trust settings for `--verify-signatures`; undefined when signatures are not checked. */
  verify?: { allowedSigners?: string; gpgKeys?: string };
  berthVersion: string;
  log: Logger;
  environment: NodeJS.ProcessEnv;
  notifierFactories?: NotifierFactories;
}

export interface RunningAgent {
  agent: Agent;
  metrics: AgentMetrics;
  /** Where the API listens (the real port when 0 was asked for). */
  address: { host: string; port: number };
  /** Settles when the loop has stopped and the API is closed. */
  done: Promise<void>;
}

/** Parse `--listen`: `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all interfaces). */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new UsageError(
      `--listen ${JSON.stringify(value)}: use HOST:PORT, e.g. 127.0.0.1:7373 or [::1]:7373`,
    );
  }
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/** Start the agent: the API first (a port in use stops it before any work), then the loop. */
export async function startAgent(o: DaemonOptions, signal: AbortSignal): Promise<RunningAgent> {
  const { host, request, log } = o;
  const source = request.source;
  const metrics = agentMetrics();
  const repoLabel = isLocalRepo(source.repo) ? path.resolve(source.repo) : redact(source.repo);
  const url = isLocalRepo(source.repo) ? path.resolve(source.repo) : source.repo;
  const gpg = o.verify?.gpgKeys ? await gpgHome(o.verify.gpgKeys) : undefined;

  const deps: AgentDeps = {
    now: () => Date.now(),
    random: Math.random,
    async headOf(sig) {
      const ref = `refs/heads/${o.env}`;
      const found = await lsRemote(url, [ref], {
        cwd: os.tmpdir(),
        timeoutMs: source.networkTimeoutMs,
        signal: sig,
      });
      const commit = found.get(ref);
      if (!commit) throw new UsageError(`branch "${o.env}" is not on ${repoLabel}`);
      return commit;
    },
    load: (sig) => raceAbort(loadRepo(source, sig), sig),
    converge: (req, opts) => convergeHost(host, req, opts),
    look: (loaded, sig) => lookAt(host, request, loaded, o.store, sig),
    lockHolder: () => host.state.lockHolder(),
    lastRecorded: () => lastRecorded(o.store, host.target.name, o.env),
    settle: fullCollection(),
  };
  if (o.verify) {
    const config: Record<string, string> = {};
    if (o.verify.allowedSigners) config['gpg.ssh.allowedSignersFile'] = path.resolve(o.verify.allowedSigners);
    deps.verify = async (_loaded: LoadedRepo, commit: string) =>
      verifyCommit(path.join(source.cacheDir, await cacheName(url)), commit, {
        config,
        // Without a keyring of its own, gpg would trust whatever the user's keyring holds.
        env: { GNUPGHOME: gpg?.dir ?? emptyGpgHome() },
        label: repoLabel,
      });
  }

  const agent = new Agent({
    request,
    env: o.env,
    hostName: host.target.name,
    reportHost: host.target.name ?? os.hostname(),
    repoLabel,
    store: o.store,
    intervalMs: o.intervalMs,
    staleAfterMs: o.staleAfterMs,
    selfHeal: o.selfHeal,
    backoff: { baseMs: Math.min(o.intervalMs, o.backoffMaxMs), maxMs: o.backoffMaxMs },
    waitLockMs: o.waitLockMs,
    parallel: o.parallel,
    spoolDir: o.spoolDir,
    berthVersion: o.berthVersion,
    log,
    metrics,
    notifiers: (loaded) =>
      notifiersFor(loaded?.repo.settings?.agent, o.environment, source.repo, o.notifierFactories),
    deps,
  });

  const app = agentApi({
    agent,
    metrics,
    history: async (q) => {
      const store = await openStore(o.store);
      try {
        const h = host.target.name;
        return await store.history(h === undefined ? q : { ...q, host: h });
      } finally {
        await store.close();
      }
    },
    webhookSecret: o.environment.BERTH_WEBHOOK_SECRET || undefined,
    apiToken: o.environment.BERTH_API_TOKEN || undefined,
    maxBodyBytes: DEFAULT_MAX_BODY,
    log,
  });
  const server = createAdaptorServer({ fetch: app.fetch, overrideGlobalObjects: false }) as Server;
  // A slow client must not hold a connection (and the body cap) open for ever.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  const address = await listen(server, o.listen);
  log.info(
    {
      listen: `${address.host}:${address.port}`,
      repo: repoLabel,
      env: o.env,
      intervalMs: o.intervalMs,
      selfHeal: o.selfHeal,
      webhooks: Boolean(o.environment.BERTH_WEBHOOK_SECRET),
      sync: Boolean(o.environment.BERTH_API_TOKEN),
      verifySignatures: Boolean(o.verify),
    },
    'berth agent started',
  );

  const done = agent.run(signal).finally(async () => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    if (gpg) gpg.remove();
    log.info('berth agent stopped');
  });
  return { agent, metrics, address, done };
}

function listen(server: Server, at: { host: string; port: number }): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) =>
      reject(
        new UsageError(
          `--listen ${at.host}:${at.port}: ${e.code === 'EADDRINUSE' ? 'the port is in use' : e.message}`,
        ),
      );
    server.once('error', onError);
    server.listen(at.port, at.host, () => {
      server.off('error', onError);
      const a = server.address() as AddressInfo;
      resolve({ host: a.address, port: a.port });
    });
  });
}

/** Stop waiting for `p` when `signal` aborts (the work itself ends by its own timeout). */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error('stopped'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error('stopped'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** The newest commit this host and branch were converged to, as the record has it. */
async function lastRecorded(
  location: string,
  host: string | undefined,
  env: string,
): Promise<{ commit: string; at: string } | undefined> {
  const store = await openStore(location);
  try {
    const a = (await store.applies({ limit: 200 })).find(
      (x) => x.result === 'succeeded' && x.stateCommit && x.host === host && x.ref === env,
    );
    return a ? { commit: a.stateCommit!, at: a.finishedAt ?? a.startedAt } : undefined;
  } finally {
    await store.close();
  }
}

let emptyHome: string | undefined;
/** A keyring with no keys, for when only SSH signatures are allowed. */
function emptyGpgHome(): string {
  if (!emptyHome) {
    emptyHome = mkdtempSync(path.join(os.tmpdir(), 'berth-gpg-'));
    const dir = emptyHome;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return emptyHome;
}

/**
 * A private gpg home holding only the allowed public keys (`--gpg-keys`), so that "allowed"
 * means exactly those keys, whatever the user's own keyring trusts.
 */
async function gpgHome(keys: string): Promise<{ dir: string; remove(): void }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-gpg-'));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    await new Promise<void>((resolve, reject) =>
      execFile(
        'gpg',
        ['--batch', '--quiet', '--homedir', dir, '--import', path.resolve(keys)],
        { timeout: 30_000 },
        (err, _out, stderr) =>
          err
            ? reject(
                new ExternalError(
                  'gpg',
                  `--gpg-keys ${keys}: cannot import the keys: ${stderr.trim().split('\n').pop() ?? err.message}`,
                ),
              )
            : resolve(),
      ),
    );
  } catch (e) {
    remove();
    throw e;
  }
  process.once('exit', remove);
  return { dir, remove };
}

/**
 * A full garbage collection, for the end of a reconcile: an idle agent's resident memory then
 * drops to its idle size at once (a few MiB, measured in docs/benchmarks.md) instead of seconds
 * later. V8 offers it only behind `--expose-gc`, which takes effect for contexts made after it.
 */
function fullCollection(): (() => void) | undefined {
  setFlagsFromString('--expose-gc');
  const gc: unknown = runInNewContext('gc');
  return typeof gc === 'function' ? () => void gc() : undefined;
}
