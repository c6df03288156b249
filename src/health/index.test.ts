// @slow: starts real components (test/world); `npm run test:unit` leaves it out.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { buildTestImage, freePort, startWorld, type World } from '../../test/world/index.js';
import { dockerEngine } from '../adapters/docker.js';
import type { Engine } from '../adapters/engine.js';
import type { HealthcheckSpec, ServiceSpec } from '../model/service.js';
import { dockerProbe, healthFor, waitServiceHealthy } from './index.js';

// A real engine (test/world). Images: demo/web:1 serves without a HEALTHCHECK; `healthy` and
// `unhealthy` carry a 1 s Docker HEALTHCHECK with 2 retries. Every container gets its own PORT
// (engines share the host network) and is removed after its test.

let world: World;
let engine: Engine;
let healthyImage: string;
let unhealthyImage: string;
const created: string[] = [];

before(async () => {
  world = await startWorld();
  engine = dockerEngine({ host: world.dockerHost });
  healthyImage = `${world.registry.address}/health/healthy:1`;
  unhealthyImage = `${world.registry.address}/health/unhealthy:1`;
  await Promise.all([
    buildTestImage(world.dockerHost, healthyImage, { version: 'h', behaviour: 'healthy' }),
    buildTestImage(world.dockerHost, unhealthyImage, { version: 'u', behaviour: 'unhealthy' }),
  ]);
});

after(async () => {
  await Promise.all(created.map((id) => engine?.remove(id, { force: true }).catch(() => undefined)));
  await world?.stop();
});

let seq = 0;

/** Create and start a container of `image` on its own port. */
async function run(image: string, opts: { cmd?: string[] } = {}): Promise<{ id: string; port: number }> {
  const port = await freePort();
  const id = await engine.create({
    name: `health-${process.pid}-${++seq}`,
    image,
    env: [`PORT=${port}`],
    labels: {},
    networkMode: 'host',
    restartPolicy: { name: 'no' },
    init: false,
    logOptions: {},
    binds: [],
    ...(opts.cmd ? { cmd: opts.cmd } : {}),
  });
  created.push(id);
  await engine.start(id);
  return { id, port };
}

function service(healthcheck?: Partial<HealthcheckSpec>): ServiceSpec {
  const spec: ServiceSpec = {
    name: 'web',
    image: 'unused',
    env: {},
    volumes: [],
    labels: {},
    networkMode: 'host',
    restartPolicy: 'no',
    init: false,
    logOptions: {},
    pull: 'missing',
    drain: false,
    file: 'services/web.yaml',
  };
  if (healthcheck) {
    spec.healthcheck = { interval: 200, timeout: 1000, retries: 3, startPeriod: 0, ...healthcheck };
  }
  return spec;
}

const bound = { deadlineMs: 20_000 };

test('docker: an image whose HEALTHCHECK passes is starting, then healthy', async () => {
  const { id } = await run(healthyImage);
  const first = await dockerProbe(engine, id);
  assert.deepEqual(first, { ok: false, starting: true, output: 'docker: starting' });
  const t0 = performance.now();
  const r = await waitServiceHealthy(service({ docker: true, interval: 250 }), engine, id, bound);
  assert.equal(r.healthy, true, JSON.stringify(r));
  assert.equal(r.output, 'docker: healthy');
  assert.ok(r.checks >= 2, `${r.checks} checks`);
  assert.ok(performance.now() - t0 < 10_000);
});

test('docker: an image whose HEALTHCHECK fails is unhealthy', async () => {
  const { id } = await run(unhealthyImage);
  const r = await waitServiceHealthy(service({ docker: true, interval: 250, retries: 2 }), engine, id, bound);
  assert.deepEqual(
    { ...r, checks: 0 },
    {
      healthy: false,
      state: 'unhealthy',
      reason: '2 consecutive checks failed',
      output: 'docker: unhealthy: version check failed',
      checks: 0,
    },
  );
});

test('docker: an image without a HEALTHCHECK fails at once', async () => {
  const { id } = await run(world.images.web1);
  const r = await waitServiceHealthy(service({ docker: true }), engine, id, bound);
  assert.equal(r.healthy === false && r.reason, 'the image has no Docker HEALTHCHECK');
  assert.equal(r.checks, 1);
});

test('http: the app in the container answers on its port', async () => {
  const { id, port } = await run(world.images.web1);
  const r = await waitServiceHealthy(
    service({ http: `http://127.0.0.1:${port}/version`, retries: 10 }),
    engine,
    id,
    bound,
  );
  assert.deepEqual({ ...r, checks: 0 }, { healthy: true, state: 'healthy', checks: 0, output: 'HTTP 200' });
});

test('http: a wrong path is unhealthy with the status', async () => {
  const { id, port } = await run(world.images.web1);
  const r = await waitServiceHealthy(
    service({ http: `http://127.0.0.1:${port}/nope`, retries: 2 }),
    engine,
    id,
    {
      deadlineMs: 20_000,
    },
  );
  assert.equal(r.healthy, false);
  assert.match(r.output, /^HTTP 404/);
});

test('tcp: the container listens on its port', async () => {
  const { id, port } = await run(world.images.web1);
  const r = await waitServiceHealthy(service({ tcp: `127.0.0.1:${port}`, retries: 10 }), engine, id, bound);
  assert.equal(r.healthy, true, JSON.stringify(r));
});

test('a container that exits during the start period fails at once with its exit code', async () => {
  const { id, port } = await run(world.images.web1, { cmd: ['/bin/busybox', 'sh', '-c', 'sleep 1; exit 3'] });
  const t0 = performance.now();
  const r = await waitServiceHealthy(
    service({ http: `http://127.0.0.1:${port}/version`, startPeriod: 60_000 }),
    engine,
    id,
    bound,
  );
  assert.equal(r.healthy === false && r.reason, 'container exited with code 3');
  assert.equal(r.healthy === false && r.state, 'failed');
  assert.ok(performance.now() - t0 < 10_000);
});

test('no healthcheck: running at two checks 50 ms apart is enough', async () => {
  const { id } = await run(world.images.web1);
  const h = healthFor(service(), engine, id);
  assert.equal(h.kind, 'running');
  const r = await waitServiceHealthy(service(), engine, id, bound);
  assert.deepEqual(r, { healthy: true, state: 'healthy', checks: 2, output: 'running' });
});

test('no healthcheck: a container that exits fails with its exit code', async () => {
  const { id } = await run(world.images.web1, { cmd: ['/bin/busybox', 'sh', '-c', 'exit 4'] });
  const r = await waitServiceHealthy(service(), engine, id, bound);
  assert.equal(r.healthy === false && r.reason, 'container exited with code 4');
});

test('healthFor names what it checks', () => {
  assert.equal(
    healthFor(service({ http: 'http://127.0.0.1:1/h' }), engine, 'x').kind,
    'http http://127.0.0.1:1/h',
  );
  assert.equal(healthFor(service({ tcp: '127.0.0.1:1' }), engine, 'x').kind, 'tcp 127.0.0.1:1');
  assert.equal(healthFor(service({ docker: true }), engine, 'x').kind, 'docker HEALTHCHECK');
});
