/**
 * What a test file of berth against real engines stands on, made in its `before` and undone in
 * its `after`: the world (test/world), a client of each engine, a temp folder for berth's own
 * files, and state repos that go away with it.
 *
 *     let fx: WorldFixture;
 *     before(async () => {
 *       fx = await startWorldFixture('berth-cli-');
 *       repo = fx.createRepo({ 'services/web.yaml': ... });
 *     });
 *     after(() => fx?.stop());
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { startEngine, startWorld, type World } from '../world/index.js';
import { startHaproxy, type HaproxyHandle } from '../world/haproxy.js';
import { berth, type CliResult } from './cli.js';
import { createRepo, type TestRepo } from './repo.js';

/** A client of the engine at `dockerHost` (`unix://…`), to look at what berth did there. */
export const dockerClient = (dockerHost: string) =>
  new Docker({ socketPath: dockerHost.replace(/^unix:\/\//, '') });

/** One engine, for berth run as on one host. */
export interface EngineFixture {
  /** A client of the engine. */
  docker: Docker;
  /** `{ DOCKER_HOST }`: how berth reaches the engine. */
  env: Record<string, string>;
  /** A temp folder for berth's record, cache and env files. */
  work: string;
  /** A state repo (test/support/repo.ts) that `stop()` removes. */
  createRepo(files: Record<string, string | null>, branch?: string): TestRepo;
  /** Stops HAProxy (if any) and the engines, removes the repos and `work`; safe twice. */
  stop(): Promise<void>;
}

/** The world's engine, for berth run as on one host. */
export interface WorldFixture extends EngineFixture {
  /** The engine and a registry with demo/web:1 and :2 pushed. */
  world: World;
}

/** A simulated host: its name, and the loopback address its services bind to. */
export interface Host {
  name: string;
  address: string;
}

/** Several simulated hosts, each with an engine of its own, behind one real HAProxy. */
export interface HostsFixture extends WorldFixture {
  /** Each host's DOCKER_HOST, by name (the first host's engine is the world's). */
  dockerHosts: Record<string, string>;
  /** A client of each host's engine, by name. */
  dockers: Record<string, Docker>;
  /** A server per host, named after it, at the host's address and the port given. */
  hap: HaproxyHandle;
  /**
   * `berth apply` of env main on `host`, as that host would run it: its own engine, record
   * (`work/HOST/berth.db`) and env dir (`work/HOST/env`); the clone cache is shared.
   */
  apply(repo: TestRepo, host: string, extraEnv?: Record<string, string>): Promise<CliResult>;
  /** What a fleet rollout does: `apply` host after host, in order, stopping at the first that fails. */
  rollout(repo: TestRepo, extraEnv?: Record<string, string>): Promise<HostResult[]>;
}

/** One host's part of a rollout: its exit code and everything it printed. */
export interface HostResult {
  host: string;
  code: number;
  out: string;
}

/** Start a bare engine (no registry, no images) and make the temp folder `prefix`XXXXXX. */
export async function startEngineFixture(prefix: string): Promise<EngineFixture> {
  const engine = await startEngine();
  return assemble(prefix, engine.dockerHost, [], () => engine.stop());
}

/** Start the world and make the temp folder `prefix`XXXXXX. */
export async function startWorldFixture(prefix: string): Promise<WorldFixture> {
  const world = await startWorld();
  return { ...(await assemble(prefix, world.dockerHost, [], () => world.stop())), world };
}

/**
 * Start an engine per host (the world's for the first, the others in parallel with it), then
 * HAProxy in front of them with each host's server at `port`, and make the temp folder.
 */
export async function startHostsFixture(prefix: string, hosts: Host[], port: number): Promise<HostsFixture> {
  const started = await Promise.allSettled([startWorld(), ...hosts.slice(1).map(() => startEngine())]);
  const up = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const stopEngines = async () => {
    await Promise.all(up.map((h) => h.stop()));
  };
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await stopEngines().catch(() => undefined);
    throw failed.reason;
  }
  const world = up[0] as World;
  let hap: HaproxyHandle;
  try {
    hap = await startHaproxy({ servers: hosts.map((h) => ({ ...h, port })) });
  } catch (e) {
    await stopEngines().catch(() => undefined);
    throw e;
  }
  const dockerHosts: Record<string, string> = {};
  const dockers: Record<string, Docker> = {};
  hosts.forEach((h, i) => {
    dockerHosts[h.name] = up[i]!.dockerHost;
    dockers[h.name] = dockerClient(up[i]!.dockerHost);
  });
  const fx = await assemble(prefix, world.dockerHost, [hap], stopEngines);
  const apply = (repo: TestRepo, host: string, extraEnv: Record<string, string> = {}) =>
    berth(
      [
        'apply',
        '--repo',
        repo.dir,
        '--env',
        'main',
        '--host',
        host,
        '--store',
        `${fx.work}/${host}/berth.db`,
        '--env-dir',
        `${fx.work}/${host}/env`,
        '--cache-dir',
        `${fx.work}/cache`,
      ],
      { DOCKER_HOST: dockerHosts[host]!, ...extraEnv },
      120_000,
    );
  const rollout = async (repo: TestRepo, extraEnv: Record<string, string> = {}) => {
    const results: HostResult[] = [];
    for (const h of hosts) {
      const r = await apply(repo, h.name, extraEnv);
      results.push({ host: h.name, code: r.code, out: r.stdout + r.stderr });
      if (r.code !== 0) break;
    }
    return results;
  };
  return { ...fx, world, dockerHosts, dockers, hap, apply, rollout };
}

/**
 * The fixture around what is already started: `first` (HAProxy) stops before the engines. On
 * any failure here, all of it is stopped again.
 */
async function assemble(
  prefix: string,
  dockerHost: string,
  first: Array<{ stop(): Promise<void> }>,
  stopEngines: () => Promise<void>,
): Promise<EngineFixture> {
  let work: string;
  try {
    work = mkdtempSync(path.join(tmpdir(), prefix));
  } catch (e) {
    for (const s of first) await s.stop().catch(() => undefined);
    await stopEngines().catch(() => undefined);
    throw e;
  }
  const repos: TestRepo[] = [];
  let stopped: Promise<void> | undefined;
  return {
    docker: dockerClient(dockerHost),
    env: { DOCKER_HOST: dockerHost },
    work,
    createRepo(files, branch) {
      const repo = createRepo(files, branch);
      repos.push(repo);
      return repo;
    },
    stop: () =>
      (stopped ??= (async () => {
        try {
          for (const s of first) await s.stop();
          await stopEngines();
        } finally {
          for (const r of repos) r.remove();
          rmSync(work, { recursive: true, force: true });
        }
      })()),
  };
}

/** berth.yaml's `load_balancer` lines for `hap`, each host its own server (named after it). */
export const haproxyBalancer = (hap: HaproxyHandle, drainTimeout: string): string[] => [
  'load_balancer:',
  '  provider: haproxy',
  `  socket: ${hap.socket}`,
  `  backend: ${hap.backend}`,
  '  server: "{{ host.name }}"',
  `  drain_timeout: ${drainTimeout}`,
];

/**
 * services/web.yaml for a rollout: `image` on every host, bound to the host's address at `port`,
 * drained while it is replaced; by default healthy when `/version` answers over HTTP.
 */
export const rolloutWeb = (
  image: string,
  port: number,
  healthcheck = `{ http: 'http://{{ host.address }}:${port}/version', interval: 100ms, timeout: 1s, retries: 3 }`,
): string =>
  [
    `image: ${image}`,
    'pull: missing',
    'drain: true',
    'env_vars:',
    `  PORT: '${port}'`,
    `  BIND: '{{ host.address }}'`,
    `healthcheck: ${healthcheck}`,
    '',
  ].join('\n');

/** inventory.yaml listing each host at its address. */
export const hostsInventory = (hosts: Host[]): string =>
  ['hosts:', ...hosts.map((h) => `  ${h.name}: { address: ${h.address} }`), ''].join('\n');

/** Asserts that every one of `hosts` applied, in order, with exit 0; what they printed is the message. */
export function assertAllApplied(results: HostResult[], hosts: Host[]): void {
  assert.deepEqual(
    results.map((r) => [r.host, r.code]),
    hosts.map((h) => [h.name, 0]),
    results.map((r) => r.out).join('\n'),
  );
}
