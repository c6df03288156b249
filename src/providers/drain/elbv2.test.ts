// @slow: starts a real HAProxy (test/world) behind the local fake of the cloud API.
/**
 * The aws-elbv2 provider, through the real AWS SDK, against a local fake of the documented ELBv2
 * Query API calls it makes (test/world/elbv2.ts: RegisterTargets, DeregisterTargets,
 * DescribeTargetHealth in ELBv2's XML, targets passing through `initial` and `draining`), reached
 * through the SDK's standard endpoint override. A real HAProxy is the data plane the fake drives.
 * It is not AWS: no request leaves loopback, and the instance metadata service is switched off.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, beforeEach, describe, test } from 'node:test';
import { startElbv2, type Elbv2Fake } from '../../../test/world/elbv2.js';
import { startHaproxy, type BackendServer, type HaproxyHandle } from '../../../test/world/haproxy.js';
import { ConfigError, ExternalError } from '../../model/errors.js';
import { drainContract } from './contract.js';
import { Elbv2Provider, parseTargetGroupArn, targetState } from './elbv2.js';
import { validateLoadBalancer } from './registry.js';
import type { DrainTarget } from './types.js';

let hap: HaproxyHandle;
let fake: Elbv2Fake;
let s1: BackendServer;
let s2: BackendServer;
/** Accepts connections and never answers: a health check or API call there times out. */
let silent: net.Server;
let silentPort: number;
const silentConns = new Set<net.Socket>();
const DELAY_MS = 800;

before(async () => {
  silent = net.createServer((c) => silentConns.add(c));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  silentPort = (silent.address() as net.AddressInfo).port;
  hap = await startHaproxy();
  [s1, s2] = hap.servers as [BackendServer, BackendServer];
  fake = await startElbv2({
    haproxy: hap,
    deregistrationDelayMs: DELAY_MS,
    targets: [
      { id: s1.address, address: s1.address, port: s1.port, registered: true },
      { id: s2.address, address: s2.address, port: s2.port, registered: true },
      // Registrable, but nothing answers there: it fails its health checks.
      { id: '127.0.0.9', address: '127.0.0.9', port: 9 },
      { id: '127.0.0.10', address: '127.0.0.1', port: silentPort },
    ],
  });
  // The SDK's own configuration: its standard endpoint override and credential chain (the
  // environment first), no shared files, no instance metadata service.
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2: fake.url,
    AWS_ACCESS_KEY_ID: fake.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: fake.credentials.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/nonexistent/berth-test/config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/berth-test/credentials',
  });
  delete process.env.AWS_REGION;
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_SESSION_TOKEN;
});
after(async () => {
  await fake?.stop();
  await hap?.stop();
  for (const c of silentConns) c.destroy();
  silent?.close();
});

const fast = { pollIntervalMs: 50, requestTimeoutMs: 3_000, maxAttempts: 3 };
const provider = new Elbv2Provider(fast);
const target = (settings: Record<string, unknown> = {}, s: () => BackendServer = () => s1): DrainTarget => ({
  host: s().name,
  address: s().address,
  settings: {
    region: 'eu-west-1',
    target_group_arn: fake.targetGroupArn,
    port: s().port,
    drain_timeout: '5s',
    healthy_timeout: '10s',
    ...settings,
  },
});
const otherArn = () => fake.targetGroupArn.replace(/targetgroup\/app\//, 'targetgroup/api/');

drainContract(provider, () => ({
  target: () => target(),
  observe: async () => targetState(fake.health(s1.address, s1.port)),
  set: (state) =>
    fake.set(s1.address, s1.port, ({ ready: 'healthy', drain: 'draining', maint: 'unused' } as const)[state]),
  hold: () => hap.hold('s1'),
  async reaches() {
    for (let i = 0; i < 4; i++) if ((await hap.request('/')).body === 's1') return true;
    return false;
  },
  broken: () => [
    {
      what: 'wrong target group',
      target: target({ target_group_arn: otherArn() }),
      mentions: ['TargetGroupNotFound', 'target group api', `${s1.address}:${s1.port}`],
    },
    {
      what: 'unreachable endpoint',
      target: target({ endpoint: 'http://127.0.0.1:1' }),
      mentions: ['ECONNREFUSED', `${s1.address}:${s1.port}`],
    },
  ],
  grace: DELAY_MS,
}));

describe('aws-elbv2 provider', () => {
  beforeEach(async () => {
    fake.failNext(0, 400, 'Throttling');
    await fake.set(s1.address, s1.port, 'healthy');
  });

  test('the target passes through draining and initial; only the three IAM actions are used', async () => {
    const from = fake.calls.length;
    const progress: string[] = [];
    await provider.drain(target(), { timeoutMs: 5_000, onProgress: (m) => progress.push(m) });
    assert.match(
      progress.join('\n'),
      /draining: Target\.DeregistrationInProgress: .*waiting for the deregistration delay/,
    );
    await provider.undrain(target());
    const history = fake.history(s1.address, s1.port);
    assert.deepEqual(history.slice(-5), ['healthy', 'draining', 'unused', 'initial', 'healthy']);
    const actions = new Set(fake.calls.slice(from).map((c) => c.action));
    assert.deepEqual([...actions].sort(), ['DeregisterTargets', 'DescribeTargetHealth', 'RegisterTargets']);
    const dereg = fake.calls.slice(from).find((c) => c.action === 'DeregisterTargets')!;
    assert.deepEqual(dereg.params, {
      TargetGroupArn: fake.targetGroupArn,
      'Targets.member.1.Id': s1.address,
      'Targets.member.1.Port': String(s1.port),
    });
    assert.equal(await hap.adminState('s1'), 0, 'back in rotation in the data plane');
    assert.deepEqual(fake.dataPlaneErrors, [], 'HAProxy followed every change');
  });

  test('drain_timeout shorter than the deregistration delay: back at the timeout, still draining', async () => {
    const progress: string[] = [];
    await provider.drain(target(), { timeoutMs: 200, onProgress: (m) => progress.push(m) });
    assert.equal(targetState(fake.health(s1.address, s1.port)), 'drain');
    assert.match(
      progress.at(-1)!,
      /drain timeout after 200 ms; deregistered, the target group is still draining it/,
    );
    // A second drain waits out the rest of the delay.
    await provider.drain(target(), { timeoutMs: 5_000 });
    assert.equal(targetState(fake.health(s1.address, s1.port)), 'maint');
  });

  test('a target that fails its health checks: undrain fails, naming the reason', async () => {
    const t: DrainTarget = { host: 'h9', address: '127.0.0.9', settings: { ...target().settings, port: 9 } };
    await assert.rejects(provider.undrain(t), (e: unknown) => {
      assert.ok(e instanceof ExternalError);
      assert.match(
        e.message,
        /^aws-elbv2: target 127\.0\.0\.9:9 of target group app \(arn:.*\): registered but unhealthy: Target\.FailedHealthChecks/,
      );
      return true;
    });
    assert.ok(fake.history('127.0.0.9', 9).includes('initial'));
    await provider.restore(t, 'maint');
  });

  test('healthy_timeout bounds the wait for healthy', async () => {
    const t: DrainTarget = {
      host: 'h10',
      settings: { ...target().settings, target: '127.0.0.10', port: silentPort, healthy_timeout: '300ms' },
    };
    const started = performance.now();
    await assert.rejects(
      provider.undrain(t),
      /registered but not healthy after the healthy_timeout \(300 ms\): initial: Elb\.(RegistrationInProgress|InitialHealthChecking)/,
    );
    assert.ok(performance.now() - started < 10_000);
    await provider.restore(t, 'maint');
  });

  test('throttling and 5xx are retried by the SDK with backoff; a lasting one fails naming it', async () => {
    fake.failNext(2, 400, 'Throttling');
    let from = fake.calls.length;
    assert.equal(await provider.status(target()), 'ready');
    assert.deepEqual(
      fake.calls.slice(from).map((c) => c.code ?? c.status),
      ['Throttling', 'Throttling', 200],
    );
    fake.failNext(2, 503, 'ServiceUnavailable');
    assert.equal(await provider.status(target()), 'ready');
    fake.failNext(50, 503, 'ServiceUnavailable');
    from = fake.calls.length;
    await assert.rejects(
      provider.status(target()),
      /DescribeTargetHealth for target .*: ServiceUnavailable: Service Unavailable/,
    );
    assert.equal(fake.calls.length - from, fast.maxAttempts, 'bounded in tries');
  });

  test('an instance the group cannot register is refused clearly', async () => {
    const t: DrainTarget = {
      host: 'h3',
      settings: { ...target().settings, target: 'i-0123456789abcdef0', port: 8080 },
    };
    assert.equal(await provider.status(t), 'maint');
    await assert.rejects(
      provider.undrain(t),
      /RegisterTargets for target i-0123456789abcdef0:8080 .*InvalidTarget: .*'i-0123456789abcdef0'/,
    );
  });

  test('no access key or secret in any message', async () => {
    const { accessKeyId, secretAccessKey } = fake.credentials;
    fake.failNext(50, 400, 'ValidationError', `key ${accessKeyId} with secret ${secretAccessKey} is odd`);
    const messages: string[] = [];
    await provider.status(target()).catch((e: Error) => messages.push(e.message));
    fake.failNext(0, 400, 'Throttling');
    // Wrong keys: AWS says the token is invalid, and nothing of the keys comes back.
    process.env.AWS_ACCESS_KEY_ID = 'AKIAWRONGWRONGWRONG1';
    process.env.AWS_SECRET_ACCESS_KEY = 'wrong/secret/wrong/secret/wrong/secret00';
    try {
      await new Elbv2Provider(fast).status(target()).catch((e: Error) => messages.push(e.message));
    } finally {
      process.env.AWS_ACCESS_KEY_ID = accessKeyId;
      process.env.AWS_SECRET_ACCESS_KEY = secretAccessKey;
    }
    assert.equal(messages.length, 2);
    assert.match(messages[0]!, /ValidationError: key \*\*\* with secret \*\*\* is odd/);
    assert.match(messages[1]!, /InvalidClientTokenId: The security token included in the request is invalid/);
    for (const m of messages) {
      for (const s of [accessKeyId, secretAccessKey, 'AKIAWRONGWRONGWRONG1', 'wrong/secret'])
        assert.ok(!m.includes(s), m);
    }
  });

  test('each request is bounded in time: an endpoint that never answers fails', async () => {
    const p = new Elbv2Provider({ ...fast, requestTimeoutMs: 200, maxAttempts: 1 });
    const started = performance.now();
    await assert.rejects(p.status(target({ endpoint: `http://127.0.0.1:${silentPort}` })), (e: unknown) => {
      assert.ok(e instanceof ExternalError);
      assert.match(e.message, /DescribeTargetHealth for target .*: TimeoutError/);
      return true;
    });
    assert.ok(performance.now() - started < 10_000);
  });

  test('rendered settings are checked before any call; the target defaults to the host address', async () => {
    await assert.rejects(provider.status(target({ port: 'http' })), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /load_balancer\.port: expected an integer from 1 to 65535 \(for host s1\)/);
      return true;
    });
    await assert.rejects(
      provider.status({ host: 'h9', settings: { target_group_arn: fake.targetGroupArn } }),
      /load_balancer\.target: required: the host has no address in the inventory/,
    );
    const from = fake.calls.length;
    await provider.status({
      host: 'x',
      address: '10.1.2.3',
      settings: { target_group_arn: fake.targetGroupArn },
    });
    assert.equal(fake.calls[from]?.params['Targets.member.1.Id'], '10.1.2.3');
    assert.equal(fake.calls[from]?.params['Targets.member.1.Port'], undefined, 'the group port by default');
  });
});

describe('aws-elbv2 settings and loading', () => {
  test('validate: the ARN, its region, ports, endpoint; templates wait for the host', () => {
    const arn = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/app/73e2d6bc24d8a067';
    const issues = (block: Record<string, unknown>, rendered = false) =>
      validateLoadBalancer({ provider: 'aws-elbv2', ...block }, { rendered }).map(
        (i) => `${i.path}: ${i.message}`,
      );
    assert.deepEqual(
      issues({
        region: 'eu-west-1',
        target_group_arn: arn,
        target: '{{ host.vars.instance_id }}',
        port: 8080,
        drain_timeout: '30s',
      }),
      [],
    );
    assert.deepEqual(issues({ target_group_arn: arn, target: '{{ host.vars.instance_id }}' }, true), [
      'load_balancer.target: "{{ host.vars.instance_id }}" is not an instance id or IP address',
    ]);
    assert.deepEqual(
      issues({
        region: 'us-east-1',
        target_group_arn: arn,
        port: 70000,
        endpoint: 'localhost:4566',
        healthy_timeout: 'soon',
        arn: 'x',
      }),
      [
        'load_balancer.arn: unknown setting; known: region, target_group_arn, target, port, availability_zone, endpoint, drain_timeout, healthy_timeout',
        "load_balancer.region: us-east-1 differs from the target group's region eu-west-1",
        'load_balancer.port: expected an integer from 1 to 65535',
        'load_balancer.endpoint: expected an http:// or https:// URL',
        'load_balancer.healthy_timeout: invalid duration "soon": use a number with a unit, e.g. 500ms, 5s, 1m, 1m30s',
      ],
    );
    assert.deepEqual(issues({ target_group_arn: 'app' }), [
      'load_balancer.target_group_arn: expected arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID',
    ]);
    assert.deepEqual(parseTargetGroupArn(arn), { region: 'eu-west-1', name: 'app' });
  });

  test('target health states map to ready, drain and maint', () => {
    assert.equal(targetState({ State: 'healthy' }), 'ready');
    assert.equal(targetState({ State: 'initial', Reason: 'Elb.RegistrationInProgress' }), 'ready');
    assert.equal(targetState({ State: 'unhealthy' }), 'ready');
    assert.equal(targetState({ State: 'draining' }), 'drain');
    assert.equal(targetState({ State: 'unused', Reason: 'Target.NotRegistered' }), 'maint');
    assert.equal(targetState({ State: 'unused', Reason: 'Target.NotInUse' }), 'ready');
    assert.equal(targetState({}), 'unknown');
  });

  test('the AWS SDK is loaded when the provider first calls AWS, not with the registry', () => {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
    const script = `
      import { createRequire } from 'node:module';
      const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('@aws-sdk'));
      const { getProvider } = await import('./src/providers/drain/registry.ts');
      const p = getProvider('aws-elbv2');
      const atStart = loaded();
      await p.status({ host: 'x', address: '10.0.0.1', settings: { target_group_arn: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/app/73e2d6bc24d8a067', endpoint: 'http://127.0.0.1:1' } }).catch(() => {});
      console.log(JSON.stringify({ atStart, afterCall: loaded() }));`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, AWS_MAX_ATTEMPTS: '1' },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').at(-1)!), { atStart: false, afterCall: true });
  });
});
