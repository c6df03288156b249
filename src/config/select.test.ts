import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../model/errors.js';
import type { StateRepo } from '../model/service.js';
import { loadStateRepo } from './load.js';
import { desiredForHost } from './select.js';

function repo(files: Record<string, string>): StateRepo {
  const r = loadStateRepo({ files: new Map(Object.entries(files)), ref: 'production', commit: 'c0ffee' });
  assert.equal(r.repo !== undefined, true, JSON.stringify(r.issues));
  return r.repo!;
}

const SERVICES = {
  'berth.yaml': 'env_dir: /srv/env\n',
  'services/api.yaml': 'image: api\nhosts: [app_server]\n',
  'services/proxy.yaml': 'image: haproxy\nhosts: [proxy-01]\n',
  'services/node-exporter.yaml': 'image: prom/node-exporter\n',
};
const INVENTORY = [
  'hosts:',
  '  app-1: { groups: [app_server] }',
  '  proxy-01: { groups: [proxy_server] }',
  '  db-1:',
  '',
].join('\n');

const names = (r: { services: { name: string }[] }) => r.services.map((s) => s.name);

test('with an inventory: services whose hosts: name the host or one of its groups, or have no hosts:', () => {
  const r = repo({ ...SERVICES, 'inventory.yaml': INVENTORY });
  const app = desiredForHost(r, 'app-1');
  assert.deepEqual(names(app), ['api', 'node-exporter']);
  assert.deepEqual(
    { ...app, services: [] },
    {
      commit: 'c0ffee',
      ref: 'production',
      host: 'app-1',
      // An inventory host without an address is reached by its name.
      address: 'app-1',
      envDir: '/srv/env',
      services: [],
      env: 'production',
      rollout: {
        scope: 'production',
        groups: [{ name: 'app_server', size: 1 }],
        maxUnavailable: 1,
        leaseExpiryMs: 30_000,
      },
    },
  );
  assert.deepEqual(names(desiredForHost(r, 'proxy-01')), ['node-exporter', 'proxy']);
  assert.deepEqual(names(desiredForHost(r, 'db-1')), ['node-exporter']);
});

test('with an inventory, the host must be named and known', () => {
  const r = repo({ ...SERVICES, 'inventory.yaml': INVENTORY });
  assert.throws(
    () => desiredForHost(r),
    (e: unknown) =>
      e instanceof UsageError &&
      e.message === 'this repo has an inventory; pass --host NAME (one of: app-1, db-1, proxy-01)',
  );
  assert.throws(
    () => desiredForHost(r, 'app-9'),
    (e: unknown) =>
      e instanceof UsageError &&
      e.message === 'host "app-9" is not in the inventory (known hosts: app-1, db-1, proxy-01)',
  );
});

test('without an inventory every service runs, with or without --host', () => {
  const r = repo(SERVICES);
  assert.deepEqual(names(desiredForHost(r)), ['api', 'node-exporter', 'proxy']);
  const d = desiredForHost(r, 'anything');
  assert.deepEqual(names(d), ['api', 'node-exporter', 'proxy']);
  assert.equal(d.host, 'anything');
  assert.equal(d.envDir, '/srv/env');
});

test('the load balancer is rendered for each host, with per-group and per-host overrides', () => {
  const r = repo({
    'berth.yaml': [
      'load_balancer:',
      '  provider: haproxy',
      '  socket: /run/haproxy/admin.sock',
      '  backend: app',
      '  server: "{{ host.name }}"',
      '  drain_timeout: 30s',
      '',
    ].join('\n'),
    'inventory.yaml': [
      'hosts:',
      '  app-1: { address: 10.0.1.11, groups: [app_server] }',
      '  app-2: { address: 10.0.1.12, groups: [app_server], vars: { load_balancer: { server: srv2 } } }',
      'groups:',
      '  app_server: { vars: { load_balancer: { backend: web } } }',
      '',
    ].join('\n'),
    'services/api.yaml': 'image: nginx\n',
  });
  assert.deepEqual(desiredForHost(r, 'app-1').loadBalancer, {
    provider: 'haproxy',
    settings: { socket: '/run/haproxy/admin.sock', backend: 'web', server: 'app-1', drain_timeout: '30s' },
  });
  assert.equal(desiredForHost(r, 'app-2').loadBalancer?.settings.server, 'srv2');
  assert.equal(desiredForHost(repo({ 'services/api.yaml': 'image: nginx\n' })).loadBalancer, undefined);
});

test("a host's leases: one per inventory group (or ungrouped), sized by the group, scoped by project and environment", () => {
  const r = repo({
    'services/api.yaml': 'image: api\n',
    'berth.yaml': 'project: shop\nrollout: { max_unavailable: 50%, lease_expiry: 5s }\n',
    'inventory.yaml': [
      'hosts:',
      '  app-1: { groups: [app_server, eu] }',
      '  app-2: { groups: [app_server] }',
      '  app-3: { groups: [app_server, eu] }',
      '  lone-1:',
      '  lone-2:',
      '',
    ].join('\n'),
  });
  assert.deepEqual(desiredForHost(r, 'app-1', { env: 'staging' }).rollout, {
    scope: 'shop/staging',
    groups: [
      { name: 'app_server', size: 3 },
      { name: 'eu', size: 2 },
    ],
    maxUnavailable: '50%',
    leaseExpiryMs: 5_000,
  });
  assert.deepEqual(desiredForHost(r, 'lone-2').rollout?.groups, [{ name: 'ungrouped', size: 2 }]);
  // Without an inventory the host is alone in its group.
  assert.deepEqual(desiredForHost(repo(SERVICES)).rollout?.groups, [{ name: 'ungrouped', size: 1 }]);
});
