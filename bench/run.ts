/**
 * `npm run bench`: how long berth takes for 10, 50 and 100 services against a real engine and
 * registry, beside the engine's own floor for the same work. Writes docs/benchmarks.md.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { startWorld } from '../test/world/index.js';
import { startHaproxy } from '../test/world/haproxy.js';
import { createRepo } from '../test/support/repo.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import { listTree, readBlobs } from '../src/adapters/git.js';
import { readStateRepo } from '../src/source/read.js';
import { gitIn } from '../test/support/git.js';
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
}

/**
 * Issue 11: `berth deploy` to 3 hosts x 20 services over SSH through a bastion (each host a
 * private engine behind its own sshd, test/world/ssh-host.ts), no-op and one change, against the
 * same work done host by host with `apply` on each engine's socket; and the SSH overhead per host.
 */
async function benchFleet(): Promise<FleetRow> {
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
    };
  } finally {
    await Promise.all([...hosts.map((h) => h.stop()), bastion.stop()]);
    await Promise.all([world.stop(), e2.stop(), e3.stop()]);
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

async function main() {
  const rows: Row[] = [];
  process.stderr.write('bench: reading the repo…\n');
  const read = await benchRead();
  for (const n of SIZES) {
    process.stderr.write(`bench: ${n} services…\n`);
    rows.push(await benchSize(n));
  }
  process.stderr.write('bench: time out of rotation…\n');
  const rot = await benchRotation();
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
    ...fleetSection(fleet),
  ];
  writeFileSync(path.join(ROOT, 'docs/benchmarks.md'), lines.join('\n'));
  process.stdout.write(lines.join('\n'));
}

await main();
