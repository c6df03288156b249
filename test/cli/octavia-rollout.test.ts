import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { World } from '../world/index.js';
import type { HaproxyHandle } from '../world/haproxy.js';
import { startOctavia, type OctaviaCall, type OctaviaFake } from '../world/octavia.js';
import {
  assertAllApplied,
  hostsInventory,
  rolloutWeb,
  startHostsFixture,
  type HostsFixture,
} from '../support/fixture.js';
import { load } from '../support/load.js';
import type { TestRepo } from '../support/repo.js';

/** Not the port of rollout.test.ts: test files run side by side on the same loopback addresses. */
const PORT = 24810;
const HOSTS = [
  { name: 'h1', address: '127.0.0.2' },
  { name: 'h2', address: '127.0.0.3' },
];

/**
 * Issue 13 end to end: `berth apply` host after host with `provider: octavia`, against a local
 * fake of the documented Keystone v3 and Octavia v2 APIs (test/world/octavia.ts; not OpenStack)
 * whose data plane is a real HAProxy in front of two simulated hosts (two engines, services on
 * 127.0.0.2 and 127.0.0.3), under a steady load from this test. The fake records every call.
 */
describe('rolling out behind an Octavia pool (local fake of the API, real HAProxy data plane)', () => {
  let fx: HostsFixture;
  let world: World;
  let hap: HaproxyHandle;
  let octavia: OctaviaFake;
  let repo: TestRepo;
  let clouds: string;

  const service = (image: string) => rolloutWeb(image, PORT);

  const rollout = () => fx.rollout(repo, { OS_CLIENT_CONFIG_FILE: clouds });
  const image = async (host: string) => (await fx.dockers[host]!.getContainer('web').inspect()).Config.Image;
  /** The member changes among `calls`, as `host METHOD body`, with the host named by its member. */
  const memberChanges = (calls: OctaviaCall[]) => {
    const byId = new Map(HOSTS.map((h) => [octavia.member(h.address, PORT)?.id, h.name]));
    return calls
      .filter((c) => c.method !== 'GET' && c.path.includes('/members'))
      .map((c) => {
        const id = /\/members\/([^/?]+)/.exec(c.path)?.[1];
        const member = (c.body as { member?: { address?: string } } | undefined)?.member;
        const host = id ? byId.get(id) : HOSTS.find((h) => h.address === member?.address)?.name;
        return `${host} ${c.method} ${c.status} ${JSON.stringify(member)}`;
      });
  };

  before(async () => {
    fx = await startHostsFixture('berth-octavia-rollout-', HOSTS, PORT);
    ({ world, hap } = fx);
    octavia = await startOctavia({
      haproxy: hap,
      members: HOSTS.map((h) => ({ address: h.address, port: PORT, name: h.name })),
    });
    clouds = octavia.writeClouds(fx.work);
    repo = fx.createRepo({
      'berth.yaml': [
        'load_balancer:',
        '  provider: octavia',
        '  cloud: password',
        `  pool: ${octavia.pool.name}`,
        "  address: '{{ host.address }}'",
        `  protocol_port: ${PORT}`,
        '  drain_timeout: 1s',
        '',
      ].join('\n'),
      'inventory.yaml': hostsInventory(HOSTS),
      'services/web.yaml': service(world.images.web1),
    });
    assertAllApplied(await rollout(), HOSTS);
  });

  after(async () => {
    await octavia?.stop();
    await fx?.stop();
  });

  test('a new image host after host under load: 0 failed requests, the expected calls, never a DELETE', async (t) => {
    const from = octavia.calls.length;
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
    for (const h of HOSTS) assert.equal(await image(h.name), world.images.web2);

    const calls = octavia.calls.slice(from);
    assert.deepEqual(
      calls.filter((c) => c.method === 'DELETE'),
      [],
      'berth never deletes a member',
    );
    assert.deepEqual(memberChanges(calls), [
      'h1 PUT 200 {"weight":0,"tags":["berth:weight=1"]}',
      'h1 PUT 200 {"admin_state_up":false}',
      'h1 PUT 200 {"weight":1,"admin_state_up":true,"tags":[]}',
      'h2 PUT 200 {"weight":0,"tags":["berth:weight=1"]}',
      'h2 PUT 200 {"admin_state_up":false}',
      'h2 PUT 200 {"weight":1,"admin_state_up":true,"tags":[]}',
    ]);
    // Each change waits for the load balancer to be ACTIVE before and after it.
    calls.forEach((c, i) => {
      if (c.method !== 'PUT') return;
      assert.match(calls[i - 1]?.path ?? '', /\/loadbalancers\//, `no ACTIVE check before call ${i}`);
      assert.match(calls[i + 1]?.path ?? '', /\/loadbalancers\//, `no ACTIVE check after call ${i}`);
    });
    for (const h of HOSTS) {
      const m = octavia.member(h.address, PORT)!;
      assert.deepEqual([m.weight, m.admin_state_up], [1, true], `${h.name} is back in the pool`);
      assert.equal(await hap.adminState(h.name), 0, `${h.name} is back in rotation in the data plane`);
    }
    assert.deepEqual(octavia.dataPlaneErrors, [], 'HAProxy followed every change');
    assert.match(results[0]!.out, /h1\s+drain\s+ok/);
    assert.match(results[0]!.out, /h1\s+undrain\s+ok/);
  });

  test('a host whose member was deleted (as the old playbook did) gets it created on its next rollout', async () => {
    await octavia.removeMember('127.0.0.3', PORT);
    const from = octavia.calls.length;
    repo.commit({ 'services/web.yaml': service(world.images.web1) });
    const results = await rollout();
    assertAllApplied(results, HOSTS);
    const calls = octavia.calls.slice(from);
    assert.deepEqual(memberChanges(calls).slice(3), [
      `h2 POST 201 {"address":"127.0.0.3","protocol_port":${PORT},"weight":1,"admin_state_up":true,"name":"h2"}`,
    ]);
    assert.ok(calls.every((c) => c.method !== 'DELETE'));
    assert.equal(await hap.adminState('h2'), 0, 'h2 is in rotation again');
  });
});
