import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Docker from 'dockerode';
import { startEngine, startWorld, type EngineHandle, type World } from '../world/index.js';
import { startHaproxy, type HaproxyHandle } from '../world/haproxy.js';
import { berth } from '../support/cli.js';
import { load } from '../support/load.js';
import { createRepo, type TestRepo } from '../support/repo.js';

const PORT = 24800;
const HOSTS = [
  { name: 'h1', address: '127.0.0.2' },
  { name: 'h2', address: '127.0.0.3' },
];

/**
 * Issue 4 end to end: two simulated hosts (two engines, services bound to 127.0.0.2 and
 * 127.0.0.3 through {{ host.address }}), real HAProxy in front, a steady load from this test.
 */
describe('zero-downtime rollout across two hosts behind real HAProxy', () => {
  let world: World;
  let engine2: EngineHandle;
  let hap: HaproxyHandle;
  let repo: TestRepo;
  let work: string;
  const engines: Record<string, string> = {};
  const dockers: Record<string, Docker> = {};

  const service = (image: string, healthcheck: string) =>
    [
      `image: ${image}`,
      'pull: missing',
      'drain: true',
      'env_vars:',
      `  PORT: '${PORT}'`,
      `  BIND: '{{ host.address }}'`,
      `healthcheck: ${healthcheck}`,
      '',
    ].join('\n');
  const httpCheck = `{ http: 'http://{{ host.address }}:${PORT}/version', interval: 100ms, timeout: 1s, retries: 3 }`;

  const apply = (host: string, extraEnv: Record<string, string> = {}) =>
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
        `${work}/${host}/berth.db`,
        '--env-dir',
        `${work}/${host}/env`,
        '--cache-dir',
        `${work}/cache`,
      ],
      { DOCKER_HOST: engines[host]!, ...extraEnv },
      120_000,
    );
  /** What a fleet rollout does: host after host, stopping at the first that fails. */
  const rollout = async () => {
    const results: Array<{ host: string; code: number; out: string }> = [];
    for (const h of HOSTS) {
      const r = await apply(h.name);
      results.push({ host: h.name, code: r.code, out: r.stdout + r.stderr });
      if (r.code !== 0) break;
    }
    return results;
  };
  const version = async (host: string) => {
    const info = await dockers[host]!.getContainer('web').inspect();
    return { id: info.Id, image: info.Config.Image, running: info.State.Running };
  };

  before(async () => {
    [world, engine2] = await Promise.all([startWorld(), startEngine()]);
    engines.h1 = world.dockerHost;
    engines.h2 = engine2.dockerHost;
    for (const h of HOSTS)
      dockers[h.name] = new Docker({ socketPath: engines[h.name]!.replace('unix://', '') });
    hap = await startHaproxy({ servers: HOSTS.map((h) => ({ ...h, port: PORT })) });
    work = mkdtempSync(path.join(tmpdir(), 'berth-rollout-'));
    repo = createRepo({
      'berth.yaml': [
        'load_balancer:',
        '  provider: haproxy',
        `  socket: ${hap.socket}`,
        `  backend: ${hap.backend}`,
        '  server: "{{ host.name }}"',
        '  drain_timeout: 5s',
        '',
      ].join('\n'),
      'inventory.yaml': ['hosts:', ...HOSTS.map((h) => `  ${h.name}: { address: ${h.address} }`), ''].join(
        '\n',
      ),
      'services/web.yaml': service(world.images.web1, httpCheck),
    });
    const first = await rollout();
    assert.deepEqual(
      first.map((r) => [r.host, r.code]),
      [
        ['h1', 0],
        ['h2', 0],
      ],
      first.map((r) => r.out).join('\n'),
    );
  });

  after(async () => {
    await hap?.stop();
    await Promise.all([world?.stop(), engine2?.stop()]);
    repo?.remove();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('a new image rolled to both hosts, one after the other: 0 failed requests', async (t) => {
    const l = load(hap.frontend);
    await new Promise((r) => setTimeout(r, 300));
    repo.commit({ 'services/web.yaml': service(world.images.web2, httpCheck) });
    const results = await rollout();
    const { sent, failures, versions } = await l.finish();
    t.diagnostic(
      `${sent} requests through HAProxy, ${failures.length} failed, versions ${JSON.stringify(versions)}`,
    );
    assert.deepEqual(
      results.map((r) => [r.host, r.code]),
      [
        ['h1', 0],
        ['h2', 0],
      ],
      results.map((r) => r.out).join('\n'),
    );
    assert.deepEqual(failures, [], `${failures.length} of ${sent} requests failed`);
    assert.ok(sent > 100, `only ${sent} requests were sent`);
    assert.ok((versions['1'] ?? 0) > 0 && (versions['2'] ?? 0) > 0, JSON.stringify(versions));
    for (const h of HOSTS) assert.equal((await version(h.name)).image, world.images.web2);
    for (const h of HOSTS) assert.equal(await hap.adminState(h.name), 0, `${h.name} is back in rotation`);
    assert.match(results[0]!.out, /h1\s+drain\s+ok/);
    assert.match(results[0]!.out, /h1\s+undrain\s+ok/);
    // A no-op apply never touches the load balancer.
    const noop = await apply('h1');
    assert.equal(noop.code, 0, noop.stdout + noop.stderr);
    assert.match(noop.stdout, /No changes/);
    assert.doesNotMatch(noop.stdout + noop.stderr, /drain/);
  });

  test('killed while the host is drained: the next apply puts it back in rotation', async () => {
    repo.commit({ 'services/web.yaml': service(world.images.web1, httpCheck) });
    const killed = await apply('h1', { BERTH_FAILPOINT: 'after-drain' });
    assert.notEqual(killed.code, 0);
    assert.notEqual(await hap.adminState('h1'), 0, 'h1 was left out of rotation by the killed apply');
    const results = await rollout();
    assert.deepEqual(
      results.map((r) => [r.host, r.code]),
      [
        ['h1', 0],
        ['h2', 0],
      ],
      results.map((r) => r.out).join('\n'),
    );
    for (const h of HOSTS) assert.equal(await hap.adminState(h.name), 0, `${h.name} is back in rotation`);
    for (const h of HOSTS) assert.equal((await version(h.name)).image, world.images.web1);
  });

  test('an image that fails its health check is rolled back on the first host; the second is not touched', async (t) => {
    const bad = `${world.registry.address}/demo/web:bad`;
    await world.publish(bad, { version: 'bad', behaviour: 'unhealthy' });
    const before1 = await version('h1');
    const before2 = await version('h2');
    const l = load(hap.frontend);
    await new Promise((r) => setTimeout(r, 300));
    repo.commit({
      'services/web.yaml': service(bad, '{ docker: true, interval: 200ms, timeout: 2s, retries: 2 }'),
    });
    const results = await rollout();
    const { sent, failures, versions } = await l.finish();
    t.diagnostic(
      `${sent} requests through HAProxy, ${failures.length} failed, versions ${JSON.stringify(versions)}`,
    );
    assert.deepEqual(
      results.map((r) => [r.host, r.code]),
      [['h1', 1]],
    );
    assert.match(
      results[0]!.out,
      /health check \(docker HEALTHCHECK\) failed: .*last check: docker: unhealthy: version check failed/,
    );
    assert.match(results[0]!.out, /previous container was started again/);
    assert.deepEqual(failures, [], `${failures.length} of ${sent} requests failed`);
    assert.equal(Object.keys(versions).length, 1, 'the old version kept answering');
    assert.equal(versions.bad, undefined);
    const h1 = await version('h1');
    assert.deepEqual(h1, before1, 'h1 runs its previous container again');
    assert.deepEqual(await version('h2'), before2, 'the second host is not touched');
    assert.equal(await hap.adminState('h1'), 0, 'h1 is back in rotation');
  });
});
