import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  FakeDrain,
  FakeEngine,
  FakeFiles,
  FakeMarker,
  memoryStore,
  type Failures,
} from '../../test/support/fakes.js';
import { CancelledError } from '../model/errors.js';
import type { Operation, Plan } from '../model/plan.js';
import type { LeasePlan, RotationPlan } from '../model/rotation.js';
import type { ServiceSpec } from '../model/service.js';
import { executePlan, type ExecuteDeps, type RotationLease } from './execute.js';

// The lease step of the executor against in-memory fakes that fail on surprise calls: the lease
// comes before the drain marker and the drain, goes back after the rejoin, and without it the
// host is neither drained nor changed. Leases in a real database: src/store/*.test.ts and
// test/cli/fleet.test.ts.

const spec = (name: string): ServiceSpec => ({
  name,
  image: `reg/${name}:2`,
  env: {},
  volumes: [],
  labels: {},
  networkMode: 'host',
  restartPolicy: 'always',
  init: true,
  logOptions: {},
  pull: 'always',
  drain: true,
  file: `services/${name}.yaml`,
});

const recreate: Operation = {
  kind: 'recreate',
  service: 'web',
  spec: spec('web'),
  containerId: 'web-old',
  fromImage: 'reg/web:1',
  cause: 'image :1 → :2',
};

const lease: LeasePlan = {
  scope: 'shop/staging',
  groups: [{ name: 'app_server', cap: 1 }],
  expiryMs: 30_000,
  cause: 'max_unavailable 1: at most 1 of 3 hosts of app_server out of rotation at once (shop/staging)',
};

const rotation = (over: Partial<RotationPlan> = {}): RotationPlan => ({
  provider: 'fake',
  previous: 'ready',
  drain: { cause: 'fake: web will restart' },
  rejoin: { kind: 'undrain', cause: 'changes done' },
  lease,
  ...over,
});

const plan = (r: RotationPlan): Plan => ({
  host: 'app-1',
  commit: 'c0ffee',
  ref: 'staging',
  pulls: [],
  operations: [recreate],
  unchanged: [],
  warnings: [],
  blockers: [],
  held: [],
  rotation: r,
});

function world(
  opts: { refuse?: string; drainFailures?: Failures; marker?: 'ready'; lbState?: 'maint' } = {},
) {
  const engine = new FakeEngine({ containers: { web: 'web-old' } });
  const drain = new FakeDrain(opts.lbState ?? 'ready', opts.drainFailures);
  const marker = new FakeMarker(opts.marker);
  const store = memoryStore();
  const leases: string[] = [];
  let t = 0;
  const deps: ExecuteDeps = {
    engine,
    files: new FakeFiles(),
    store,
    now: () => new Date(Date.UTC(2026, 0, 1, 0, 0, 0, t++)),
    repo: '/srv/state',
    meta: { command: 'berth agent', env: 'staging', deployId: 'd-1' },
    rotation: {
      provider: drain,
      target: { host: 'app-1', settings: {} },
      timeoutMs: 1000,
      marker,
      takeLease: async (wanted, signal) => {
        leases.push(`take ${wanted.groups.map((g) => `${g.name}/${g.cap}`).join(',')}`);
        assert.deepEqual(drain.calls, [], 'the lease comes before any drain');
        assert.deepEqual(
          marker.calls.filter((c) => c.startsWith('write')),
          [],
          'and before the drain marker',
        );
        if (opts.refuse === 'cancel') {
          await new Promise((r) => setTimeout(r, 5));
          if (signal?.aborted) throw new CancelledError('cancelled while waiting for a lease');
        }
        if (opts.refuse) throw new Error(opts.refuse);
        const held: RotationLease = {
          release: async () => void leases.push('release'),
          abandon: () => void leases.push('abandon'),
        };
        return held;
      },
    },
  };
  return { engine, drain, marker, store, leases, deps };
}

test('the lease before the marker and the drain, given back once the host is in rotation again', async () => {
  const w = world();
  const out = await executePlan(plan(rotation()), w.deps);
  assert.equal(out.result, 'succeeded', out.error);
  assert.deepEqual(w.leases, ['take app_server/1', 'release']);
  assert.deepEqual(
    out.steps.map((s) => `${s.service} ${s.kind}`),
    ['app-1 lease', 'app-1 drain', 'web recreate', 'web health', 'app-1 undrain'],
  );
  const [rec] = w.store.actionsNow();
  assert.equal(rec?.action, 'lease');
  assert.equal(rec?.cause, lease.cause);
  const [apply] = w.store.appliesNow();
  assert.equal(apply?.command, 'berth agent');
  assert.equal(apply?.env, 'staging');
  assert.equal(apply?.deployId, 'd-1');
});

test('no lease: the host is not drained, no container is touched, the apply fails saying why', async () => {
  const w = world({ refuse: 'no lease for app-1 after 10 s: 1 of 1 hosts of group app_server are out' });
  const out = await executePlan(plan(rotation()), w.deps);
  assert.equal(out.result, 'failed');
  assert.match(
    out.error!,
    /app-1 could not take a lease to leave rotation, so it was not drained and nothing was changed; the old containers keep serving \(no lease for app-1 after 10 s/,
  );
  assert.deepEqual(w.drain.calls, []);
  assert.deepEqual(w.marker.calls, []);
  assert.deepEqual(w.engine.calls, [], 'no container was stopped for want of a lease');
  assert.deepEqual(
    w.store.actionsNow().map((a) => `${a.action} ${a.result}`),
    ['lease failed'],
  );
});

test('no lease for a host an interrupted apply left out: it is put back as it was', async () => {
  const w = world({ refuse: 'database unreachable', marker: 'ready', lbState: 'maint' });
  const out = await executePlan(plan(rotation({ alreadyOut: true })), w.deps);
  assert.equal(out.result, 'failed');
  assert.deepEqual(w.drain.calls, ['restore app-1 ready']);
  assert.equal(w.drain.state, 'ready');
  assert.deepEqual(w.marker.calls, ['clear']);
  assert.deepEqual(w.engine.calls, []);
});

test('cancelled while waiting for the lease: nothing changed, the apply says cancelled', async () => {
  const w = world({ refuse: 'cancel' });
  const ac = new AbortController();
  const running = executePlan(plan(rotation()), { ...w.deps, signal: ac.signal });
  ac.abort();
  const out = await running;
  assert.equal(out.result, 'cancelled');
  assert.deepEqual(w.drain.calls, []);
  assert.deepEqual(w.engine.calls, []);
});

test('a failed drain gives the lease back once the host is restored', async () => {
  const w = world({ drainFailures: new Map([['drain app-1', { error: 'lb refused' }]]) });
  const out = await executePlan(plan(rotation()), w.deps);
  assert.equal(out.result, 'failed');
  assert.deepEqual(w.leases, ['take app_server/1', 'release']);
});

test('a host that could not be put back keeps its lease until it lapses', async () => {
  const w = world({ drainFailures: new Map([['undrain app-1', { error: 'lb gone' }]]) });
  const out = await executePlan(plan(rotation()), w.deps);
  assert.equal(out.result, 'failed');
  assert.deepEqual(w.leases, ['take app_server/1', 'abandon']);
});

test('a plan that takes a lease needs someone to keep leases: a bug otherwise', async () => {
  const w = world();
  const { takeLease: _t, ...rot } = w.deps.rotation!;
  await assert.rejects(
    executePlan(plan(rotation()), { ...w.deps, rotation: rot }),
    /bug: the plan takes a lease/,
  );
  assert.deepEqual(w.store.appliesNow(), [], 'refused before anything was recorded');
});
