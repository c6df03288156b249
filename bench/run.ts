/**
 * `npm run bench`: how long berth takes for 10, 50 and 100 services against a real engine and
 * registry, beside the engine's own floor for the same work. Writes docs/benchmarks.md.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import Docker from 'dockerode';
import { startWorld } from '../test/world/index.js';
import { startHaproxy } from '../test/world/haproxy.js';
import { startSshd } from '../test/world/sshd.js';
import { createRepo } from '../test/support/repo.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import { openPostgresStore } from '../src/store/postgres.js';
import { openStore } from '../src/store/registry.js';
import type { Store } from '../src/store/types.js';
import { startPostgres } from '../test/world/postgres.js';
import { listTree, readBlobs } from '../src/adapters/git.js';
import { readStateRepo } from '../src/source/read.js';
import { gitIn } from '../test/support/git.js';
import { createRemote, startAgentProcess, type AgentProcess } from '../test/support/agent.js';
import { startGitHttp } from '../test/support/git-http.js';
import { signBody } from '../src/agent/webhooks.js';
import { startEngine } from '../test/world/engine.js';
import {
  clientKey,
  commonFreePort,
  startBastion,
  startSshHost,
  writeKnownHosts,
} from '../test/world/ssh-host.js';
import { connectSsh } from '../src/adapters/ssh.js';
import { dockerEngine } from '../src/adapters/docker.js';
import { openSshHost } from '../src/host/target.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = path.join(ROOT, 'dist/cli/main.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const SIZES = (process.env.BENCH_SIZES ?? '10,50,100').split(',').map(Number);

function time(args: string[], env: Record<string, string>, okCodes = [0]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [MAIN, ...args], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (!okCodes.includes(r.status ?? -1)) {
    throw new Error(`berth ${args.join(' ')} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  }
  return ms;
}

async function timeAsync(work: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** The engine's floor for one recreate: stop, remove, create, start through the bare API. */
async function bareRecreates(docker: Docker, name: string): Promise<number[]> {
  const times: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const old = docker.getContainer(name);
    const info = await old.inspect();
    times.push(
      await timeAsync(async () => {
        await old.stop();
        await old.remove();
        const c = await docker.createContainer({
          name,
          Image: info.Config.Image,
          Env: info.Config.Env,
          Labels: info.Config.Labels,
          HostConfig: info.HostConfig,
        });
        await c.start();
      }),
    );
  }
  return times;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`);

interface Row {
  n: number;
  first: number;
  noopPlan: number;
  noopApply: number;
  oneChange: number;
  /** berth's own time for the recreate, from its record: stop, set aside, create, start, then the health step. */
  recreateStep: number;
  floorListInspect: number;
  floorRecreate: number;
}

async function benchSize(n: number): Promise<Row> {
  const world = await startWorld();
  const work = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-'));
  const docker = new Docker({ socketPath: world.dockerHost.replace('unix://', '') });
  const env = { DOCKER_HOST: world.dockerHost };
  const svc = (i: number, bar = 'baz') =>
    `image: ${world.images.web1}\nenv_vars:\n  PORT: '${30000 + i}'\n  BAR: ${bar}\n`;
  const files: Record<string, string> = { 'berth.yaml': `env_dir: ${work}/env\n` };
  for (let i = 0; i < n; i++) files[`services/svc${String(i).padStart(3, '0')}.yaml`] = svc(i);
  const repo = createRepo(files);
  const flags = ['--repo', repo.dir, '--env', 'main', '--cache-dir', `${work}/cache`];
  const store = ['--store', `${work}/berth.db`];
  try {
    const first = time(['apply', ...flags, ...store], env);
    const noopPlan = median(Array.from({ length: RUNS }, () => time(['plan', ...flags], env)));
    const noopApply = median(Array.from({ length: RUNS }, () => time(['apply', ...flags, ...store], env)));
    const changes: number[] = [];
    const steps: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      repo.commit({ 'services/svc000.yaml': svc(0, `v${r}`) });
      changes.push(time(['apply', ...flags, ...store], env));
      const record = openSqliteStore(`${work}/berth.db`);
      const rows = await record.history({ service: 'svc000', limit: 10 });
      await record.close();
      // The recreate and the health wait that follows it are two steps of the record.
      const step = (action: string) =>
        rows.find((h) => h.action === action && h.applyId === rows[0]?.applyId);
      const recreate = step('recreate')?.durationMs;
      const health = step('health')?.durationMs;
      if (recreate === undefined || health === undefined)
        throw new Error('the record has no recreate of svc000');
      steps.push(recreate + health);
    }
    // The engine's own floor: the reads a plan needs, and one recreate through the bare API.
    const floorListInspect = median(
      await Promise.all(
        Array.from({ length: RUNS }, () =>
          timeAsync(async () => {
            const list = await docker.listContainers({ all: true });
            await Promise.all(list.map((c) => docker.getContainer(c.Id).inspect()));
          }),
        ),
      ),
    );
    const recreates = await bareRecreates(docker, 'svc001');
    return {
      n,
      first,
      noopPlan,
      noopApply,
      oneChange: median(changes),
      recreateStep: median(steps),
      floorListInspect,
      floorRecreate: median(recreates),
    };
  } finally {
    await world.stop();
    repo.remove();
    rmSync(work, { recursive: true, force: true });
  }
}

interface RotationRow {
  outOfRotation: number;
  drain: number;
  recreate: number;
  undrain: number;
  floorRecreate: number;
  interval: number;
}

/**
 * Issue 4: how long one host is out of rotation for a one-service change (drain: true, an
 * http health check every 100 ms), from berth's record: drain start to undrain end.
 */
async function benchRotation(): Promise<RotationRow> {
  const PORT = 24900;
  const INTERVAL = 100;
  const world = await startWorld();
  const hap = await startHaproxy({ servers: [{ name: 'h1', address: '127.0.0.2', port: PORT }] });
  const work = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-rot-'));
  const docker = new Docker({ socketPath: world.dockerHost.replace('unix://', '') });
  const svc = (v: number) =>
    [
      `image: ${world.images.web1}`,
      'pull: missing',
      'drain: true',
      'env_vars:',
      `  PORT: '${PORT}'`,
      "  BIND: '{{ host.address }}'",
      `  V: '${v}'`,
      `healthcheck: { http: 'http://{{ host.address }}:${PORT}/version', interval: ${INTERVAL}ms, timeout: 1s, retries: 3 }`,
      '',
    ].join('\n');
  const repo = createRepo({
    'berth.yaml': `load_balancer: { provider: haproxy, socket: ${hap.socket}, backend: ${hap.backend}, server: h1 }\n`,
    'inventory.yaml': 'hosts:\n  h1: { address: 127.0.0.2 }\n',
    'services/web.yaml': svc(0),
  });
  const flags = ['--repo', repo.dir, '--env', 'main', '--host', 'h1', '--cache-dir', `${work}/cache`];
  const store = ['--store', `${work}/berth.db`, '--env-dir', `${work}/env`];
  const env = { DOCKER_HOST: world.dockerHost };
  try {
    time(['apply', ...flags, ...store], env);
    const rows: Array<Omit<RotationRow, 'floorRecreate' | 'interval'>> = [];
    for (let r = 1; r <= RUNS; r++) {
      repo.commit({ 'services/web.yaml': svc(r) });
      time(['apply', ...flags, ...store], env);
      const record = openSqliteStore(`${work}/berth.db`);
      const h = await record.history({ limit: 10 });
      await record.close();
      const latest = h[0]!.applyId;
      const of = (action: string) => h.find((x) => x.applyId === latest && x.action === action);
      const drain = of('drain');
      const undrain = of('undrain');
      const recreate = of('recreate');
      const health = of('health');
      if (!drain || !undrain?.finishedAt || !recreate || !health)
        throw new Error('the record lacks drain, recreate, health or undrain');
      rows.push({
        outOfRotation: Date.parse(undrain.finishedAt) - Date.parse(drain.startedAt),
        drain: drain.durationMs ?? 0,
        recreate: (recreate.durationMs ?? 0) + (health.durationMs ?? 0),
        undrain: undrain.durationMs ?? 0,
      });
    }
    const recreates = await bareRecreates(docker, 'web');
    return {
      outOfRotation: median(rows.map((x) => x.outOfRotation)),
      drain: median(rows.map((x) => x.drain)),
      recreate: median(rows.map((x) => x.recreate)),
      undrain: median(rows.map((x) => x.undrain)),
      floorRecreate: median(recreates),
      interval: INTERVAL,
    };
  } finally {
    await hap.stop();
    await world.stop();
    repo.remove();
    rmSync(work, { recursive: true, force: true });
  }
}

interface ReadRow {
  readBlobs: number;
  cachedRead: number;
}

/** Reading 100 service files: one `git cat-file --batch`, and a no-op read of a cached clone. */
async function benchRead(): Promise<ReadRow> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-read-'));
  try {
    const work = path.join(tmp, 'work');
    const bare = path.join(tmp, 'state.git');
    mkdirSync(path.join(work, 'services'), { recursive: true });
    gitIn(tmp, 'init', '-q', '-b', 'main', work);
    for (let i = 0; i < 100; i++)
      writeFileSync(
        path.join(work, `services/svc-${i}.yaml`),
        `image: reg/svc-${i}:1\nenv_vars: { A: '${i}' }\n`,
      );
    gitIn(work, 'add', '-A');
    gitIn(work, 'commit', '-q', '-m', 'services');
    gitIn(tmp, 'clone', '-q', '--bare', work, bare);
    const oids = (await listTree(work, 'HEAD')).filter((e) => e.type === 'blob').map((e) => e.oid);
    const cacheDir = path.join(tmp, 'cache');
    await readStateRepo({ repo: bare, env: 'main', cacheDir });
    const blobs: number[] = [];
    const reads: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      blobs.push(await timeAsync(() => readBlobs(work, oids)));
      reads.push(await timeAsync(() => readStateRepo({ repo: bare, env: 'main', cacheDir })));
    }
    return { readBlobs: median(blobs), cachedRead: median(reads) };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

interface FleetRow {
  hosts: number;
  services: number;
  deployFirst: number;
  deployNoop: number;
  deployChange: number;
  applyNoop: number;
  applyChange: number;
  connect: number;
  open: number;
  firstFile: number;
  fileRequest: number;
  sshPing: number;
  localPing: number;
  /** Load average (1 min) when the section started and when it ended: the machine is shared. */
  loadBefore: number;
  loadAfter: number;
}

/**
 * Issue 11: `berth deploy` to 3 hosts x 20 services over SSH through a bastion (each host a
 * private engine behind its own sshd, test/world/ssh-host.ts), no-op and one change, against the
 * same work done host by host with `apply` on each engine's socket; and the SSH overhead per host.
 */
async function benchFleet(): Promise<FleetRow> {
  const loadBefore = os.loadavg()[0] ?? 0;
  const N = 20;
  const HOSTS = [
    { name: 'h1', address: '127.0.0.2' },
    { name: 'h2', address: '127.0.0.3' },
    { name: 'h3', address: '127.0.0.4' },
  ];
  const work = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-fleet-'));
  const [world, e2, e3] = await Promise.all([startWorld(), startEngine(), startEngine()]);
  const sockets = [world.dockerHost, e2.dockerHost, e3.dockerHost];
  const key = clientKey(work);
  const port = await commonFreePort([...HOSTS.map((h) => h.address), '127.0.0.6']);
  const user = os.userInfo().username;
  const [hosts, bastion] = await Promise.all([
    Promise.all(
      HOSTS.map((h, i) =>
        startSshHost({ ...h, port, authorizedKeys: [key.publicKey], engineSocket: sockets[i]! }),
      ),
    ),
    startBastion({ address: '127.0.0.6', port, authorizedKeys: [key.publicKey] }),
  ]);
  writeKnownHosts(`${work}/known_hosts`, [...hosts, bastion]);
  const ssh = {
    user,
    port,
    identityFile: key.identityFile,
    knownHosts: `${work}/known_hosts`,
    bastion: `${user}@127.0.0.6:${port}`,
  };
  const svc = (i: number, v = 'a') =>
    `image: ${world.images.web1}\npull: missing\nenv_vars:\n  PORT: '${31000 + i}'\n  BIND: '{{ host.address }}'\n  V: ${v}\n`;
  const files: Record<string, string> = {
    'berth.yaml': 'env_dir: /run/berth/env\n',
    'inventory.yaml': [
      'hosts:',
      ...HOSTS.map((h) => `  ${h.name}: { address: ${h.address} }`),
      `ssh: { user: ${user}, port: ${port}, identity_file: ${ssh.identityFile}, known_hosts: ${ssh.knownHosts}, bastion: '${ssh.bastion}' }`,
      '',
    ].join('\n'),
  };
  for (let i = 0; i < N; i++) files[`services/svc${String(i).padStart(3, '0')}.yaml`] = svc(i);
  const repo = createRepo(files);
  const common = [
    '--repo',
    repo.dir,
    '--env',
    'main',
    '--cache-dir',
    `${work}/cache`,
    '--store',
    `${work}/berth.db`,
  ];
  const deploy = () => time(['deploy', ...common], {});
  // The same hosts as `apply` sees them: the engine's own socket, the host's env folder.
  const applyAll = () =>
    HOSTS.reduce(
      (sum, h, i) =>
        sum +
        time(['apply', ...common, '--host', h.name, '--env-dir', `${hosts[i]!.runDir}/berth/env`], {
          DOCKER_HOST: sockets[i]!,
        }),
      0,
    );
  try {
    const deployFirst = deploy();
    const deployNoop = median(Array.from({ length: RUNS }, deploy));
    const applyNoop = median(Array.from({ length: RUNS }, applyAll));
    const deployChange: number[] = [];
    const applyChange: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      repo.commit({ 'services/svc000.yaml': svc(0, `d${r}`) });
      deployChange.push(deploy());
      repo.commit({ 'services/svc000.yaml': svc(0, `a${r}`) });
      applyChange.push(applyAll());
    }
    // One host's connection, step by step, in this process.
    const steps = {
      connect: [] as number[],
      open: [] as number[],
      firstFile: [] as number[],
      file: [] as number[],
      sshPing: [] as number[],
      localPing: [] as number[],
    };
    const local = dockerEngine({ host: sockets[0]! });
    for (let r = 0; r < RUNS; r++) {
      const endpoint = { name: 'h1', address: '127.0.0.2', settings: ssh };
      let conn!: Awaited<ReturnType<typeof connectSsh>>;
      steps.connect.push(await timeAsync(async () => (conn = await connectSsh(endpoint))));
      try {
        let host!: Awaited<ReturnType<typeof openSshHost>>;
        const target = { name: 'h1', address: '127.0.0.2', ssh, dockerSocket: '/var/run/docker.sock' };
        steps.open.push(await timeAsync(async () => (host = await openSshHost(target, conn))));
        steps.firstFile.push(await timeAsync(() => host.files.list('/run/berth/env', 100)));
        steps.file.push(
          median(
            await Promise.all(
              [0, 1, 2].map(() => timeAsync(() => host.files.readMany('/run/berth/env', ['svc000']))),
            ),
          ),
        );
        steps.sshPing.push(await timeAsync(() => host.engine.ping()));
        steps.localPing.push(await timeAsync(() => local.ping()));
      } finally {
        await conn.close();
      }
    }
    return {
      hosts: HOSTS.length,
      services: N,
      deployFirst,
      deployNoop,
      deployChange: median(deployChange),
      applyNoop,
      applyChange: median(applyChange),
      connect: median(steps.connect),
      open: median(steps.open),
      firstFile: median(steps.firstFile),
      fileRequest: median(steps.file),
      sshPing: median(steps.sshPing),
      localPing: median(steps.localPing),
      loadBefore,
      loadAfter: os.loadavg()[0] ?? 0,
    };
  } finally {
    await Promise.all([...hosts.map((h) => h.stop()), bastion.stop()]);
    await Promise.all([world.stop(), e2.stop(), e3.stop()]);
    repo.remove();
    rmSync(work, { recursive: true, force: true });
  }
}

interface RecordRow {
  store: string;
  /** Applies and actions written per second through the Store API, one writer as an apply writes. */
  rowsPerSecond: number;
  /** Median time of `deploys` (the default `berth history`) and of `history --steps`, 100,000 actions. */
  deploysMs: number;
  stepsMs: number;
  filteredMs: number;
}

/**
 * Issue 12: the record itself, SQLite against a real PostgreSQL on loopback. Rows written per
 * second by one writer doing what an apply does (begin and finish an apply and its actions),
 * then `berth history` queries over 100,000 actions (20,000 applies in deploys of 3 hosts).
 */
async function benchRecord(): Promise<RecordRow[]> {
  const pg = await startPostgres();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-rec-'));
  try {
    const rows: RecordRow[] = [];
    for (const kind of ['sqlite', 'postgres'] as const) {
      const fresh = async (name: string) =>
        kind === 'sqlite'
          ? openSqliteStore(path.join(tmp, `${name}.db`))
          : openPostgresStore(await pg.createDatabase(name));
      // Writes.
      const w = await fresh('writes');
      const applies = 100;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < applies; i++) {
        const at = new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString();
        const id = await w.beginApply({
          host: 'h1',
          ref: 'staging',
          repo: 'r',
          startedAt: at,
          env: 'staging',
        });
        for (const action of ['pull', 'lease', 'drain', 'recreate', 'health', 'undrain']) {
          const a = await w.beginAction(id, { service: 'web', action, cause: 'bench', startedAt: at });
          await w.finishAction(a, { result: 'succeeded', finishedAt: at });
        }
        await w.finishApply(id, { result: 'succeeded', finishedAt: at });
      }
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      await w.close();
      // Reads over 100,000 actions.
      const r =
        kind === 'sqlite'
          ? await sqliteWithHistory(path.join(tmp, 'reads.db'))
          : await postgresWithHistory(await pg.createDatabase('reads'));
      const timeQuery = async (q: () => Promise<unknown>) => {
        const out: number[] = [];
        for (let i = 0; i < RUNS; i++) out.push(await timeAsync(q));
        return median(out);
      };
      rows.push({
        store: kind === 'sqlite' ? 'SQLite' : 'PostgreSQL',
        rowsPerSecond: (applies * 7) / seconds,
        deploysMs: await timeQuery(() => r.deploys({ limit: 50 })),
        stepsMs: await timeQuery(() => r.history({ limit: 50 })),
        filteredMs: await timeQuery(() =>
          r.deploys({ host: 'h2', result: 'failed', service: 'svc7', limit: 50 }),
        ),
      });
      await r.close();
    }
    return rows;
  } finally {
    await pg.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

interface GitopsRow {
  /** One set-image against a warm cache, whole process: file:// and ssh:// (loopback sshd). */
  single: number;
  singleSsh: number;
  /** 20 set-image runs started at once for 20 services on one runner (shared cache), wall time until all landed. */
  race: number;
  raceSsh: number;
  /** CPU time (user + sys) of one set-image, its git processes included: what a busy machine cannot inflate. */
  cpu: number;
  cpuSsh: number;
  /** The 1-minute load average when the measurement started. */
  load: number;
}

/** CPU time (user + sys, ms) of this process's finished children and theirs, from /proc. */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command name: field 16 (cutime) and 17 (cstime) of proc(5) are at 13 and 14 here.
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / 100;
}

/** Start `runs` berth processes at once and wait for all; wall time. Every one must exit 0. */
async function timeTogether(runs: string[][], env: Record<string, string>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await Promise.all(
    runs.map(
      (args) =>
        new Promise<void>((resolve, reject) => {
          const child = spawn(process.execPath, [MAIN, ...args], {
            env: { ...process.env, ...env },
            stdio: ['ignore', 'ignore', 'pipe'],
          });
          let err = '';
          child.stderr.on('data', (d: Buffer) => (err += d.toString()));
          child.on('error', reject);
          child.on('close', (code) =>
            code === 0 ? resolve() : reject(new Error(`berth ${args.join(' ')} exited ${code}: ${err}`)),
          );
        }),
    ),
  );
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** The CI side (issue 9): one set-image with a warm cache, and 20 at once, over file:// and ssh://. */
async function benchGitops(): Promise<GitopsRow> {
  const load = os.loadavg()[0] ?? 0;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-gitops-'));
  const sshd = await startSshd();
  try {
    const work = path.join(tmp, 'work');
    mkdirSync(path.join(work, 'services'), { recursive: true });
    gitIn(tmp, 'init', '-q', '-b', 'staging', work);
    const services = Array.from({ length: 20 }, (_, i) => `svc-${String(i).padStart(2, '0')}`);
    for (const s of services) {
      writeFileSync(
        path.join(work, `services/${s}.yaml`),
        `# ${s}\nimage: reg/team/${s}:1   # CI\nbuildNumber: '1'\n`,
      );
    }
    gitIn(work, 'add', '-A');
    gitIn(work, 'commit', '-q', '-m', 'services');
    const transports = [
      {
        bare: path.join(tmp, 'file.git'),
        url: (b: string) => `file://${b}`,
        env: {} as Record<string, string>,
      },
      { bare: path.join(tmp, 'ssh.git'), url: (b: string) => sshd.url(b), env: sshd.gitEnv() },
    ];
    const out: number[] = [];
    const cpu: number[] = [];
    for (const t of transports) {
      gitIn(tmp, 'clone', '-q', '--bare', work, t.bare);
      const cache = path.join(tmp, `cache-${path.basename(t.bare)}`);
      const args = (s: string, tag: string, build: number) => [
        'set-image',
        s,
        '--repo',
        t.url(t.bare),
        '--env',
        'staging',
        '--cache-dir',
        cache,
        '--image',
        `reg/team/${s}:${tag}`,
        '--build',
        String(build),
      ];
      time(args('svc-00', 'warm', 2), t.env);
      const singles: number[] = [];
      const cpus: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        const before = childrenCpuMs();
        singles.push(time(args('svc-00', `r${r}`, 3 + r), t.env));
        cpus.push(childrenCpuMs() - before);
      }
      out.push(median(singles));
      cpu.push(median(cpus));
      out.push(
        await timeTogether(
          services.map((s) => args(s, 'race', 100)),
          t.env,
        ),
      );
    }
    return {
      single: out[0]!,
      race: out[1]!,
      singleSsh: out[2]!,
      raceSsh: out[3]!,
      cpu: cpu[0]!,
      cpuSsh: cpu[1]!,
      load,
    };
  } finally {
    await sshd.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

const HISTORY_APPLIES = 20_000;
const HISTORY_ACTIONS = ['pull', 'lease', 'drain', 'recreate', 'health'];

/** A PostgreSQL record holding 20,000 applies (deploys of 3 hosts, one in 50 failed) of 5 actions each. */
async function postgresWithHistory(url: string): Promise<Store> {
  const store = await openPostgresStore(url);
  await store.withClient('bench', async (c) => {
    await c.query(`INSERT INTO berth.applies (deploy_id, env, command, host, state_commit, ref, repo, started_at, finished_at, result)
      SELECT 'd' || (g / 3), 'staging', 'berth deploy', 'h' || (g % 3), md5(g::text), 'staging', 'repo',
        timestamptz '2026-01-01' + g * interval '1 minute', timestamptz '2026-01-01' + g * interval '1 minute' + interval '5 s',
        CASE WHEN g % 50 = 0 THEN 'failed' ELSE 'succeeded' END
      FROM generate_series(1, ${HISTORY_APPLIES}) g`);
    await c.query(`INSERT INTO berth.actions (apply_id, service, action, cause, host, state_commit, git_commit, result,
        started_at, finished_at, duration_ms)
      SELECT p.id, 'svc' || (p.id % 20), (ARRAY['${HISTORY_ACTIONS.join("','")}'])[k], 'bench', p.host, p.state_commit,
        substr(md5(p.id::text || k::text), 1, 10), 'succeeded', p.started_at + k * interval '1 s',
        p.started_at + k * interval '1 s', 1000
      FROM berth.applies p, generate_series(1, ${HISTORY_ACTIONS.length}) k`);
    await c.query('ANALYZE berth.applies');
    await c.query('ANALYZE berth.actions');
  });
  return store;
}

/** The same history in a SQLite record. */
async function sqliteWithHistory(file: string): Promise<Store> {
  await openSqliteStore(file).close();
  const db = new Database(file);
  const apply =
    db.prepare(`INSERT INTO applies (deploy_id, env, command, host, state_commit, ref, repo, started_at, finished_at, result)
    VALUES (?, 'staging', 'berth deploy', ?, ?, 'staging', 'repo', ?, ?, ?) RETURNING id`);
  const action =
    db.prepare(`INSERT INTO actions (apply_id, service, action, cause, host, state_commit, git_commit, result,
    started_at, finished_at, duration_ms) VALUES (?, ?, ?, 'bench', ?, ?, ?, 'succeeded', ?, ?, 1000)`);
  db.transaction(() => {
    for (let g = 1; g <= HISTORY_APPLIES; g++) {
      const at = new Date(Date.UTC(2026, 0, 1) + g * 60_000).toISOString();
      const commit = createHash('md5').update(String(g)).digest('hex');
      const host = `h${g % 3}`;
      const result = g % 50 === 0 ? 'failed' : 'succeeded';
      const { id } = apply.get(`d${Math.floor(g / 3)}`, host, commit, at, at, result) as { id: number };
      for (const a of HISTORY_ACTIONS)
        action.run(id, `svc${id % 20}`, a, host, commit, commit.slice(0, 10), at, at);
    }
  })();
  db.exec('ANALYZE');
  db.close();
  return openSqliteStore(file);
}

interface OverheadRow {
  sqlite: number;
  postgres: number;
  /** In-process: open the record, write one apply of four steps, close it. */
  recordSqlite: number;
  recordPostgres: number;
}

/** What the record costs one apply, without the rest of it: open, one apply of four steps, close. */
async function recordOnce(location: string, spoolDir: string): Promise<number> {
  return timeAsync(async () => {
    const store = await openStore(location, { spoolDir });
    const at = new Date().toISOString();
    const id = await store.beginApply({
      host: 'h1',
      ref: 'main',
      repo: 'r',
      startedAt: at,
      command: 'bench',
    });
    for (const action of ['pull', 'write-env', 'recreate', 'health']) {
      const a = await store.beginAction(id, { service: 'svc0', action, cause: 'bench', startedAt: at });
      await store.finishAction(a, { result: 'succeeded', finishedAt: at });
    }
    await store.finishApply(id, { result: 'succeeded', finishedAt: at });
    await store.close();
  });
}

/** A one-change apply (10 services, one env change) with its record in SQLite, then in PostgreSQL. */
async function benchRecordOverhead(): Promise<OverheadRow> {
  const [world, pg] = await Promise.all([startWorld(), startPostgres()]);
  const work = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-ovh-'));
  const svc = (i: number, bar = 'baz') =>
    `image: ${world.images.web1}\npull: missing\nenv_vars:\n  PORT: '${31000 + i}'\n  BAR: ${bar}\n`;
  const files: Record<string, string> = { 'berth.yaml': `env_dir: ${work}/env\n` };
  for (let i = 0; i < 10; i++) files[`services/svc${i}.yaml`] = svc(i);
  const repo = createRepo(files);
  const flags = ['--repo', repo.dir, '--env', 'main', '--cache-dir', `${work}/cache`];
  const env = { DOCKER_HOST: world.dockerHost, BERTH_SPOOL_DIR: `${work}/spool` };
  try {
    const out: Record<string, number[]> = { sqlite: [], postgres: [] };
    const stores = { sqlite: `${work}/berth.db`, postgres: await pg.createDatabase('overhead') };
    time(['apply', ...flags, '--store', stores.sqlite], env);
    for (let r = 0; r < RUNS; r++) {
      for (const kind of ['sqlite', 'postgres'] as const) {
        repo.commit({ 'services/svc0.yaml': svc(0, `${kind}${r}`) });
        out[kind]!.push(time(['apply', ...flags, '--store', stores[kind]], env));
      }
    }
    const own: Record<string, number[]> = { sqlite: [], postgres: [] };
    for (let r = 0; r < RUNS; r++) {
      for (const kind of ['sqlite', 'postgres'] as const)
        own[kind]!.push(await recordOnce(stores[kind], `${work}/spool`));
    }
    return {
      sqlite: median(out.sqlite!),
      postgres: median(out.postgres!),
      recordSqlite: median(own.sqlite!),
      recordPostgres: median(own.postgres!),
    };
  } finally {
    await Promise.all([world.stop(), pg.stop()]);
    repo.remove();
    rmSync(work, { recursive: true, force: true });
  }
}

function fleetSection(f: FleetRow): string[] {
  return [
    '## A fleet over SSH (issue 11)',
    '',
    `${f.hosts} hosts x ${f.services} services, each host a private engine behind its own sshd on a`,
    'loopback address, every connection through a bastion (another sshd). `deploy` is one process for',
    'the whole fleet (one SSH connection per host, hosts reached, planned and pulled for side by side,',
    "then converged one after the other); `apply x 3` is the same work host by host on each engine's",
    `own socket, no SSH, the three processes' times added. Medians of ${RUNS} runs except the first deploy.`,
    '',
    `This machine is shared with other work (developers' tests and CI on 2 cores): the load average`,
    `(1 min) was ${f.loadBefore.toFixed(1)} when this section started and ${f.loadAfter.toFixed(1)} when it ended, so read every figure`,
    'as an upper bound; the ratios between columns are steadier than the times.',
    '',
    '| first deploy | deploy: no-op | apply x 3: no-op | deploy: one change per host | apply x 3: one change per host |',
    '| ---: | ---: | ---: | ---: | ---: |',
    `| ${fmt(f.deployFirst)} | ${fmt(f.deployNoop)} | ${fmt(f.applyNoop)} | ${fmt(f.deployChange)} | ${fmt(f.applyChange)} |`,
    '',
    'SSH overhead for one host, in one process: the master connection through the bastion (two',
    'handshakes), opening the host (forwarding the engine socket, one ping), the first file request',
    "(it starts the shell on the host, so it carries the login shell's start-up files, which on this",
    "machine's root account run pyenv: seconds), then a file request and an engine ping through it,",
    "against a ping on the engine's own socket.",
    '',
    '| connect via bastion | open host | first file request (shell start) | file request | engine ping over SSH | engine ping, local socket |',
    '| ---: | ---: | ---: | ---: | ---: | ---: |',
    `| ${fmt(f.connect)} | ${fmt(f.open)} | ${fmt(f.firstFile)} | ${fmt(f.fileRequest)} | ${fmt(f.sshPing)} | ${fmt(f.localPing)} |`,
    '',
  ];
}

interface StartupRow {
  n: number;
  /** Bare `node -e 0`: median time and peak RSS (bytes) of the same run. */
  bare: { ms: number; rss: number };
  /** Per command: median of (command − bare node) over paired runs, and the median peak RSS. */
  extra: Record<StartupCommand, { ms: number; rss: number }>;
  /** The engine's own list of every container and inspect of each, through the bare API. */
  floorListInspect: number;
}

type StartupCommand = 'version' | 'validate' | 'render' | 'plan' | 'apply';
const STARTUP_COMMANDS: StartupCommand[] = ['version', 'validate', 'render', 'plan', 'apply'];
const STARTUP_RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? Math.max(RUNS, 9));

/**
 * How much of the machine's CPU other processes use while `work` runs: all busy time from
 * /proc/stat less this process's and its waited-for children's (/proc/self/stat), as a share
 * of every core's time. The engine's own work for the bench counts as other, which is small.
 */
async function othersShare<T>(work: () => Promise<T>): Promise<{ result: T; others: number }> {
  const machine = () => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = f as [number, ...number[]];
    const busy = user + nice! + system! + irq! + softirq! + (steal ?? 0);
    return { busy, total: busy + idle! + iowait! };
  };
  const mine = () => {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const f = stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    // utime, stime, cutime, cstime: fields 14-17, i.e. 11-14 after the command name.
    return f[11]! + f[12]! + f[13]! + f[14]!;
  };
  const m0 = machine();
  const me0 = mine();
  const result = await work();
  const m1 = machine();
  const me1 = mine();
  const total = m1.total - m0.total;
  const others = total > 0 ? Math.max(0, m1.busy - m0.busy - (me1 - me0)) / total : 0;
  return { result, others };
}

/**
 * One process under GNU time: wall time from here, peak RSS (bytes) from time's report, which
 * it writes to a file of its own so the command's output stays apart.
 */
function timeWithRss(
  argv: string[],
  env: Record<string, string>,
  okCodes = [0],
): { ms: number; rss: number } {
  const report = path.join(os.tmpdir(), `berth-bench-rss-${process.pid}`);
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', '-o', report, ...argv], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error) throw new Error(`/usr/bin/time: ${r.error.message} (install Debian's time package)`);
  if (!okCodes.includes(r.status ?? -1)) {
    throw new Error(`${argv.join(' ')} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  }
  const kib = Number(readFileSync(report, 'utf8').trim().split('\n').pop());
  rmSync(report, { force: true });
  return { ms, rss: kib * 1024 };
}

/**
 * Issue 16: what each command costs over node itself, for n services already running. Every
 * round runs bare `node -e 0` and then each command once, so a busy machine slows both sides
 * of each difference alike; the figure is the median of the per-round differences.
 */
async function benchStartup(n: number): Promise<StartupRow> {
  const world = await startWorld();
  const work = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-startup-'));
  const docker = new Docker({ socketPath: world.dockerHost.replace('unix://', '') });
  const env = { DOCKER_HOST: world.dockerHost };
  const files: Record<string, string> = { 'berth.yaml': `env_dir: ${work}/env\n` };
  for (let i = 0; i < n; i++)
    files[`services/svc${String(i).padStart(3, '0')}.yaml`] =
      `image: ${world.images.web1}\nenv_vars:\n  PORT: '${31000 + i}'\n  BAR: baz\n`;
  const repo = createRepo(files);
  const flags = ['--repo', repo.dir, '--env', 'main', '--cache-dir', `${work}/cache`];
  const store = ['--store', `${work}/berth.db`];
  const args: Record<StartupCommand, string[]> = {
    version: ['--version'],
    validate: ['validate', ...flags],
    render: ['render', 'svc000', ...flags],
    plan: ['plan', ...flags, ...store],
    apply: ['apply', ...flags, ...store],
  };
  try {
    time(['apply', ...flags, ...store], env);
    const bare: Array<{ ms: number; rss: number }> = [];
    const diffs = Object.fromEntries(STARTUP_COMMANDS.map((c) => [c, [] as number[]])) as Record<
      StartupCommand,
      number[]
    >;
    const rss = Object.fromEntries(STARTUP_COMMANDS.map((c) => [c, [] as number[]])) as Record<
      StartupCommand,
      number[]
    >;
    for (let r = 0; r < STARTUP_RUNS; r++) {
      const b = timeWithRss([process.execPath, '-e', '0'], env);
      bare.push(b);
      for (const c of STARTUP_COMMANDS) {
        const m = timeWithRss([process.execPath, MAIN, ...args[c]], env);
        diffs[c].push(m.ms - b.ms);
        rss[c].push(m.rss);
      }
    }
    const floorListInspect = median(
      await Promise.all(
        Array.from({ length: RUNS }, () =>
          timeAsync(async () => {
            const list = await docker.listContainers({ all: true });
            await Promise.all(list.map((c) => docker.getContainer(c.Id).inspect()));
          }),
        ),
      ),
    );
    return {
      n,
      bare: { ms: median(bare.map((b) => b.ms)), rss: median(bare.map((b) => b.rss)) },
      extra: Object.fromEntries(
        STARTUP_COMMANDS.map((c) => [c, { ms: median(diffs[c]), rss: median(rss[c]) }]),
      ) as StartupRow['extra'],
      floorListInspect,
    };
  } finally {
    await world.stop();
    repo.remove();
    rmSync(work, { recursive: true, force: true });
  }
}

/** The start-up section of docs/benchmarks.md, with each target of issue 16 checked. */
function startupLines(rows: StartupRow[], others: number): string[] {
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  const plus = (ms: number) => `+${Math.round(ms)} ms`;
  const at = (n: number) => rows.find((r) => r.n === n);
  const busy = others > 0.2;
  const checks: string[] = [];
  const check = (what: string, ok: boolean | undefined, detail: string) => {
    if (ok !== undefined) checks.push(`- ${what}: ${detail}: ${ok ? 'met' : '**missed**'}.`);
  };
  const version = median(rows.map((r) => r.extra.version.ms));
  check('`berth --version` at most 60 ms over bare node', version <= 60, plus(version));
  const v50 = at(50)?.extra.validate.ms;
  if (v50 !== undefined)
    check('`validate` of 50 services at most 250 ms over bare node', v50 <= 250, plus(v50));
  const r100 = at(100);
  if (r100) {
    const budget = 350 + r100.floorListInspect;
    check(
      "no-op `plan` of 100 services at most 350 ms over bare node plus the engine's list and inspect",
      r100.extra.plan.ms <= budget,
      `${plus(r100.extra.plan.ms)} against ${Math.round(budget)} ms`,
    );
    for (const c of ['plan', 'apply'] as const)
      check(
        `peak memory of a no-op \`${c}\` of 100 services at most 80 MiB`,
        r100.extra[c].rss <= 80 * 2 ** 20,
        mib(r100.extra[c].rss),
      );
  }
  return [
    '## Start-up and memory (issue 16)',
    '',
    'Each command as a whole process against n services already running, beside bare `node -e 0`',
    `in the same run: every round runs bare node and then each command once; time is the median of`,
    `the ${STARTUP_RUNS} per-round differences, memory the median peak RSS (GNU time). \`render\` prints one`,
    'service; `plan` and `apply` find nothing to do. berth runs from dist/ as `npm run build` leaves',
    'it: its own code and the libraries every repo read needs bundled into a few files (scripts/build.ts).',
    `Measured ${new Date().toISOString().slice(0, 10)}.`,
    '',
    `Other processes used ${Math.round(others * 100)}% of the machine's CPU time meanwhile (the bench and its engine left out).` +
      (busy ? ' **The machine was busy**: these times are higher than on a quiet machine.' : ''),
    '',
    '| services | bare node | `--version` | `validate` | `render` | no-op `plan` | no-op `apply` | engine: list + inspect all |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.n} | ${fmt(r.bare.ms)} | ${STARTUP_COMMANDS.map((c) => plus(r.extra[c].ms)).join(' | ')} | ${fmt(r.floorListInspect)} |`,
    ),
    '',
    'Peak memory (RSS) of the whole process:',
    '',
    '| services | bare node | `--version` | `validate` | `render` | no-op `plan` | no-op `apply` |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.n} | ${mib(r.bare.rss)} | ${STARTUP_COMMANDS.map((c) => mib(r.extra[c].rss)).join(' | ')} |`,
    ),
    '',
    'Targets (issue 16, benchmark targets on a quiet 2-core machine):',
    '',
    ...checks,
    '',
  ];
}

interface AgentRow {
  /** Resident memory of the idle agent: median and largest of one sample a second. */
  rssMedian: number;
  rssMax: number;
  /** CPU time (user + sys) of the idle agent over the idle minute. */
  idleCpuMs: number;
  idleMs: number;
  interval: number;
  /** Push to running through a webhook, the agent's own reconcile time, the engine's floor. */
  webhook: number[];
  webhookReconcile: number[];
  floorRecreate: number;
  /** Push to running by polling alone. */
  polling: number[];
  pollInterval: number;
  /** The git server's load of the idle agent, per hour, and of one fetch of a new commit. */
  gitPerHour: { requests: number; bytes: number };
  gitPerChange: { requests: number; bytes: number };
  load: number;
}

/** RSS (bytes) and CPU time (ms, user + sys) of a process, from /proc. */
function procUsage(pid: number): { rss: number; cpuMs: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  // Fields 14 and 15 of /proc/PID/stat (after the command in parentheses): utime, stime in ticks.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(rest[11]) + Number(rest[12]);
  return { rss, cpuMs: (ticks * 1000) / 100 };
}

/** Wait until the agent's status shows `commit` applied; the time it took from `t0` (ms). */
async function appliedAfter(
  agent: AgentProcess,
  commit: string,
  t0: bigint,
  limitMs = 120_000,
): Promise<number> {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    const s = await agent.status();
    if (s.applied.commit === commit) return Number(process.hrtime.bigint() - t0) / 1e6;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`the agent did not apply ${commit} within ${limitMs} ms`);
}

/**
 * `berth agent` as it runs on a host: 5 services, the state repo served over HTTP by git's own
 * server (test/support/git-http.ts), which counts what the agent asks of it.
 */
async function benchAgent(): Promise<AgentRow> {
  const load = os.loadavg()[0] ?? 0;
  const world = await startWorld();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-agent-'));
  const svc = (i: number, v: string) =>
    `image: ${world.images.web1}\npull: missing\nenv_vars:\n  PORT: '${25101 + i}'\n  BIND: 127.0.0.64\n  V: '${v}'\n`;
  const files: Record<string, string> = { 'berth.yaml': `env_dir: ${tmp}/env\n` };
  for (let i = 0; i < 5; i++) files[`services/s${i}.yaml`] = svc(i, '0');
  const remote = createRemote(files);
  const git = await startGitHttp(path.dirname(remote.bare));
  const url = `${git.url}/${path.basename(remote.bare)}`;
  const secret = 'bench-secret';
  const interval = 30_000;
  const pollInterval = 10_000;
  const start = (ms: number) =>
    startAgentProcess(
      [
        '--repo',
        url,
        '--env',
        'main',
        '--store',
        `${tmp}/berth.db`,
        '--cache-dir',
        `${tmp}/cache`,
        '--interval',
        `${ms / 1000}s`,
      ],
      { DOCKER_HOST: world.dockerHost, BERTH_WEBHOOK_SECRET: secret },
    );
  let n = 0;
  const change = () => remote.push({ 'services/s0.yaml': svc(0, String(++n)) });
  const docker = new Docker({ socketPath: world.dockerHost.replace('unix://', '') });
  try {
    let agent = await start(interval);
    const out = {} as AgentRow;
    try {
      await appliedAfter(agent, remote.git('rev-parse', 'HEAD'), process.hrtime.bigint());
      // Idle: one minute with nothing to do but look at the remote and the host.
      await new Promise((r) => setTimeout(r, 5_000));
      git.resetCounts();
      const idleMs = 60_000;
      const first = procUsage(agent.pid);
      const rss: number[] = [];
      const t0 = Date.now();
      while (Date.now() - t0 < idleMs) {
        rss.push(procUsage(agent.pid).rss);
        await new Promise((r) => setTimeout(r, 1_000));
      }
      const last = procUsage(agent.pid);
      const idleGit = git.counts();
      const hours = (Date.now() - t0) / 3_600_000;
      out.rssMedian = median(rss);
      out.rssMax = Math.max(...rss);
      out.idleCpuMs = last.cpuMs - first.cpuMs;
      out.idleMs = Date.now() - t0;
      out.gitPerHour = {
        requests: Math.round(idleGit.requests / hours),
        bytes: Math.round((idleGit.bytesIn + idleGit.bytesOut) / hours),
      };
      // Through a webhook: push, then the signed POST a platform sends; until the status shows it.
      out.webhook = [];
      out.webhookReconcile = [];
      let perChange = { requests: 0, bytes: 0 };
      for (let r = 0; r < RUNS; r++) {
        const before = git.counts();
        const commit = change();
        const t = process.hrtime.bigint();
        const body = JSON.stringify({ ref: 'refs/heads/main', after: commit });
        const res = await agent.post('/hooks/github', body, {
          'content-type': 'application/json',
          'x-github-event': 'push',
          'x-hub-signature-256': signBody(body, secret),
        });
        if (res.status !== 202) throw new Error(`webhook answered ${res.status}: ${res.body}`);
        out.webhook.push(await appliedAfter(agent, commit, t));
        out.webhookReconcile.push((await agent.status()).lastReconcile?.durationMs ?? NaN);
        const after = git.counts();
        perChange = {
          requests: after.requests - before.requests,
          bytes: after.bytesIn + after.bytesOut - before.bytesIn - before.bytesOut,
        };
      }
      out.gitPerChange = perChange;
    } finally {
      await agent.stop();
    }
    // Polling alone: a shorter interval so that a few runs fit; half an interval on average.
    agent = await start(pollInterval);
    try {
      await appliedAfter(agent, remote.git('rev-parse', 'HEAD'), process.hrtime.bigint());
      out.polling = [];
      for (let r = 0; r < Math.min(RUNS, 3); r++) {
        // A push lands anywhere in the interval, as it would from CI.
        await new Promise((res) => setTimeout(res, Math.random() * pollInterval));
        const commit = change();
        out.polling.push(await appliedAfter(agent, commit, process.hrtime.bigint()));
      }
    } finally {
      await agent.stop();
    }
    out.floorRecreate = median(await bareRecreates(docker, 's1'));
    return { ...out, interval, pollInterval, load };
  } finally {
    await git.stop();
    await world.stop();
    remote.remove();
    rmSync(tmp, { recursive: true, force: true });
  }
}

const MIB = 2 ** 20;

/** The agent's section of docs/benchmarks.md (issue 10), each target checked. */
function agentLines(a: AgentRow): string[] {
  const cpuShare = (a.idleCpuMs / a.idleMs) * 100;
  const webhook = median(a.webhook);
  const mark = (ok: boolean) => (ok ? 'met' : 'NOT met');
  return [
    '## The agent (issue 10)',
    '',
    '`berth agent` following a branch with 5 services (built `dist/`, a real engine, the state repo',
    "served over HTTP by git's own `git http-backend` on loopback, which counts what it is asked).",
    `Load average (1 min) when this part started: ${a.load.toFixed(1)}.`,
    '',
    `Idle, over ${Math.round(a.idleMs / 1000)} s with a ${a.interval / 1000} s interval (one sample of /proc a second):`,
    '',
    '| resident memory (median) | resident memory (largest) | CPU time (user + sys) | CPU share |',
    '| ---: | ---: | ---: | ---: |',
    `| ${(a.rssMedian / MIB).toFixed(1)} MiB | ${(a.rssMax / MIB).toFixed(1)} MiB | ${fmt(a.idleCpuMs)} | ${cpuShare.toFixed(2)} % |`,
    '',
    `Target: idle RSS under 80 MiB: ${mark(a.rssMax < 80 * MIB)}.`,
    '',
    'Most of it is code, not data: node alone takes about 41 MiB; of the modules the agent loads, the',
    'engine client is the largest (dockerode without its ssh:// and BuildKit parts, which berth never',
    'loads). zod, about 14 MiB as a package, is about 6 MiB in the bundle, which holds only the parts',
    'berth calls (scripts/build.ts). The figure is the largest sample of the minute; the median is',
    "beside it. The agent's own heap stays under 20 MiB; it runs V8 with `--optimize-for-size`, and",
    'ends each reconcile with a full garbage collection, so what the reconcile left is given back',
    'at once (without it the largest sample varied from 75 to 81 MiB over five runs).',
    '',
    'Push to running: from the end of `git push` until `/v1/status` shows the commit applied (the',
    'container replaced and running). Through a webhook: the push, then the signed GitHub-form POST.',
    `By polling alone: a ${a.pollInterval / 1000} s interval (30 s by default), each push at a random moment of it.`,
    '',
    '| via | runs | median | slowest | the reconcile itself (median) | engine: one bare recreate |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    `| webhook | ${a.webhook.length} | ${fmt(webhook)} | ${fmt(Math.max(...a.webhook))} | ${fmt(median(a.webhookReconcile))} | ${fmt(a.floorRecreate)} |`,
    `| polling (${a.pollInterval / 1000} s) | ${a.polling.length} | ${fmt(median(a.polling))} | ${fmt(Math.max(...a.polling))} | | |`,
    '',
    `Target: via webhook under 2 s plus the engine's own time (${fmt(2000 + a.floorRecreate)}): ${mark(webhook < 2000 + a.floorRecreate)}.`,
    '',
    "The git server's load: an idle agent asks for the branch's ref once an interval (`git ls-remote`:",
    'the ref advertisement only, no objects) and fetches only when it changed.',
    '',
    '| idle: requests per hour | idle: bytes per hour | one new commit: requests | one new commit: bytes |',
    '| ---: | ---: | ---: | ---: |',
    `| ${a.gitPerHour.requests} | ${Math.round(a.gitPerHour.bytes / 1024)} KiB | ${a.gitPerChange.requests} | ${Math.round(a.gitPerChange.bytes / 1024)} KiB |`,
    '',
  ];
}

/**
 * `BENCH_ONLY=agent`, `BENCH_ONLY=fleet` or `BENCH_ONLY=startup npm run bench`: measure one part again and write it in
 * place of its section of docs/benchmarks.md, the other sections keeping their figures: on a
 * shared machine the whole bench takes long.
 */
async function onlySection(heading: string, measure: () => Promise<string[]>): Promise<void> {
  process.stderr.write(`bench: ${heading}…\n`);
  const section = (await measure()).join('\n');
  const file = path.join(ROOT, 'docs/benchmarks.md');
  const doc = readFileSync(file, 'utf8');
  const at = doc.indexOf(`## ${heading}`);
  const next = at < 0 ? -1 : doc.indexOf('\n## ', at + 1);
  const updated =
    at < 0
      ? `${doc.replace(/\n*$/, '\n\n')}${section}`
      : `${doc.slice(0, at)}${section}${next < 0 ? '' : `\n${doc.slice(next + 1)}`}`;
  writeFileSync(file, updated);
  process.stdout.write(`${section}\n`);
}

async function benchStartupAll(): Promise<{ result: StartupRow[]; others: number }> {
  return othersShare(async () => {
    const rows: StartupRow[] = [];
    for (const n of SIZES) {
      process.stderr.write(`bench: start-up and memory, ${n} services…\n`);
      rows.push(await benchStartup(n));
    }
    return rows;
  });
}

async function main() {
  if (process.env.BENCH_ONLY === 'fleet')
    return onlySection('A fleet over SSH (issue 11)', async () => fleetSection(await benchFleet()));
  if (process.env.BENCH_ONLY === 'startup') {
    return onlySection('Start-up and memory (issue 16)', async () => {
      const startup = await benchStartupAll();
      return startupLines(startup.result, startup.others);
    });
  }
  if (process.env.BENCH_ONLY === 'agent')
    return onlySection('The agent (issue 10)', async () => agentLines(await benchAgent()));
  const rows: Row[] = [];
  process.stderr.write('bench: reading the repo…\n');
  const read = await benchRead();
  for (const n of SIZES) {
    process.stderr.write(`bench: ${n} services…\n`);
    rows.push(await benchSize(n));
  }
  process.stderr.write('bench: time out of rotation…\n');
  const rot = await benchRotation();
  process.stderr.write('bench: the record, SQLite and PostgreSQL…\n');
  const record = await benchRecord();
  const overhead = await benchRecordOverhead();
  const startup = await benchStartupAll();
  process.stderr.write('bench: set-image…\n');
  const ci = await benchGitops();
  process.stderr.write('bench: the agent…\n');
  const agent = await benchAgent();
  process.stderr.write('bench: a fleet over SSH…\n');
  const fleet = await benchFleet();
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  const lines = [
    '# Benchmarks',
    '',
    'Written by `npm run bench` (bench/run.ts). Every berth figure is a whole process, node start-up',
    'included, against a private Docker engine and a local registry on loopback; medians of',
    `${RUNS} runs except the first apply.`,
    '',
    `Machine: ${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}, Node ${process.version}.`,
    `Date: ${new Date().toISOString().slice(0, 10)}.`,
    '',
    '| services | first apply | no-op plan | no-op apply | one env change: whole apply | one env change: recreate step | engine: list + inspect all | engine: one recreate (bare API) | recreate step ÷ engine |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.n} | ${fmt(r.first)} | ${fmt(r.noopPlan)} | ${fmt(r.noopApply)} | ${fmt(r.oneChange)} | ${fmt(r.recreateStep)} | ${fmt(r.floorListInspect)} | ${fmt(r.floorRecreate)} | ${(r.recreateStep / r.floorRecreate).toFixed(2)}× |`,
    ),
    '',
    'How to read it: "whole apply" is the full process (node start-up, git fetch, reading 100 files,',
    'observing the engine, asking the registry, the change, the record). "recreate step" is berth\'s own',
    'time for the one recreate, from its record: the recreate step (stop, set the old container aside,',
    'create, start) plus the health step (without a healthcheck: running at two checks 50 ms apart).',
    'Removing the old container afterwards is not counted. The engine columns are the same work',
    'through the bare Engine API with nothing else: the floor.',
    '',
    'Targets (issue 2): a no-op `plan` of 100 services under 1 s for the whole process; a one-change',
    "`apply` within 1.5× of the engine's own time for that one recreate. For scale, the Ansible",
    'playbook berth replaces takes about 26 s for a no-op run of 50 services and about 30 s for a',
    'first deploy of 50 on this kind of machine.',
    '',
    '## Reading the state repo',
    '',
    `100 service files, in this process (no node start-up); medians of ${RUNS} runs. The tests check`,
    'the shape instead (one `git cat-file --batch` for every file; a handful of git processes for a',
    'cached read), so a busy machine cannot fail them.',
    '',
    '| read 100 blobs (one cat-file) | no-op read of a cached clone (fetch, resolve, list, read) |',
    '| ---: | ---: |',
    `| ${fmt(read.readBlobs)} | ${fmt(read.cachedRead)} |`,
    '',
    '## Time out of rotation (issue 4)',
    '',
    'One host behind real HAProxy, one `drain: true` service, an env change, an http health check',
    `every ${rot.interval} ms; from berth's record: drain start to undrain end. Medians of ${RUNS} runs.`,
    '',
    '| out of rotation | drain (no open sessions) | recreate incl. health wait | undrain | engine: bare recreate + one health interval |',
    '| ---: | ---: | ---: | ---: | ---: |',
    `| ${fmt(rot.outOfRotation)} | ${fmt(rot.drain)} | ${fmt(rot.recreate)} | ${fmt(rot.undrain)} | ${fmt(rot.floorRecreate + rot.interval)} |`,
    '',
    '## The record: SQLite and PostgreSQL (issue 12)',
    '',
    'PostgreSQL 15 on loopback (a private server, durability off as in the tests). Rows written: one',
    'writer doing what an apply does (begin and finish an apply and six actions, one statement each),',
    'so the figure is round trips, not bulk speed. Queries over 100,000 actions (20,000 applies in',
    `deploys of 3 hosts), in this process; medians of ${RUNS} runs. "filtered" is`,
    '`history --host h2 --result failed --service svc7`.',
    '',
    '| store | rows written per second | `history` (50 deploys with hosts and steps) | `history --steps` (50 steps) | filtered `history` |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...record.map(
      (r) =>
        `| ${r.store} | ${Math.round(r.rowsPerSecond)} | ${fmt(r.deploysMs)} | ${fmt(r.stepsMs)} | ${fmt(r.filteredMs)} |`,
    ),
    '',
    "The apply's overhead: a whole `berth apply` process with one env change among 10 services, its",
    'record in SQLite, then in PostgreSQL (alternating); and, in this process, what the record alone',
    `costs one apply: open it, write an apply of four steps, close it. Medians of ${RUNS} runs.`,
    '',
    '| whole apply, SQLite | whole apply, PostgreSQL | difference | the record alone, SQLite | the record alone, PostgreSQL |',
    '| ---: | ---: | ---: | ---: | ---: |',
    `| ${fmt(overhead.sqlite)} | ${fmt(overhead.postgres)} | ${fmt(overhead.postgres - overhead.sqlite)} | ${fmt(overhead.recordSqlite)} | ${fmt(overhead.recordPostgres)} |`,
    '',
    ...startupLines(startup.result, startup.others),
    '## The CI side: set-image (issue 9)',
    '',
    'A bare repo with 20 services on `staging`, reached over file:// and over ssh:// (a private',
    `sshd on loopback). One \`berth set-image\` with a warm cache, whole process (node start-up, fetch,`,
    `edit, commit, push), median of ${RUNS}; and 20 started at once for 20 services on one runner`,
    '(one cache folder: they take turns), wall time until all 20 landed. Target: one run under 1 s.',
    `Load average (1 min) when this part started: ${ci.load.toFixed(1)}; other work on the machine slows every figure.`,
    '',
    '| transport | one set-image, warm cache | its CPU time (user + sys: node and the git it runs) | 20 at once, all landed |',
    '| --- | ---: | ---: | ---: |',
    `| file:// | ${fmt(ci.single)} | ${fmt(ci.cpu)} | ${fmt(ci.race)} |`,
    `| ssh:// (loopback sshd) | ${fmt(ci.singleSsh)} | ${fmt(ci.cpuSsh)} | ${fmt(ci.raceSsh)} |`,
    '',
    ...agentLines(agent),
    ...fleetSection(fleet),
  ];
  writeFileSync(path.join(ROOT, 'docs/benchmarks.md'), lines.join('\n'));
  process.stdout.write(lines.join('\n'));
}

await main();
