// @slow: starts a real HAProxy (test/world) behind the local fake of the cloud API.
/**
 * The octavia provider against local fakes of the documented OpenStack APIs it calls (Keystone v3
 * tokens and the Octavia v2 pool, member and load balancer endpoints: test/world/octavia.ts),
 * with a real HAProxy as the data plane the fake drives, as Octavia's amphorae do. They are not
 * OpenStack: they answer what the API references say, including 409 while PENDING_UPDATE,
 * members in ERROR and members that do not exist yet.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { startHaproxy, type BackendServer, type HaproxyHandle } from '../../../test/world/haproxy.js';
import { startOctavia, type OctaviaFake } from '../../../test/world/octavia.js';
import { ConfigError, ExternalError } from '../../model/errors.js';
import { drainContract } from './contract.js';
import { memberState, OctaviaProvider, rememberedWeight, withWeightTag } from './octavia.js';
import type { CloudEnv } from './openstack.js';
import { validateLoadBalancer } from './registry.js';
import type { DrainTarget, LbState } from './types.js';

let hap: HaproxyHandle;
let fake: OctaviaFake;
let dir: string;
let s1: BackendServer;
let s2: BackendServer;
/** The environment the provider reads clouds.yaml and OS_* from (never the machine's own). */
const env: Record<string, string | undefined> = {};
const cloudEnv: CloudEnv = {
  env,
  get cwd() {
    return dir;
  },
  get home() {
    return dir;
  },
  read(file) {
    try {
      return readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
  },
};

before(async () => {
  hap = await startHaproxy();
  [s1, s2] = hap.servers as [BackendServer, BackendServer];
  fake = await startOctavia({
    haproxy: hap,
    members: [
      { address: s1.address, port: s1.port, weight: 5, name: 's1' },
      { address: s2.address, port: s2.port, weight: 5, name: 's2' },
    ],
  });
  dir = mkdtempSync(path.join(os.tmpdir(), 'berth-octavia-'));
  env.OS_CLIENT_CONFIG_FILE = fake.writeClouds(dir);
});
after(async () => {
  await fake?.stop();
  await hap?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const fast = { cloudEnv, pollIntervalMs: 50, backoffMs: 20, maxBackoffMs: 100, requestTimeoutMs: 3_000 };
const provider = new OctaviaProvider(fast);
const target = (settings: Record<string, unknown> = {}, server = () => s1): DrainTarget => ({
  host: server().name,
  address: server().address,
  settings: {
    cloud: 'password',
    pool: 'app-pool',
    protocol_port: server().port,
    drain_timeout: '5s',
    ...settings,
  },
});
const stateOf = (s: BackendServer): LbState => {
  const m = fake.member(s.address, s.port);
  return m ? memberState(m) : 'unknown';
};
const setState = async (s: BackendServer, state: Exclude<LbState, 'unknown'>) => {
  const fields = {
    ready: { weight: 5, admin_state_up: true },
    drain: { weight: 0, admin_state_up: true },
    maint: { weight: 5, admin_state_up: false },
  }[state];
  await fake.setMember(s.address, s.port, { ...fields, tags: [], provisioning_status: 'ACTIVE' });
};
/** Calls that change something, as `METHOD path-tail status`. */
const changes = (from = 0) =>
  fake.calls
    .slice(from)
    .filter((c) => c.method !== 'GET' && !c.path.includes('/auth/tokens'))
    .map((c) => ({ method: c.method, status: c.status, body: c.body }));

drainContract(provider, () => ({
  target: () => target(),
  observe: async () => stateOf(s1),
  set: (state) => setState(s1, state),
  hold: () => hap.hold('s1'),
  async reaches() {
    for (let i = 0; i < 4; i++) if ((await hap.request('/')).body === 's1') return true;
    return false;
  },
  broken: () => [
    {
      what: 'wrong pool',
      target: target({ pool: 'nope' }),
      mentions: ['pool "nope" not found', `${s1.address}:${s1.port}`],
    },
    {
      what: 'Keystone unreachable',
      target: target({ cloud: 'down' }),
      mentions: ['127.0.0.1:1', 'ECONNREFUSED'],
    },
    {
      what: 'wrong password',
      target: target({ cloud: 'badpass' }),
      mentions: ['HTTP 401', 'user berth-deployer', 'cloud "badpass"'],
    },
    {
      what: 'unknown cloud',
      target: target({ cloud: 'staging' }),
      mentions: ['"staging" is not in', 'password, appcred'],
    },
  ],
  grace: 'timeout',
}));

describe('octavia provider', () => {
  beforeEach(async () => {
    fake.setLoadBalancerStatus('ACTIVE');
    await setState(s1, 'ready');
    await setState(s2, 'ready');
  });

  test('drain keeps the weight on the member; undrain puts it back; never a DELETE', async () => {
    await fake.setMember(s1.address, s1.port, { weight: 7, tags: ['team:web'] });
    const from = fake.calls.length;
    await provider.drain(target(), { timeoutMs: 200 });
    assert.deepEqual(fake.member(s1.address, s1.port)?.tags, ['team:web', 'berth:weight=7']);
    await provider.undrain(target());
    const m = fake.member(s1.address, s1.port)!;
    assert.deepEqual([m.weight, m.admin_state_up, m.tags], [7, true, ['team:web']]);
    assert.deepEqual(changes(from), [
      { method: 'PUT', status: 200, body: { member: { weight: 0, tags: ['team:web', 'berth:weight=7'] } } },
      { method: 'PUT', status: 200, body: { member: { admin_state_up: false } } },
      {
        method: 'PUT',
        status: 200,
        body: { member: { weight: 7, admin_state_up: true, tags: ['team:web'] } },
      },
    ]);
    assert.equal(await hap.adminState('s1'), 0);
    // A `weight` setting wins over the kept one.
    await provider.drain(target(), { timeoutMs: 0 });
    await provider.undrain(target({ weight: 3 }));
    assert.equal(fake.member(s1.address, s1.port)?.weight, 3);
    assert.deepEqual(fake.dataPlaneErrors, [], 'HAProxy followed every change');
  });

  test('a member that does not exist yet: status unknown, drain does nothing, undrain creates it', async () => {
    await fake.removeMember(s2.address, s2.port);
    const t = target({ subnet_id: 'a1b2c3' }, () => s2);
    const from = fake.calls.length;
    assert.equal(await provider.status(t), 'unknown');
    const progress: string[] = [];
    await provider.drain(t, { timeoutMs: 5_000, onProgress: (m) => progress.push(m) });
    assert.match(progress.join('\n'), /no such member, so nothing to drain/);
    assert.deepEqual(changes(from), []);
    // Nothing listens for s2 yet, so all traffic goes to s1.
    for (let i = 0; i < 2; i++) assert.equal((await hap.request('/')).body, 's1');
    await provider.undrain(t);
    assert.deepEqual(changes(from), [
      {
        method: 'POST',
        status: 201,
        body: {
          member: {
            address: s2.address,
            protocol_port: s2.port,
            weight: 1,
            admin_state_up: true,
            name: 's2',
            subnet_id: 'a1b2c3',
          },
        },
      },
    ]);
    assert.equal(await provider.status(t), 'ready');
    const bodies = new Set<string>();
    for (let i = 0; i < 4; i++) bodies.add((await hap.request('/')).body);
    assert.deepEqual([...bodies].sort(), ['s1', 's2'], 'the created member takes traffic');
    await provider.undrain(t);
    assert.equal(changes(from).length, 1, 'a second undrain changes nothing');
  });

  test('409 while the load balancer is PENDING_UPDATE: wait for ACTIVE and send again', async () => {
    fake.busy(400);
    const progress: string[] = [];
    const from = fake.calls.length;
    await provider.drain(target(), { timeoutMs: 0, onProgress: (m) => progress.push(m) });
    assert.match(progress.join('\n'), /load balancer .* is PENDING_UPDATE, waiting/);
    assert.equal(stateOf(s1), 'maint');
    // A change that slips in between our look and our PUT: Octavia answers 409.
    fake.conflictNext(2);
    await provider.undrain(target());
    assert.equal(stateOf(s1), 'ready');
    const puts = changes(from).map((c) => `${c.method} ${c.status}`);
    assert.deepEqual(puts, ['PUT 200', 'PUT 200', 'PUT 409', 'PUT 409', 'PUT 200']);
    assert.ok(fake.calls.slice(from).every((c) => c.method !== 'DELETE'));
  });

  test('a busy load balancer past provisioning_timeout fails clearly', async () => {
    await setState(s1, 'maint');
    fake.setLoadBalancerStatus('PENDING_UPDATE');
    try {
      await assert.rejects(provider.undrain(target({ provisioning_timeout: '300ms' })), (e: unknown) => {
        assert.ok(e instanceof ExternalError);
        assert.match(e.message, /still PENDING_UPDATE after the provisioning_timeout/);
        return true;
      });
    } finally {
      fake.setLoadBalancerStatus('ACTIVE');
    }
  });

  test('a load balancer or member in ERROR fails clearly and leaves the host as it was', async () => {
    fake.setLoadBalancerStatus('ERROR');
    let from = fake.calls.length;
    await assert.rejects(provider.drain(target(), { timeoutMs: 0 }), (e: unknown) => {
      assert.ok(e instanceof ExternalError);
      assert.match(
        e.message,
        /^octavia: member .* in pool app-pool: load balancer .* is ERROR; nothing was changed/,
      );
      return true;
    });
    assert.deepEqual(changes(from), []);
    assert.equal(stateOf(s1), 'ready');
    fake.setLoadBalancerStatus('ACTIVE');

    await fake.setMember(s1.address, s1.port, { provisioning_status: 'ERROR' });
    from = fake.calls.length;
    for (const call of [
      () => provider.status(target()),
      () => provider.drain(target(), { timeoutMs: 0 }),
      () => provider.undrain(target()),
      () => provider.restore(target(), 'maint'),
    ]) {
      await assert.rejects(call(), /member .* is in provisioning_status ERROR; an operator must repair it/);
    }
    assert.deepEqual(changes(from), []);
    assert.equal(await hap.adminState('s1'), 0, 'still in rotation');
  });

  test('a change that leaves the member in ERROR is reported as a failure', async () => {
    await setState(s1, 'maint');
    fake.breakNextChange();
    await assert.rejects(
      provider.undrain(target()),
      /went to provisioning_status ERROR after restoring weight/,
    );
  });

  test('throttling (429) and 5xx are retried with backoff; a lasting 5xx fails naming it', async () => {
    fake.failNext(2, 429);
    assert.equal(await provider.status(target()), 'ready');
    fake.failNext(3, 503);
    assert.equal(await provider.status(target()), 'ready');
    fake.failNext(50, 503);
    try {
      await assert.rejects(provider.status(target()), /HTTP 503: Service Unavailable/);
    } finally {
      fake.failNext(0, 503);
    }
  });

  test('application credentials, the OS_* variables and the internal interface work too', async () => {
    const viaAppCred = target({ cloud: 'appcred', interface: 'internal' });
    const from = fake.calls.length;
    await provider.drain(viaAppCred, { timeoutMs: 0 });
    await provider.undrain(viaAppCred);
    assert.ok(
      fake.calls
        .slice(from)
        .filter((c) => !c.path.includes('/auth/'))
        .every((c) => c.path.startsWith('/lb-internal/')),
    );
    const c = fake.credentials;
    const osEnv: CloudEnv = {
      ...cloudEnv,
      env: {
        OS_AUTH_URL: fake.authUrl,
        OS_USERNAME: c.username,
        OS_PASSWORD: c.password,
        OS_PROJECT_NAME: c.project,
        OS_USER_DOMAIN_NAME: c.userDomain,
        OS_PROJECT_DOMAIN_NAME: c.projectDomain,
        OS_REGION_NAME: fake.region,
      },
    };
    const p = new OctaviaProvider({ ...fast, cloudEnv: osEnv });
    const { cloud: _cloud, ...settings } = target().settings;
    const t = { ...target(), settings };
    assert.equal(await p.status(t), 'ready');
    await assert.rejects(
      p.status({ ...t, settings: { ...settings, region: 'RegionTwo' } }),
      /no public load-balancer endpoint in region RegionTwo in the catalog \(endpoints: public@RegionOne, internal@RegionOne\)/,
    );
  });

  test('no password, secret or token in any message', async () => {
    const c = fake.credentials;
    const messages: string[] = [];
    const collect = (p: Promise<unknown>) =>
      p.then(
        () => assert.fail('expected a failure'),
        (e: Error) => messages.push(e.message),
      );
    await collect(provider.status(target({ cloud: 'badpass' })));
    await collect(provider.status(target({ pool: 'nope' })));
    fake.failNext(50, 500);
    await collect(provider.drain(target(), { timeoutMs: 0 }));
    fake.failNext(0, 500);
    assert.ok(fake.tokens.length > 0);
    for (const m of messages) {
      for (const secret of [c.password, c.appCredentialSecret, ...fake.tokens]) {
        assert.ok(!m.includes(secret), `"${m}" holds a credential`);
      }
    }
  });

  test('each HTTP call is bounded in time: a Keystone that never answers fails', async () => {
    const conns = new Set<net.Socket>();
    const silent = net.createServer((s) => conns.add(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const p = new OctaviaProvider({
        ...fast,
        requestTimeoutMs: 200,
        attempts: 2,
        cloudEnv: {
          ...cloudEnv,
          env: { OS_AUTH_URL: `http://127.0.0.1:${port}/v3`, OS_USERNAME: 'u', OS_PASSWORD: 'p-secret' },
        },
      });
      const { cloud: _cloud, ...settings } = target().settings;
      const started = performance.now();
      await assert.rejects(p.status({ ...target(), settings }), (e: unknown) => {
        assert.ok(e instanceof ExternalError);
        assert.match(
          e.message,
          new RegExp(
            `cannot reach Keystone: POST http://127.0.0.1:${port}/v3/auth/tokens: no answer within 200 ms`,
          ),
        );
        return true;
      });
      assert.ok(performance.now() - started < 10_000);
    } finally {
      for (const s of conns) s.destroy();
      silent.close();
    }
  });

  test('rendered settings are checked before any call, naming the setting and the host', async () => {
    const from = fake.calls.length;
    await assert.rejects(provider.status(target({ protocol_port: '80a' })), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(
        e.message,
        /load_balancer\.protocol_port: expected an integer from 1 to 65535 \(for host s1\)/,
      );
      return true;
    });
    await assert.rejects(
      provider.status({ host: 'h9', settings: { pool: 'app-pool', protocol_port: 80 } }),
      /load_balancer\.address: required: the host has no address in the inventory .*\(for host h9\)/,
    );
    assert.equal(fake.calls.length, from);
  });
});

describe('octavia settings and helpers', () => {
  test('validate: required keys, ports, addresses, interfaces; templates wait for the host', () => {
    const issues = (block: Record<string, unknown>, rendered = false) =>
      validateLoadBalancer({ provider: 'octavia', ...block }, { rendered }).map(
        (i) => `${i.path}: ${i.message}`,
      );
    assert.deepEqual(
      issues({
        cloud: 'mycloud',
        pool: 'app-pool',
        address: '{{ host.address }}',
        protocol_port: 443,
        subnet_id: '5f1c',
        drain_timeout: '30s',
      }),
      [],
    );
    assert.deepEqual(issues({ pool: 'p', protocol_port: '{{ host.vars.port }}' }), []);
    assert.deepEqual(issues({ pool: 'p', protocol_port: '{{ host.vars.port }}' }, true), [
      'load_balancer.protocol_port: expected an integer from 1 to 65535',
    ]);
    assert.deepEqual(
      issues({
        pol: 'x',
        address: 'app-1',
        protocol_port: 0,
        weight: 0,
        interface: 'private',
        drain_timeout: 'long',
        cloud: 3,
      }),
      [
        'load_balancer.pol: unknown setting; known: cloud, pool, address, protocol_port, subnet_id, weight, interface, region, drain_timeout, provisioning_timeout',
        'load_balancer.cloud: expected a non-empty string',
        'load_balancer.pool: required by the octavia provider',
        'load_balancer.address: "app-1" is not an IP address',
        'load_balancer.protocol_port: expected an integer from 1 to 65535',
        'load_balancer.weight: expected an integer from 1 to 256',
        'load_balancer.interface: expected public, internal or admin',
        'load_balancer.drain_timeout: invalid duration "long": use a number with a unit, e.g. 500ms, 5s, 1m, 1m30s',
      ],
    );
    assert.deepEqual(issues({ pool: 'p', protocol_port: '8080', address: '::1' }, true), []);
  });

  test('member states and the kept weight', () => {
    assert.equal(memberState({ admin_state_up: true, weight: 3 }), 'ready');
    assert.equal(memberState({ admin_state_up: true, weight: 0 }), 'drain');
    assert.equal(memberState({ admin_state_up: false, weight: 0 }), 'maint');
    assert.equal(rememberedWeight(['a', 'berth:weight=12']), 12);
    assert.equal(rememberedWeight(undefined), undefined);
    assert.deepEqual(withWeightTag(['a', 'berth:weight=12'], 4), ['a', 'berth:weight=4']);
    assert.deepEqual(withWeightTag(['a', 'berth:weight=12']), ['a']);
  });

  test('a clouds.yaml found on the SDK search path works without OS_CLIENT_CONFIG_FILE', async () => {
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'berth-octavia-cwd-'));
    try {
      writeFileSync(path.join(cwd, 'clouds.yaml'), readFileSync(env.OS_CLIENT_CONFIG_FILE!, 'utf8'));
      const p = new OctaviaProvider({ ...fast, cloudEnv: { ...cloudEnv, env: {}, cwd, home: cwd } });
      assert.equal(await p.status(target()), 'ready');
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});
