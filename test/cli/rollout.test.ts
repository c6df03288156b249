import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { World } from '../world/index.js';
import type { HaproxyHandle } from '../world/haproxy.js';
import {
  assertAllApplied,
  haproxyBalancer,
  hostsInventory,
  rolloutWeb,
  startHostsFixture,
  type HostsFixture,
} from '../support/fixture.js';
import { load } from '../support/load.js';
import type { TestRepo } from '../support/repo.js';

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
  let fx: HostsFixture;
  let world: World;
  let hap: HaproxyHandle;
  let repo: TestRepo;

  const service = (image: string, healthcheck?: string) => rolloutWeb(image, PORT, healthcheck);

  const apply = (host: string, extraEnv: Record<string, string> = {}) => fx.apply(repo, host, extraEnv);
  const rollout = () => fx.rollout(repo);
  const version = async (host: string) => {
    const info = await fx.dockers[host]!.getContainer('web').inspect();
    return { id: info.Id, image: info.Config.Image, running: info.State.Running };
  };

  before(async () => {
    fx = await startHostsFixture('berth-rollout-', HOSTS, PORT);
    ({ world, hap } = fx);
    repo = fx.createRepo({
      'berth.yaml': [...haproxyBalancer(hap, '5s'), ''].join('\n'),
      'inventory.yaml': hostsInventory(HOSTS),
      'services/web.yaml': service(world.images.web1),
    });
    assertAllApplied(await rollout(), HOSTS);
  });

  after(() => fx?.stop());

  test('a new image rolled to both hosts, one after the other: 0 failed requests', async (t) => {
    const l = load(hap.frontend);
    await new Promise((r) => setTimeout(r, 300));
    repo.commit({ 'services/web.yaml': service(world.images.web2) });
    const results = await rollout();
    const { sent, failures, versions } = await l.finish();
    t.diagnostic(
      `${sent} requests through HAProxy, ${failures.length} failed, versions ${JSON.stringify(versions)}`,
    );
    assertAllApplied(results, HOSTS);
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
    repo.commit({ 'services/web.yaml': service(world.images.web1) });
    const killed = await apply('h1', { BERTH_FAILPOINT: 'after-drain' });
    assert.notEqual(killed.code, 0);
    assert.notEqual(await hap.adminState('h1'), 0, 'h1 was left out of rotation by the killed apply');
    const results = await rollout();
    assertAllApplied(results, HOSTS);
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
