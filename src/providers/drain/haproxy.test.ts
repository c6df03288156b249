// @slow: starts real components (test/world); `npm run test:unit` leaves it out.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startHaproxy, type HaproxyHandle } from '../../../test/world/haproxy.js';
import { ConfigError, ExternalError } from '../../model/errors.js';
import { drainContract } from './contract.js';
import { HaproxyProvider, lbStateOf, parseScur, parseServersState, parseSocket } from './haproxy.js';
import { validateLoadBalancer } from './registry.js';
import type { DrainTarget } from './types.js';

let lb: HaproxyHandle;
before(async () => (lb = await startHaproxy()));
after(async () => lb?.stop());

const provider = new HaproxyProvider({ pollIntervalMs: 100 });
const target = (settings: Record<string, unknown> = {}): DrainTarget => ({
  host: 's1',
  settings: { socket: lb.socket, backend: lb.backend, drain_timeout: '5s', ...settings },
});

drainContract(provider, () => ({
  target: () => target(),
  async observe() {
    return lbStateOf(await lb.adminState('s1'));
  },
  async set(state) {
    assert.equal((await lb.command(`set server app/s1 state ${state}`)).trim(), '');
  },
  hold: () => lb.hold('s1'),
  async reaches() {
    // Roundrobin over two servers: two requests reach each server in rotation once.
    for (let i = 0; i < 4; i++) if ((await lb.request('/')).body === 's1') return true;
    return false;
  },
  broken: () => [
    {
      what: 'wrong server',
      target: target({ server: 'nope' }),
      mentions: ['app/nope', lb.socket, 'No such server'],
    },
    { what: 'wrong backend', target: target({ backend: 'web' }), mentions: ['web', 's1', lb.socket] },
    {
      what: 'no socket',
      target: target({ socket: `${lb.dir}/missing.sock` }),
      mentions: [`${lb.dir}/missing.sock`, 'app', 's1', 'ENOENT'],
    },
    {
      what: 'closed TCP port',
      target: target({ socket: 'tcp://127.0.0.1:1' }),
      mentions: ['127.0.0.1:1', 'ECONNREFUSED', 'app', 's1'],
    },
  ],
}));

describe('haproxy provider', () => {
  test('the runtime API over TCP works as over the unix socket', async () => {
    for (const socket of [lb.tcpSocket, `tcp://${lb.tcpSocket}`]) {
      const t = target({ socket });
      await provider.drain(t, { timeoutMs: 1_000 });
      assert.equal(await provider.status(t), 'maint');
      assert.equal(lbStateOf(await lb.adminState('s1')), 'maint');
      await provider.undrain(t);
      assert.equal(await provider.status(t), 'ready');
    }
  });

  test('the server defaults to the host name, and the other server is never touched', async () => {
    const t: DrainTarget = { host: 's2', settings: { socket: lb.socket, backend: 'app' } };
    await provider.drain(t, { timeoutMs: 1_000 });
    assert.equal(lbStateOf(await lb.adminState('s2')), 'maint');
    assert.equal(lbStateOf(await lb.adminState('s1')), 'ready');
    // With s2 out, every request goes to s1: zero failed requests while a host is out.
    for (let i = 0; i < 4; i++) assert.deepEqual(await lb.request('/'), { status: 200, body: 's1' });
    await provider.undrain(t);
    assert.equal(lbStateOf(await lb.adminState('s2')), 'ready');
  });

  test('progress reports the sessions left while waiting, then the timeout', async () => {
    const held = await lb.hold('s1');
    assert.equal(await lb.sessions('s1'), 1);
    const progress: string[] = [];
    await provider.drain(target(), { timeoutMs: 300, onProgress: (m) => progress.push(m) });
    held.release();
    await held.done;
    assert.match(progress[0]!, /app\/s1 via .*admin\.sock: 1 session\(s\) left/);
    assert.match(progress.at(-1)!, /drain timeout after 300 ms with 1 session\(s\) open/);
    await provider.undrain(target());
  });

  test('a name that would smuggle a second command is refused before anything is sent', async () => {
    const t = target({ server: 's1; set server app/s2 state maint' });
    await assert.rejects(provider.drain(t, { timeoutMs: 100 }), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(
        e.message,
        /berth\.yaml load_balancer\.server: "s1; set.*is not an HAProxy name .*\(for host s1\)/,
      );
      return true;
    });
    assert.equal(lbStateOf(await lb.adminState('s2')), 'ready');
    assert.equal(lbStateOf(await lb.adminState('s1')), 'ready');
  });

  test('a runtime API that never answers is bounded by the command timeout', async () => {
    const net = await import('node:net');
    const conns = new Set<import('node:net').Socket>();
    const silent = net.createServer((c) => conns.add(c));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as { port: number }).port;
    try {
      const p = new HaproxyProvider({ commandTimeoutMs: 200 });
      const started = performance.now();
      await assert.rejects(p.status(target({ socket: `127.0.0.1:${port}` })), (e: unknown) => {
        assert.ok(e instanceof ExternalError);
        assert.match(e.message, new RegExp(`no answer from 127.0.0.1:${port} within 200 ms`));
        return true;
      });
      assert.ok(performance.now() - started < 10_000, 'bounded by the command timeout, not left hanging');
    } finally {
      for (const c of conns) c.destroy();
      silent.close();
    }
  });
});

describe('haproxy settings and parsing', () => {
  test('validate: required keys, names, socket forms, durations; templates wait for the host', () => {
    const issues = (block: Record<string, unknown>, rendered = false) =>
      validateLoadBalancer({ provider: 'haproxy', ...block }, { rendered }).map(
        (i) => `${i.path}: ${i.message}`,
      );
    assert.deepEqual(
      issues({ socket: '/run/haproxy/admin.sock', backend: 'app', server: '{{ host.name }}' }),
      [],
    );
    assert.deepEqual(issues({ socket: '/s', backend: 'app', server: '{{ host.name }}' }, true), [
      'load_balancer.server: "{{ host.name }}" is not an HAProxy name (letters, digits, - _ . : only)',
    ]);
    assert.deepEqual(issues({ backend: 'a b', drain_timeout: '30 s', sever: 'x', socket: 'http://x' }), [
      'load_balancer.sever: unknown setting; known: socket, backend, server, drain_timeout',
      'load_balancer.socket: expected a unix socket path or host:port (tcp://host:port), got "http://x"',
      'load_balancer.backend: "a b" is not an HAProxy name (letters, digits, - _ . : only)',
      'load_balancer.drain_timeout: invalid duration "30 s": use a number with a unit, e.g. 500ms, 5s, 1m, 1m30s',
    ]);
    assert.deepEqual(issues({}), [
      'load_balancer.socket: required by the haproxy provider',
      'load_balancer.backend: required by the haproxy provider',
    ]);
    assert.deepEqual(validateLoadBalancer({ provider: 'f5' }), [
      {
        path: 'load_balancer.provider',
        message: 'unknown load balancer provider "f5"; known providers: aws-elbv2, command, haproxy, octavia',
      },
    ]);
  });

  test('socket forms', () => {
    assert.deepEqual(parseSocket('/run/haproxy/admin.sock'), { path: '/run/haproxy/admin.sock' });
    assert.deepEqual(parseSocket('unix:///run/a.sock'), { path: '/run/a.sock' });
    assert.deepEqual(parseSocket('tcp://127.0.0.1:9999'), { host: '127.0.0.1', port: 9999 });
    assert.deepEqual(parseSocket('lb.internal:9999'), { host: 'lb.internal', port: 9999 });
    assert.deepEqual(parseSocket('[::1]:9999'), { host: '::1', port: 9999 });
    for (const bad of ['relative.sock', 'host:0', 'host:70000', 'tcp://host', 'unix://rel']) {
      assert.ok('error' in parseSocket(bad), bad);
    }
  });

  test('admin state bits: maintenance of any kind wins over drain', () => {
    assert.equal(lbStateOf(0), 'ready');
    assert.equal(lbStateOf(0x08), 'drain');
    assert.equal(lbStateOf(0x10), 'drain');
    for (const bit of [0x01, 0x02, 0x04, 0x20, 0x40]) assert.equal(lbStateOf(bit | 0x08), 'maint');
    assert.equal(lbStateOf(NaN), 'unknown');
  });

  test('show servers state and show stat are read by column name', () => {
    const state = '1\n# be_id be_name srv_id srv_name srv_admin_state\n3 app 1 s1 8\n3 app 2 s10 1\n\n';
    assert.equal(parseServersState(state, 's1'), 8);
    assert.equal(parseServersState(state, 's10'), 1);
    assert.equal(parseServersState(state, 's'), undefined);
    const stat = '# pxname,svname,qcur,qmax,scur\napp,s1,0,0,3\napp,BACKEND,0,0,3\nweb,s1,0,0,7\n';
    assert.equal(parseScur(stat, 'app', 's1'), 3);
    assert.equal(parseScur(stat, 'web', 's1'), 7);
    assert.equal(parseScur(stat, 'app', 's2'), undefined);
  });
});
