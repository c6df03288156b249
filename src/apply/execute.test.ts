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
import type { Operation, Plan } from '../model/plan.js';
import type { RotationPlan } from '../model/rotation.js';
import type { ServiceSpec } from '../model/service.js';
import { executePlan, type ExecuteDeps } from './execute.js';
import { serviceSpec } from '../../test/support/specs.js';

// The executor against in-memory fakes that fail on any call they were not meant to get: it
// carries out exactly what the plan lists, in order, and nothing else. The real engine's part
// is in test/cli (apply, rollout, kill) and src/adapters/docker.test.ts.

function spec(name: string, over: Partial<ServiceSpec> = {}): ServiceSpec {
  return serviceSpec(name, { image: `reg/${name}:2`, env: { PORT: '1' }, ...over });
}

function recreate(name: string, over: Partial<ServiceSpec> = {}): Operation {
  return {
    kind: 'recreate',
    service: name,
    spec: spec(name, over),
    containerId: `${name}-old`,
    fromImage: `reg/${name}:1`,
    cause: 'image :1 → :2',
  };
}

function plan(operations: Operation[], over: Partial<Plan> = {}): Plan {
  return {
    host: 'app-1',
    commit: 'c0ffee',
    ref: 'main',
    pulls: [],
    operations,
    unchanged: [],
    warnings: [],
    blockers: [],
    held: [],
    ...over,
  };
}

const drainAround: RotationPlan = {
  provider: 'fake',
  previous: 'ready',
  drain: { cause: 'fake: web will restart' },
  rejoin: { kind: 'undrain', cause: 'changes done' },
};

function world(
  opts: {
    containers?: Record<string, string>;
    engineFailures?: Failures;
    drainFailures?: Failures;
    health?: (name: string) => string | undefined;
    lbState?: 'ready' | 'drain' | 'maint';
    marker?: 'ready' | 'drain' | 'maint';
    delayMs?: number;
  } = {},
) {
  const engine = new FakeEngine({
    containers: opts.containers,
    failures: opts.engineFailures,
    health: opts.health,
    delayMs: opts.delayMs,
  });
  const drain = new FakeDrain(opts.lbState ?? 'ready', opts.drainFailures);
  const marker = new FakeMarker(opts.marker);
  const files = new FakeFiles();
  const store = memoryStore();
  let t = 0;
  const deps: ExecuteDeps = {
    engine,
    files,
    store,
    now: () => new Date(Date.UTC(2026, 0, 1, 0, 0, 0, t++)),
    repo: '/srv/state',
    rotation: {
      provider: drain,
      target: { host: 'app-1', address: '10.0.0.1', settings: {} },
      timeoutMs: 1000,
      marker,
    },
  };
  /** What the engine was asked to change, without the health checks' reads. */
  const changes = () => engine.calls;
  return { engine, drain, marker, files, store, deps, changes };
}

test('a recreate: stop, set aside, create, start, health, then the old one goes; all recorded', async () => {
  const w = world({ containers: { web: 'web-old' } });
  const out = await executePlan(
    plan([recreate('web')], { pulls: [{ image: 'reg/web:2', services: ['web'], cause: 'pull: always' }] }),
    w.deps,
  );
  assert.equal(out.result, 'succeeded', out.error);
  assert.deepEqual(w.changes(), [
    'pull reg/web:2',
    'stop web-old',
    'rename web-old web.berth-old',
    'create web',
    'start web-new1',
    'remove web-old',
  ]);
  assert.deepEqual(w.engine.names(), ['web']);
  assert.deepEqual(w.drain.calls, [], 'the plan does not drain: the load balancer is not touched');
  assert.deepEqual(
    w.store.actionsNow().map((a) => `${a.service} ${a.action} ${a.result}`),
    ['web pull succeeded', 'web recreate succeeded', 'web health succeeded'],
  );
  assert.equal(w.store.appliesNow()[0]!.result, 'succeeded');
});

test('a failed pull changes nothing and stops the apply', async () => {
  const w = world({
    containers: { web: 'web-old' },
    engineFailures: new Map([['pull reg/web:2', { error: 'registry down' }]]),
  });
  const out = await executePlan(
    plan([recreate('web')], {
      pulls: [{ image: 'reg/web:2', services: ['web'], cause: 'pull: always' }],
      rotation: drainAround,
    }),
    w.deps,
  );
  assert.equal(out.result, 'failed');
  assert.match(out.error!, /pulling reg\/web:2 failed, so nothing was changed/);
  assert.deepEqual(w.changes(), ['pull reg/web:2']);
  assert.deepEqual(w.drain.calls, [], 'no drain: nothing was about to change');
  assert.deepEqual(w.marker.calls, []);
});

test('drain around the changes: marker first, drain, changes, undrain, marker cleared', async () => {
  const w = world({ containers: { web: 'web-old' } });
  const out = await executePlan(plan([recreate('web', { drain: true })], { rotation: drainAround }), w.deps);
  assert.equal(out.result, 'succeeded', out.error);
  assert.deepEqual(w.drain.calls, ['drain app-1', 'undrain app-1']);
  assert.deepEqual(w.marker.calls, ['write ready', 'clear']);
  assert.equal(w.drain.state, 'ready');
  assert.deepEqual(
    out.steps.map((s) => `${s.service} ${s.kind}`),
    ['app-1 drain', 'web recreate', 'web health', 'app-1 undrain'],
  );
});

test('a failed drain puts back the state the plan recorded and changes nothing', async () => {
  const w = world({
    containers: { web: 'web-old' },
    lbState: 'drain',
    drainFailures: new Map([['drain app-1', { error: 'lb refused' }]]),
  });
  const out = await executePlan(
    plan([recreate('web', { drain: true })], {
      rotation: { ...drainAround, previous: 'drain', rejoin: { kind: 'restore', cause: 'back to drain' } },
    }),
    w.deps,
  );
  assert.equal(out.result, 'failed');
  assert.match(out.error!, /draining app-1 failed, so nothing was changed/);
  assert.deepEqual(w.drain.calls, ['drain app-1', 'restore app-1 drain']);
  assert.deepEqual(w.changes(), [], 'no container was touched');
  assert.deepEqual(w.marker.calls, ['write drain', 'clear']);
});

test('a failed undrain fails the apply and keeps the marker, so the next apply tries again', async () => {
  const w = world({
    containers: { web: 'web-old' },
    drainFailures: new Map([['undrain app-1', { error: 'lb gone' }]]),
  });
  const out = await executePlan(plan([recreate('web', { drain: true })], { rotation: drainAround }), w.deps);
  assert.equal(out.result, 'failed');
  assert.match(out.error!, /app-1: could not put it back into the load balancer/);
  assert.deepEqual(w.marker.calls, ['write ready'], 'the marker stays');
  assert.equal(w.marker.value, 'ready');
  assert.deepEqual(w.engine.names(), ['web'], 'the change itself went through');
});

test('an unhealthy replacement is rolled back, and the host still goes back into rotation', async () => {
  const w = world({
    containers: { web: 'web-old' },
    health: () => 'unhealthy',
  });
  const out = await executePlan(
    plan(
      [
        recreate('web', {
          drain: true,
          healthcheck: { docker: true, interval: 10, timeout: 100, retries: 1, startPeriod: 0 },
        }),
      ],
      {
        rotation: drainAround,
      },
    ),
    w.deps,
  );
  assert.equal(out.result, 'failed');
  assert.match(
    out.error!,
    /web: health check \(docker HEALTHCHECK\) failed: .*the previous container was started again/,
  );
  assert.deepEqual(w.changes(), [
    'stop web-old',
    'rename web-old web.berth-old',
    'create web',
    'start web-new1',
    'remove web-new1',
    'rename web-old web',
    'start web-old',
  ]);
  assert.deepEqual(w.drain.calls, ['drain app-1', 'undrain app-1']);
  assert.deepEqual(
    out.steps.map((s) => `${s.kind} ${s.result}`),
    ['drain succeeded', 'recreate succeeded', 'health failed', 'rollback succeeded', 'undrain succeeded'],
  );
});

test('a failed rollback says so: the service is left for a person to look at', async () => {
  const w = world({
    containers: { web: 'web-old' },
    engineFailures: new Map([
      ['start web-new1', { error: 'port in use' }],
      ['rename web-old web', { error: 'engine hiccup' }],
    ]),
  });
  const out = await executePlan(plan([recreate('web')]), w.deps);
  assert.equal(out.result, 'failed');
  assert.equal(out.error, 'web: port in use; restoring the previous container also failed: engine hiccup');
  assert.deepEqual(
    out.steps.map((s) => `${s.kind} ${s.result}`),
    ['recreate failed', 'rollback failed'],
  );
});

test('--parallel: services change side by side up to the limit, each in its own order', async () => {
  const names = ['a1', 'a2', 'a3', 'a4', 'a5', 'a6'];
  for (const parallel of [1, 3]) {
    const w = world({ containers: Object.fromEntries(names.map((n) => [n, `${n}-old`])), delayMs: 20 });
    const out = await executePlan(plan(names.map((n) => recreate(n))), { ...w.deps, parallel });
    assert.equal(out.result, 'succeeded', out.error);
    assert.equal(w.engine.maxInFlight, parallel, `at most ${parallel} at once, and that many`);
    for (const n of names) {
      const mine = w.changes().filter((c) => c.split(' ')[1]!.startsWith(n));
      assert.deepEqual(mine.slice(0, 3), [`stop ${n}-old`, `rename ${n}-old ${n}.berth-old`, `create ${n}`]);
    }
  }
});

test('cancelled during a health wait: that replacement is rolled back, the next never starts, the host rejoins', async () => {
  const ac = new AbortController();
  const w = world({
    containers: { a1: 'a1-old', a2: 'a2-old' },
    // The new container never becomes healthy on its own; the cancel comes first.
    health: () => 'starting',
  });
  const hc = { docker: true, interval: 20, timeout: 100, retries: 3, startPeriod: 60_000 };
  setTimeout(() => ac.abort(new Error('SIGTERM')), 150);
  const out = await executePlan(
    plan([recreate('a1', { drain: true, healthcheck: hc }), recreate('a2', { drain: true })], {
      rotation: { ...drainAround, drain: { cause: 'fake: a1, a2 will restart' } },
    }),
    { ...w.deps, parallel: 1, signal: ac.signal },
  );
  assert.equal(out.result, 'cancelled');
  assert.match(
    out.error!,
    /cancelled; not started: a2; a1: cancelled before the new container was proven healthy/,
  );
  assert.ok(!w.changes().some((c) => c.includes('a2')), 'a2 was never touched');
  assert.deepEqual(w.engine.names(), ['a1', 'a2']);
  assert.ok(w.changes().includes('start a1-old'), 'the previous a1 runs again');
  assert.deepEqual(w.drain.calls, ['drain app-1', 'undrain app-1']);
  assert.equal(w.store.appliesNow()[0]!.result, 'cancelled');
});

test('cancelled before it starts: nothing is pulled, drained or changed', async () => {
  const ac = new AbortController();
  ac.abort();
  const w = world({ containers: { web: 'web-old' } });
  const out = await executePlan(
    plan([recreate('web', { drain: true })], {
      pulls: [{ image: 'reg/web:2', services: ['web'], cause: 'pull: always' }],
      rotation: drainAround,
    }),
    { ...w.deps, signal: ac.signal },
  );
  assert.equal(out.result, 'cancelled');
  assert.deepEqual(w.changes(), []);
  assert.deepEqual(w.drain.calls, []);
});

test('only a leftover drain: the host is put back and the marker cleared, nothing else', async () => {
  const w = world({ marker: 'ready', lbState: 'maint' });
  const out = await executePlan(
    plan([], {
      rotation: {
        provider: 'fake',
        previous: 'ready',
        rejoin: { kind: 'undrain', cause: 'an interrupted apply left it out of rotation' },
      },
    }),
    w.deps,
  );
  assert.equal(out.result, 'succeeded', out.error);
  assert.deepEqual(w.drain.calls, ['undrain app-1']);
  assert.deepEqual(w.marker.calls, ['clear']);
  assert.deepEqual(w.changes(), []);
});

test('write-env, start and remove go to the files and the engine as listed', async () => {
  const w = world({ containers: { gone: 'gone-id', idle: 'idle-id' } });
  const out = await executePlan(
    plan([
      {
        kind: 'write-env',
        service: 'idle',
        path: '/env/idle',
        content: 'A=1\n',
        previous: null,
        cause: 'env file missing',
      },
      {
        kind: 'start',
        service: 'idle',
        containerId: 'idle-id',
        image: 'reg/idle:1',
        cause: 'container is exited',
      },
      {
        kind: 'remove',
        service: 'gone',
        containerId: 'gone-id',
        fromImage: 'reg/gone:1',
        envFile: '/env/gone',
        cause: 'no longer in the repo',
      },
    ]),
    w.deps,
  );
  assert.equal(out.result, 'succeeded', out.error);
  assert.deepEqual(w.files.calls, ['write /env/idle', 'remove /env/gone']);
  assert.equal(w.files.files.get('/env/idle')?.mode, 0o600);
  assert.deepEqual(w.changes().sort(), ['remove gone-id', 'start idle-id', 'stop gone-id']);
});

test('a plan that changes rotation without a load balancer to do it is a bug, said at once', async () => {
  const w = world();
  await assert.rejects(
    executePlan(plan([], { rotation: drainAround }), { ...w.deps, rotation: undefined }),
    /bug: the plan changes rotation but no load balancer was given/,
  );
});

test('a rolled-back replacement puts its previous env file back, so what is on disk matches what runs', async () => {
  const w = world({ containers: { web: 'web-old' }, health: () => 'unhealthy' });
  w.files.files.set('/env/web', { content: 'OLD\n', mode: 0o600 });
  const out = await executePlan(
    plan([
      {
        kind: 'write-env',
        service: 'web',
        path: '/env/web',
        content: 'NEW\n',
        previous: 'OLD\n',
        cause: 'env file differs',
      },
      recreate('web', {
        healthcheck: { docker: true, interval: 10, timeout: 100, retries: 1, startPeriod: 0 },
      }),
    ]),
    w.deps,
  );
  assert.equal(out.result, 'failed');
  assert.equal(w.files.files.get('/env/web')?.content, 'OLD\n');
  assert.deepEqual(
    out.steps.map((s) => `${s.kind} ${s.result}`),
    [
      'write-env succeeded',
      'recreate succeeded',
      'health failed',
      'rollback succeeded',
      'restore-env succeeded',
    ],
  );
});

test('a new service that fails leaves no env file behind (it may hold secrets)', async () => {
  const w = world({ engineFailures: new Map([['create api', { error: 'no such image' }]]) });
  const out = await executePlan(
    plan([
      {
        kind: 'write-env',
        service: 'api',
        path: '/env/api',
        content: 'TOKEN=x\n',
        previous: null,
        cause: 'env file missing',
      },
      { kind: 'create', service: 'api', spec: spec('api'), cause: 'new service' },
    ]),
    w.deps,
  );
  assert.equal(out.result, 'failed');
  assert.equal(w.files.files.has('/env/api'), false);
  assert.deepEqual(w.files.calls, ['write /env/api', 'remove /env/api']);
});

test('a paused container is unpaused', async () => {
  const w = world({ containers: { web: 'web-id' } });
  const out = await executePlan(
    plan([
      {
        kind: 'unpause',
        service: 'web',
        containerId: 'web-id',
        image: 'reg/web:1',
        cause: 'container is paused',
      },
    ]),
    w.deps,
  );
  assert.equal(out.result, 'succeeded', out.error);
  assert.deepEqual(w.changes(), ['unpause web-id']);
});
