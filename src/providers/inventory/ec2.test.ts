// @slow: loads the AWS SDK (seconds to import) and reads real git repositories; the EC2 API is a local fake.
/**
 * The aws-ec2 inventory source, through the real AWS SDK, against a local fake of the documented
 * EC2 Query API call it makes (test/world/ec2.ts: DescribeInstances with filters and NextToken
 * pagination, in EC2's XML), reached through the SDK's standard endpoint override
 * AWS_ENDPOINT_URL. It is not AWS: no request leaves loopback, and the instance metadata service
 * is switched off.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startEc2, type Ec2Fake, type FakeInstance } from '../../../test/world/ec2.js';
import { createRepo } from '../../../test/support/repo.js';
import { loadStateRepo } from '../../config/load.js';
import { desiredForHost } from '../../config/select.js';
import { loadRepo } from '../../host/desired.js';
import { ExternalError } from '../../model/errors.js';
import { inventoryContract } from './contract.js';
import { ec2Plugin, groupName, instancesToInventory } from './ec2.js';
import { getInventorySource, validateInventory } from './registry.js';
import type { InventoryContext } from './types.js';

let fake: Ec2Fake;
/** A loopback port where nothing listens: an unreachable endpoint. */
let closedPort: number;

const FLEET: FakeInstance[] = [
  { id: 'i-0a1', privateIp: '10.0.1.11', tags: { Name: 'app-1', Type: 'app_server', Env: 'staging' } },
  { id: 'i-0a2', privateIp: '10.0.1.12', tags: { Name: 'app-2', Type: 'app_server', Env: 'staging' } },
  {
    id: 'i-0b1',
    privateIp: '10.0.2.5',
    publicIp: '54.0.0.5',
    privateDns: 'ip-10-0-2-5.eu-west-1.compute.internal',
    tags: { Name: 'proxy-1', Type: 'proxy_server', Env: 'staging' },
  },
  // Not ours: another environment, a stopped instance of ours, one without tags.
  { id: 'i-0c1', privateIp: '10.9.0.1', tags: { Name: 'prod-app-1', Type: 'app_server', Env: 'production' } },
  {
    id: 'i-0c2',
    state: 'stopped',
    privateIp: '10.0.1.13',
    tags: { Name: 'app-3', Type: 'app_server', Env: 'staging' },
  },
  { id: 'i-0c3', privateIp: '10.0.3.1' },
];

const SETTINGS = {
  region: 'eu-west-1',
  filters: { 'tag:Env': 'staging' },
  group_by: 'tag:Type',
  name: 'tag:Name',
};

before(async () => {
  fake = await startEc2({ instances: FLEET, pageSize: 2 });
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  closedPort = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  // The SDK's own configuration: its standard endpoint override and credential chain (the
  // environment first), no shared files, no instance metadata service.
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: fake.url,
    AWS_ACCESS_KEY_ID: fake.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: fake.credentials.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/nonexistent/berth-test/config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/berth-test/credentials',
  });
  delete process.env.AWS_REGION;
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_ENDPOINT_URL_EC2;
});
after(async () => fake?.stop());

/** Few, quick retries: a test of an unreachable endpoint must not wait out the defaults. */
const source = () => ec2Plugin({ requestTimeoutMs: 3_000, maxAttempts: 2 }).create();
const ctx = (
  settings: Record<string, unknown> = SETTINGS,
  file?: InventoryContext['file'],
): InventoryContext => (file ? { settings, file } : { settings });

inventoryContract('aws-ec2', {
  source,
  fleet: () => ctx(),
  expected: {
    'app-1': { address: '10.0.1.11', groups: ['app_server'] },
    'app-2': { address: '10.0.1.12', groups: ['app_server'] },
    'proxy-1': { address: '10.0.2.5', groups: ['proxy_server'] },
  },
  broken: () => ctx({ ...SETTINGS, endpoint: `http://127.0.0.1:${closedPort}` }),
});

describe('aws-ec2 against the local EC2 fake', () => {
  test('filters are sent as written, running only by default, and every page is read', async () => {
    const from = fake.calls.length;
    const inv = await source().load(ctx());
    const calls = fake.calls.slice(from);
    assert.ok(calls.length >= 2, `paginated: ${calls.length} call(s)`);
    assert.ok(calls.every((c) => c.action === 'DescribeInstances' && c.status === 200));
    assert.equal(calls[0]!.params['Filter.1.Name'], 'tag:Env');
    assert.equal(calls[0]!.params['Filter.1.Value.1'], 'staging');
    assert.equal(calls[0]!.params['Filter.2.Name'], 'instance-state-name');
    assert.equal(calls[0]!.params['Filter.2.Value.1'], 'running');
    assert.ok(
      !calls[0]!.params.NextToken && calls[1]!.params.NextToken,
      'the second page asks with NextToken',
    );
    assert.deepEqual(
      inv.hosts.map((h) => h.name),
      ['app-1', 'app-2', 'proxy-1'],
    );
    assert.deepEqual(inv.hosts[2]!.vars, {
      instance_id: 'i-0b1',
      instance_type: 't3.micro',
      availability_zone: 'eu-west-1a',
      private_ip: '10.0.2.5',
      public_ip: '54.0.0.5',
      private_dns: 'ip-10-0-2-5.eu-west-1.compute.internal',
      tags: { Name: 'proxy-1', Type: 'proxy_server', Env: 'staging' },
    });
  });

  test('address and name as configured; a filter on states replaces the running-only default', async () => {
    const inv = await source().load(
      ctx({ filters: { 'tag:Type': 'proxy_server' }, region: 'eu-west-1', address: 'public_ip' }),
    );
    assert.deepEqual(
      inv.hosts.map((h) => [h.name, h.address, h.groups]),
      [['i-0b1', '54.0.0.5', []]],
    );
    const dns = await source().load(
      ctx({ ...SETTINGS, address: 'private_dns', filters: { 'tag:Name': 'proxy-*' } }),
    );
    assert.equal(dns.hosts[0]!.address, 'ip-10-0-2-5.eu-west-1.compute.internal');
    const all = await source().load(
      ctx({ ...SETTINGS, filters: { 'tag:Env': 'staging', 'instance-state-name': ['running', 'stopped'] } }),
    );
    assert.deepEqual(
      all.hosts.map((h) => h.name),
      ['app-1', 'app-2', 'app-3', 'proxy-1'],
    );
    // An instance without the public address asked for stops berth, naming it.
    await assert.rejects(
      source().load(ctx({ ...SETTINGS, address: 'public_ip' })),
      /instance i-0a1 \(app-1\) has no public ip/,
    );
  });

  test("inventory.yaml's groups, ssh and host vars join the discovered hosts", async () => {
    const r = loadStateRepo({
      files: new Map([
        [
          'berth.yaml',
          "inventory: { source: aws-ec2, region: eu-west-1, group_by: 'tag:Type', name: 'tag:Name' }\n",
        ],
        [
          'inventory.yaml',
          [
            'groups:',
            '  app_server: { vars: { tier: app } }',
            'hosts:',
            '  app-2: { vars: { weight: 5, tier: special } }',
            'ssh: { user: admin, bastion: admin@bastion.example.com }',
            '',
          ].join('\n'),
        ],
        [
          'services/squid.yaml',
          [
            'image: squid:1',
            'hosts: [proxy_server]',
            'env_vars:',
            `  PEERS: "{{ groups.app_server | map(attribute='address') | join(',') }}"`,
            '  TIER: \'{{ host.vars.tier | default("none") }}\'',
            '',
          ].join('\n'),
        ],
      ]),
      ref: 'main',
    });
    assert.ok(r.repo, JSON.stringify(r.issues));
    const inv = await source().load(ctx({ ...SETTINGS }, r.repo.inventory));
    assert.deepEqual(inv.ssh, { user: 'admin', bastion: 'admin@bastion.example.com' });
    assert.deepEqual(inv.groups.app_server, { vars: { tier: 'app' } });
    assert.deepEqual(inv.groups.proxy_server, { vars: {} });
    assert.equal(inv.hosts.find((h) => h.name === 'app-2')!.vars.weight, 5);
    // The reference setup's squid cache_peer list: a projection of a discovered group.
    const squid = desiredForHost({ ...r.repo, inventory: inv }, 'proxy-1').services[0]!;
    assert.equal(squid.env.PEERS, '10.0.1.11,10.0.1.12');
    assert.equal(squid.env.TIER, 'none');
    const app2 = desiredForHost({ ...r.repo, inventory: inv }, 'app-2');
    assert.deepEqual(app2.services, [], 'squid runs only on proxy_server');
  });

  test('throttling is retried by the SDK; then the answer is complete', async () => {
    fake.failNext(1, 503, 'RequestLimitExceeded');
    const inv = await ec2Plugin({ requestTimeoutMs: 3_000, maxAttempts: 3 }).create().load(ctx());
    assert.equal(inv.hosts.length, 3);
    assert.ok(fake.calls.some((c) => c.code === 'RequestLimitExceeded'));
  });

  test('failures reject with what AWS or the network said, and no credential in the message', async () => {
    fake.failNext(5, 503, 'RequestLimitExceeded');
    await assert.rejects(source().load(ctx()), (e: Error) => {
      assert.ok(e instanceof ExternalError);
      assert.match(
        e.message,
        /^aws-ec2: DescribeInstances in eu-west-1 at http:\/\/127\.0\.0\.1:\d+ failed: RequestLimitExceeded/,
      );
      return true;
    });
    fake.failNext(0, 503, 'x');
    const saved = process.env.AWS_ACCESS_KEY_ID;
    process.env.AWS_ACCESS_KEY_ID = 'AKIAWRONGWRONGWRONG1';
    try {
      await assert.rejects(source().load(ctx()), (e: Error) => {
        assert.match(e.message, /AuthFailure: AWS was not able to validate/);
        assert.ok(
          !e.message.includes('AKIAWRONGWRONGWRONG1') &&
            !e.message.includes(fake.credentials.secretAccessKey),
        );
        return true;
      });
    } finally {
      process.env.AWS_ACCESS_KEY_ID = saved;
    }
    await assert.rejects(
      source().load(ctx({ ...SETTINGS, endpoint: `http://127.0.0.1:${closedPort}` })),
      new RegExp(`at http://127\\.0\\.0\\.1:${closedPort} failed: cannot connect \\(ECONNREFUSED\\)`),
    );
    await assert.rejects(source().load(ctx({ filters: {} })), /no AWS region/);
    await assert.rejects(
      source().load(ctx({ ...SETTINGS, filters: { 'vpc-idd': 'x' } })),
      /InvalidParameterValue: The filter 'vpc-idd' is invalid/,
    );
  });
});

test('instances to hosts: unique, valid names; groups from tag values as Ansible makes them', () => {
  const s = { groupBy: ['tag:Type', 'instance_type'], name: 'tag:Name', address: 'private_ip' as const };
  const inv = instancesToInventory(
    [
      {
        InstanceId: 'i-2',
        PrivateIpAddress: '10.0.0.2',
        InstanceType: 'm5.large',
        Tags: [{ Key: 'Type', Value: 'app server' }],
      },
      { InstanceId: 'i-1', PrivateIpAddress: '10.0.0.1', Tags: [{ Key: 'Name', Value: 'web-1' }] },
    ],
    s,
    undefined,
  );
  assert.deepEqual(
    inv.hosts.map((h) => [h.name, h.groups]),
    [
      ['i-2', ['app_server', 'm5.large']],
      ['web-1', []],
    ],
  );
  assert.equal(groupName('  '), undefined);
  assert.equal(groupName('-x y'), 'x_y');
  const twins = [
    { InstanceId: 'i-1', PrivateIpAddress: '10.0.0.1', Tags: [{ Key: 'Name', Value: 'web' }] },
    { InstanceId: 'i-2', PrivateIpAddress: '10.0.0.2', Tags: [{ Key: 'Name', Value: 'web' }] },
  ];
  assert.throws(
    () => instancesToInventory(twins, s, undefined),
    /instances i-1 and i-2 are both named "web"/,
  );
  assert.throws(
    () =>
      instancesToInventory(
        [{ InstanceId: 'i-1', PrivateIpAddress: '10.0.0.1', Tags: [{ Key: 'Name', Value: 'web 1' }] }],
        s,
        undefined,
      ),
    /instance i-1: its tag:Name "web 1" is not a valid host name/,
  );
});

test('settings are checked with their path; aws-ec2 is in the registry', () => {
  assert.equal(getInventorySource({ source: 'aws-ec2', region: 'eu-west-1' }).name, 'aws-ec2');
  assert.deepEqual(
    validateInventory({
      source: 'aws-ec2',
      region: 'europe',
      filters: ['tag:Env'],
      group_by: ['tag:Type', 'owner'],
      name: 'hostname',
      address: 'ipv6',
      endpoint: 'ftp://x',
      tags: true,
    }).map((i) => `${i.path}: ${i.message}`),
    [
      'inventory.tags: unknown setting (aws-ec2 takes region, filters, group_by, name, address, endpoint)',
      'inventory.region: "europe" is not an AWS region name (e.g. eu-west-1)',
      "inventory.filters: expected a map of DescribeInstances filters, e.g. { 'tag:Env': staging }",
      'inventory.group_by[1]: expected tag:KEY, instance_type or availability_zone',
      'inventory.name: expected tag:KEY or one of instance_id, private_dns, private_ip',
      'inventory.address: expected one of private_ip, public_ip, private_dns',
      'inventory.endpoint: expected an http:// or https:// URL',
    ],
  );
});

test('with a discovering source, inventory.yaml may not list addresses or groups of hosts', () => {
  const r = loadStateRepo({
    files: new Map([
      ['berth.yaml', 'inventory: { source: aws-ec2, region: eu-west-1 }\n'],
      [
        'inventory.yaml',
        'hosts:\n  app-1: { address: 10.0.0.1, vars: { a: 1 } }\n  app-2: { groups: [x] }\n',
      ],
    ]),
    ref: 'main',
  });
  assert.deepEqual(
    r.issues.map((i) => `${i.file}:${i.line}:${i.col} ${i.message}`),
    [
      'inventory.yaml:2:12 the hosts come from inventory source "aws-ec2" (berth.yaml), which sets their address; here a host may only have vars',
      'inventory.yaml:3:12 the hosts come from inventory source "aws-ec2" (berth.yaml), which sets their groups; here a host may only have vars',
    ],
  );
});

test('the pipeline loads the EC2 inventory once with the repo; an unreachable endpoint stops it', async () => {
  const repo = createRepo({
    'berth.yaml':
      "inventory: { source: aws-ec2, region: eu-west-1, filters: { 'tag:Env': staging }, group_by: 'tag:Type', name: 'tag:Name' }\n",
    'services/web.yaml': 'image: web:1\nhosts: [app_server]\n',
  });
  try {
    const source = { repo: repo.dir, env: 'main', cacheDir: '/tmp/berth-unused-cache' };
    const loaded = await loadRepo(source);
    assert.deepEqual(
      loaded.repo.inventory?.hosts.map((h) => h.name),
      ['app-1', 'app-2', 'proxy-1'],
    );
    const saved = process.env.AWS_ENDPOINT_URL;
    process.env.AWS_ENDPOINT_URL = `http://127.0.0.1:${closedPort}`;
    try {
      await assert.rejects(
        loadRepo(source),
        /aws-ec2: DescribeInstances in eu-west-1 at http:\/\/127\.0\.0\.1:\d+ failed: cannot connect/,
      );
    } finally {
      process.env.AWS_ENDPOINT_URL = saved;
    }
  } finally {
    repo.remove();
  }
});
