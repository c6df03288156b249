/**
 * The rollout's decisions, on in-memory hosts (test/support/fakes.ts engines that fail on
 * surprise calls, taught to be observed) driven through the real host pipeline, with a real git
 * state repo: what runs first, where it stops, what is never touched. SSH and real engines are
 * in test/cli/fleet.test.ts.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { FakeEngine, FakeMarker, type FakeEngineOptions } from '../../test/support/fakes.js';
import { createRepo, type TestRepo } from '../../test/support/repo.js';
import type { Engine } from '../adapters/engine.js';
import type { HostFiles } from '../adapters/fs.js';
import type { HeldLock, HostState, LockInfo } from '../adapters/host-state.js';
import { LABEL } from '../model/labels.js';
import { ExternalError, HostBusyError } from '../model/errors.js';
import type { ObservedContainer, ObservedImage } from '../model/observed.js';
import type { Host } from '../host/target.js';
import { deployFleet, type DeployRequest, type FleetHostResult } from './deploy.js';
import { inBatches, parseBatch } from './batch.js';

/** Every host's engine calls, in the order they happened across the fleet. */
let journal: string[] = [];

/** A fake engine (fails on surprise calls) that can also be observed: containers and images as an engine lists them. */
interface FleetEngine extends Engine {
  fake: FakeEngine;
  images: Set<string>;
  /** Calls that changed the host (anything but a pull). */
  changed(): string[];
}

function fleetEngine(host: string, opts: FakeEngineOptions = {}): FleetEngine {
  const fake = new FakeEngine(opts);
  const images = new Set<string>();
  return {
    endpoint: fake.endpoint,
    fake,
    images,
    changed: () => fake.calls.filter((c) => !c.startsWith('pull ')),
    ping: () => fake.ping(),
    async listContainers(): Promise<ObservedContainer[]> {
      return [...fake.containers.values()].map((c) => ({
        id: c.id,
        name: c.name,
        state: c.running ? 'running' : 'exited',
        image: c.spec?.image ?? 'old:0',
        imageId: 'img',
        labels: c.spec?.labels ?? {},
      }));
    },
    async listImages(): Promise<ObservedImage[]> {
      return [...images].map((i) => ({ id: `sha256:${i}`, repoTags: [i], repoDigests: [] }));
    },
    remoteDigest: () => fake.remoteDigest(),
    async pull(image, onProgress, signal) {
      journal.push(`${host} pull ${image}`);
      await fake.pull(image, onProgress, signal);
      images.add(image);
    },
    async create(spec) {
      journal.push(`${host} create ${spec.name}`);
      return fake.create(spec);
    },
    start: (id) => fake.start(id),
    unpause: (id) => fake.unpause(id),
    stop: (id) => fake.stop(id),
    remove: (id) => fake.remove(id),
    rename: (id, n) => fake.rename(id, n),
    inspect: (id) => fake.inspect(id),
    kill: (id, signal) => fake.kill(id, signal),
    exec: (id, argv) => fake.exec(id, argv),
  };
}

/** Files in a map, readable as observe reads them. */
function memoryFiles(): HostFiles {
  const files = new Map<string, string>();
  return {
    async readMany(dir, names) {
      return Object.fromEntries(names.map((n) => [n, files.get(`${dir}/${n}`) ?? null]));
    },
    async list(dir) {
      return [...files.keys()].filter((f) => f.startsWith(`${dir}/`)).map((f) => f.slice(dir.length + 1));
    },
    async writeAtomic(file, content) {
      files.set(file, content);
    },
    async rewrite(file, content) {
      files.set(file, content);
    },
    async remove(file) {
      files.delete(file);
    },
  };
}

/** Locks taken, fleet-wide. */
let locks = 0;

/** The host's lock and key in memory; `holder` set means another berth holds it. */
function memoryState(holder?: LockInfo): HostState {
  return {
    async lock() {
      locks++;
      if (holder) throw new HostBusyError(`the host is busy: ${holder.command} holds it`, holder);
      const info = { command: 'berth deploy', machine: 'here', pid: 1, user: 'me', since: 'now' };
      const held: HeldLock = { info, describe: async () => info, release: async () => undefined };
      return held;
    },
    async lockHolder() {
      return holder;
    },
    drainMarker: new FakeMarker(),
    async digestKey() {
      return Buffer.alloc(32, 7);
    },
  };
}

const NAMES = ['h1', 'h2', 'h3', 'h4'];
const repos: TestRepo[] = [];
after(() => repos.forEach((r) => r.remove()));

function fleet(opts: { failing?: string; unreachable?: string; busy?: string } = {}) {
  const repo = createRepo({
    'inventory.yaml': [
      'hosts:',
      ...NAMES.map((n, i) => `  ${n}: { address: 10.0.0.${i + 1}, groups: [${i < 2 ? 'front' : 'back'}] }`),
      '',
    ].join('\n'),
    'services/web.yaml': 'image: web:2\npull: missing\nenv_vars: { A: b }\n',
  });
  repos.push(repo);
  const engines = new Map<string, FleetEngine>();
  const hosts = new Map<string, Host>();
  for (const n of NAMES) {
    // Each host runs web from an older image, made by berth (so it is replaced, not adopted).
    const engine = fleetEngine(n, { exitsAtOnce: () => n === opts.failing });
    engines.set(n, engine);
    engine.fake.containers.set(`${n}-old`, {
      id: `${n}-old`,
      name: 'web',
      running: true,
      exitCode: 0,
      spec: {
        name: 'web',
        image: 'web:1',
        labels: { [LABEL.service]: 'web', [LABEL.configHash]: 'old' },
      } as never,
    });
    const busy =
      n === opts.busy
        ? { command: 'berth apply', machine: 'ci', pid: 9, user: 'ci', since: 'then' }
        : undefined;
    hosts.set(n, {
      target: { name: n, docker: 'fake://' },
      engine,
      state: memoryState(busy),
      files: memoryFiles(),
    });
  }
  const opened: string[] = [];
  const open = async (h: { name: string }) => {
    opened.push(h.name);
    if (h.name === opts.unreachable)
      throw new ExternalError('ssh', `cannot connect to ${h.name}: Connection refused`);
    return hosts.get(h.name)!;
  };
  const req = (extra: Partial<DeployRequest> = {}): DeployRequest => ({
    source: { repo: repo.dir, env: 'main', cacheDir: '/tmp/berth-unused-cache' },
    ...extra,
  });
  return { repo, engines, open, opened, req };
}

const statuses = (hosts: FleetHostResult[]) => hosts.map((h) => `${h.host}:${h.status}`);

// The pipeline opens the store by location; these tests record into a throwaway SQLite file.
const STORE = `/tmp/berth-fleet-unit-${process.pid}.db`;
after(async () => {
  const { rmSync } = await import('node:fs');
  for (const f of [STORE, `${STORE}-wal`, `${STORE}-shm`]) rmSync(f, { force: true });
});

describe('deployFleet', () => {
  test('every image is pulled on every host before any host changes; then batch after batch', async () => {
    journal = [];
    const f = fleet();
    const o = await deployFleet(f.req({ batch: 2 }), { open: f.open, store: STORE, repoLabel: 'test' });
    assert.equal(o.ok, true, JSON.stringify(o.hosts));
    assert.deepEqual(statuses(o.hosts), ['h1:applied', 'h2:applied', 'h3:applied', 'h4:applied']);
    assert.deepEqual(
      o.hosts.map((h) => h.batch),
      [1, 1, 2, 2],
    );
    const pulls = journal.filter((j) => j.includes(' pull '));
    const creates = journal.filter((j) => j.includes(' create '));
    assert.equal(pulls.length, 4, 'one pull per host, before the rollout; none during it');
    assert.ok(journal.lastIndexOf(pulls.at(-1)!) < journal.indexOf(creates[0]!), journal.join('\n'));
    // Batch 2 starts once batch 1 is done.
    const firstOfBatch2 = Math.min(journal.indexOf('h3 create web'), journal.indexOf('h4 create web'));
    assert.ok(
      journal.indexOf('h1 create web') < firstOfBatch2 && journal.indexOf('h2 create web') < firstOfBatch2,
    );
    for (const e of f.engines.values()) assert.deepEqual(e.fake.names(), ['web']);
  });

  test('a second deploy finds every host up to date and does nothing at all, not even lock', async () => {
    const f = fleet();
    const first = await deployFleet(f.req({ batch: 4 }), { open: f.open, store: STORE, repoLabel: 'test' });
    assert.equal(first.ok, true);
    const calls = [...f.engines.values()].map((e) => e.fake.calls.length);
    locks = 0;
    const again = await deployFleet(f.req({ batch: 4 }), { open: f.open, store: STORE, repoLabel: 'test' });
    assert.deepEqual(statuses(again.hosts), ['h1:no-op', 'h2:no-op', 'h3:no-op', 'h4:no-op']);
    assert.equal(locks, 0, 'no host was locked');
    assert.deepEqual(
      [...f.engines.values()].map((e) => e.fake.calls.length),
      calls,
      'no engine call that changes anything',
    );
  });

  test('the rollout stops after the batch with a failed host; later hosts are not touched', async () => {
    const f = fleet({ failing: 'h2' });
    const o = await deployFleet(f.req({ batch: 1 }), { open: f.open, store: STORE, repoLabel: 'test' });
    assert.equal(o.ok, false);
    assert.deepEqual(statuses(o.hosts), ['h1:applied', 'h2:failed', 'h3:skipped', 'h4:skipped']);
    assert.equal(o.stopped, 'stopped at h2');
    assert.match(o.hosts[2]!.error!, /not started: the rollout stopped at h2/);
    assert.deepEqual(f.engines.get('h3')!.changed(), [], 'h3 untouched');
    assert.deepEqual(f.engines.get('h4')!.changed(), [], 'h4 untouched');
    assert.deepEqual(f.engines.get('h2')!.fake.names(), ['web'], 'h2 rolled back to one container');
  });

  test('a host that cannot be reached stops the rollout before any host changes', async () => {
    const f = fleet({ unreachable: 'h3' });
    const o = await deployFleet(f.req(), { open: f.open, store: STORE, repoLabel: 'test' });
    assert.deepEqual(statuses(o.hosts), ['h1:skipped', 'h2:skipped', 'h3:unreachable', 'h4:skipped']);
    assert.match(o.hosts[2]!.error!, /ssh: cannot connect to h3: Connection refused/);
    assert.equal(o.stopped, 'h3 could not be prepared; no host was changed');
    for (const e of f.engines.values()) assert.deepEqual(e.changed(), [], 'nothing changed');
  });

  test('a host another berth holds halts the rollout there, as busy', async () => {
    const f = fleet({ busy: 'h2' });
    const o = await deployFleet(f.req({ batch: 1 }), { open: f.open, store: STORE, repoLabel: 'test' });
    assert.deepEqual(statuses(o.hosts), ['h1:applied', 'h2:busy', 'h3:skipped', 'h4:skipped']);
    assert.match(o.hosts[1]!.error!, /busy: berth apply holds it/);
  });

  test('cancelled before the rollout: nothing changes anywhere; --limit picks hosts by group', async () => {
    const f = fleet();
    const controller = new AbortController();
    controller.abort();
    const o = await deployFleet(f.req(), {
      open: f.open,
      store: STORE,
      repoLabel: 'test',
      signal: controller.signal,
    });
    assert.equal(o.cancelled, true);
    for (const e of f.engines.values()) assert.deepEqual(e.fake.calls, []);
    const g = fleet();
    const back = await deployFleet(g.req({ limit: ['back'], batch: '50%' }), {
      open: g.open,
      store: STORE,
      repoLabel: 'test',
    });
    assert.deepEqual(statuses(back.hosts), ['h3:applied', 'h4:applied']);
    assert.deepEqual(g.opened.sort(), ['h3', 'h4'], 'only the limited hosts are reached');
    assert.deepEqual(g.engines.get('h1')!.fake.calls, []);
  });
});

test('batches: a count or a percentage of the hosts, rounded up, at least one', () => {
  assert.deepEqual(inBatches([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
  assert.deepEqual(inBatches([1, 2, 3, 4, 5], '25%'), [[1, 2], [3, 4], [5]]);
  assert.deepEqual(inBatches([1, 2, 3], '1%'), [[1], [2], [3]]);
  assert.deepEqual(inBatches([1, 2, 3], '100%'), [[1, 2, 3]]);
  assert.equal(parseBatch('3'), 3);
  assert.equal(parseBatch('25%'), '25%');
  for (const bad of ['0', '0%', '101%', 'x', '-1', '1.5'])
    assert.throws(() => parseBatch(bad), /--batch takes a number of hosts/, bad);
});
