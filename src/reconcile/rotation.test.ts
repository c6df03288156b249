import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Operation } from '../model/plan.js';
import type { DesiredState, ServiceSpec } from '../model/service.js';
import { leaseCap, planRotation } from './rotation.js';

const spec = (name: string, drain: boolean): ServiceSpec => ({
  name,
  image: `reg/${name}:2`,
  env: {},
  volumes: [],
  labels: {},
  networkMode: 'host',
  restartPolicy: 'always',
  init: true,
  logOptions: {},
  pull: 'missing',
  drain,
  file: `services/${name}.yaml`,
});

const recreate = (name: string, drain = true): Operation => ({
  kind: 'recreate',
  service: name,
  spec: spec(name, drain),
  containerId: `${name}-id`,
  fromImage: `reg/${name}:1`,
  cause: 'image :1 → :2',
});

const desired: DesiredState = {
  ref: 'staging',
  host: 'app-1',
  envDir: '/etc/berth/env',
  services: [],
  loadBalancer: { provider: 'haproxy', settings: {} },
  rollout: {
    scope: 'shop/staging',
    groups: [
      { name: 'app_server', size: 4 },
      { name: 'eu', size: 2 },
    ],
    maxUnavailable: '50%',
    leaseExpiryMs: 30_000,
  },
};

test('a host that drains takes a lease in each of its groups first, capped per group', () => {
  const plan = planRotation(desired, { provider: 'haproxy', state: 'ready' }, [recreate('web')]);
  assert.deepEqual(plan?.lease, {
    scope: 'shop/staging',
    groups: [
      { name: 'app_server', cap: 2 },
      { name: 'eu', cap: 1 },
    ],
    expiryMs: 30_000,
    cause:
      'max_unavailable 50%: at most 2 of 4 hosts of app_server, 1 of 2 hosts of eu out of rotation at once (shop/staging)',
  });
  assert.equal(plan?.alreadyOut, undefined);
});

test('no drain, no lease: a rejoin after an interrupted apply puts the host back without one', () => {
  const plan = planRotation(desired, { provider: 'haproxy', state: 'maint', leftover: 'ready' }, [
    recreate('worker', false),
  ]);
  assert.equal(plan?.drain, undefined);
  assert.equal(plan?.lease, undefined);
  assert.equal(plan?.alreadyOut, true);
  assert.equal(plan?.rejoin?.kind, 'undrain');
  // Draining again from there takes a lease, and the plan says the host is out already.
  const again = planRotation(desired, { provider: 'haproxy', state: 'maint', leftover: 'ready' }, [
    recreate('web'),
  ]);
  assert.ok(again?.lease && again.drain && again.alreadyOut);
});

test('caps: a number as is, a percentage of the group rounded down, never below 1', () => {
  assert.equal(leaseCap(1, 10), 1);
  assert.equal(leaseCap(3, 2), 3);
  assert.equal(leaseCap('25%', 10), 2);
  assert.equal(leaseCap('25%', 3), 1);
  assert.equal(leaseCap('100%', 7), 7);
  assert.equal(leaseCap('1%', 1), 1);
});
