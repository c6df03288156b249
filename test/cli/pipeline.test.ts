import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import type Docker from 'dockerode';
import { freePort, waitUntil, type World } from '../world/index.js';
import { berth, MAIN, type CliResult } from '../support/cli.js';
import { startWorldFixture, type WorldFixture } from '../support/fixture.js';
import type { TestRepo } from '../support/repo.js';

/**
 * The host pipeline as callers meet it (issue 7): one lock per engine whatever record folder
 * each caller uses, the host's address reaching the load balancer's commands, an inventory that
 * cannot be read stopping everything, and a cancelled apply stopping at a safe point. A real
 * engine, registry and git repo; the load balancer is the `command` provider's shell scripts.
 */
describe('one pipeline, one lock per host', () => {
  let fx: WorldFixture;
  let world: World;
  let repo: TestRepo;
  let work: string;
  let docker: Docker;
  let env: Record<string, string>;
  const PORT = 24710;
  const GATE = 24711;

  /** Flags for one caller: its own record and cache, as a laptop and the host's agent would have. */
  const flags = (caller: string) => [
    '--repo',
    repo.dir,
    '--env',
    'main',
    '--host',
    'app-1',
    '--store',
    `${work}/${caller}/berth.db`,
    '--cache-dir',
    `${work}/${caller}/cache`,
  ];

  /**
   * The web service, whose health check is a port the test opens and closes (the gate): while
   * it is closed a replacement waits in its health check with the old container set aside,
   * for as long as the test needs, whatever the machine's speed.
   */
  const web = (image: string, bar: string) =>
    [
      `image: ${image}`,
      'pull: missing',
      'drain: true',
      'env_vars:',
      `  PORT: '${PORT}'`,
      `  BAR: '${bar}'`,
      `healthcheck: { tcp: '127.0.0.1:${GATE}', interval: 200ms, timeout: 1s, retries: 3, start_period: 60s }`,
      '',
    ].join('\n');

  let gate: Server | undefined;
  const openGate = () =>
    new Promise<void>((resolve) => {
      gate = createServer((c) => c.end());
      gate.listen(GATE, '127.0.0.1', () => resolve());
    });
  const closeGate = () =>
    new Promise<void>((resolve) => {
      if (!gate) return resolve();
      gate.close(() => resolve());
      gate = undefined;
    });

  const berthYaml = (extra = '') =>
    [
      `env_dir: ${work}/env`,
      'load_balancer:',
      '  provider: command',
      `  drain_command: echo "drain $BERTH_HOST $BERTH_ADDRESS" >> ${work}/lb.log`,
      `  undrain_command: echo "undrain $BERTH_HOST $BERTH_ADDRESS" >> ${work}/lb.log`,
      extra,
      '',
    ].join('\n');

  const containers = async () =>
    Object.fromEntries(
      (await docker.listContainers({ all: true }))
        .filter((c) => !c.Labels['berth.role'])
        .map((c) => [c.Names[0]!.slice(1), { id: c.Id, state: c.State }]),
    );

  /** Start berth in the background; resolves with how it ended. */
  const background = (args: string[], extraEnv: Record<string, string> = {}) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      env: { ...process.env, ...env, NO_COLOR: '1', ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const done = new Promise<CliResult>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout, stderr });
      });
    });
    return { child, done };
  };

  const asideExists = async () =>
    (await docker.listContainers({ all: true })).some((c) => c.Names[0] === '/web.berth-old');

  before(async () => {
    fx = await startWorldFixture('berth-pipeline-');
    ({ world, docker, work, env } = fx);
    repo = fx.createRepo({
      'berth.yaml': berthYaml(),
      'inventory.yaml': 'hosts:\n  app-1: { address: 127.0.0.5 }\n',
      'services/web.yaml': web(world.images.web1, 'one'),
    });
    await openGate();
    const r = await berth(['apply', ...flags('laptop')], env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  after(async () => {
    await closeGate();
    await fx?.stop();
  });

  test('a second apply with another record, started while the first has the old container aside, is told the host is busy', async () => {
    repo.commit({ 'services/web.yaml': web(world.images.web1, 'two') });
    await closeGate();
    const first = background(['apply', ...flags('laptop')]);
    await waitUntil('the first apply to set web aside', asideExists, { timeoutMs: 30_000 });
    const second = await berth(['apply', ...flags('agent')], env);
    await openGate();
    assert.equal(second.code, 75, second.stdout + second.stderr);
    assert.match(second.stderr, /is busy: berth apply \(pid \d+ on [^,]+, user [^)]+\) has held it since/);
    assert.doesNotMatch(
      second.stdout,
      /remove-aside|recover/,
      'it never planned to touch the first one’s rollback target',
    );
    const one = await first.done;
    assert.equal(one.code, 0, one.stdout + one.stderr);
    const now = await containers();
    assert.deepEqual(Object.keys(now), ['web'], 'exactly one container');
    assert.equal(now.web!.state, 'running');
  });

  test('with --wait-lock the second waits for the first, then finds nothing left to do', async () => {
    repo.commit({ 'services/web.yaml': web(world.images.web1, 'three') });
    await closeGate();
    const first = background(['apply', ...flags('laptop')]);
    await waitUntil('the first apply to set web aside', asideExists, { timeoutMs: 30_000 });
    const waiting = berth(['apply', ...flags('agent'), '--wait-lock', '60s'], env);
    await new Promise((r) => setTimeout(r, 1_000));
    await openGate();
    const second = await waiting;
    const one = await first.done;
    assert.equal(one.code, 0, one.stdout + one.stderr);
    assert.equal(second.code, 0, second.stdout + second.stderr);
    assert.match(second.stdout, /No changes/);
    assert.deepEqual(Object.keys(await containers()), ['web']);
  });

  test('$BERTH_HOST and $BERTH_ADDRESS reach the drain and undrain commands', () => {
    const log = readFileSync(`${work}/lb.log`, 'utf8').trim().split('\n');
    assert.ok(log.length >= 2, log.join('\n'));
    for (const line of log) assert.match(line, /^(drain|undrain) app-1 127\.0\.0\.5$/);
    assert.deepEqual(log.slice(-2), ['drain app-1 127.0.0.5', 'undrain app-1 127.0.0.5']);
  });

  test('an inventory source that cannot be had stops apply before anything starts or stops', async () => {
    const before = await containers();
    repo.commit({
      'berth.yaml': berthYaml('inventory: { source: aws-ec2, region: eu-west-1 }'),
      // With a discovering source, inventory.yaml keeps vars only: the addresses come from EC2.
      'inventory.yaml': 'hosts:\n  app-1: { vars: { lb_server: app-1 } }\n',
      'services/web.yaml': web(world.images.web2, 'four'),
      'services/api.yaml': `image: ${world.images.web1}\npull: missing\nenv_vars: { PORT: '${PORT + 1}' }\n`,
    });
    // The EC2 API at a loopback port where nothing listens (the SDK's standard endpoint
    // override), test keys, no instance metadata service: nothing leaves this machine.
    const closed = await freePort();
    const r = await berth(['apply', ...flags('laptop')], {
      ...env,
      AWS_ENDPOINT_URL: `http://127.0.0.1:${closed}`,
      AWS_ACCESS_KEY_ID: 'AKIAFAKEFAKEFAKEFAKE',
      AWS_SECRET_ACCESS_KEY: 'fake-secret-for-a-closed-port',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: '/nonexistent/berth-test/config',
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/berth-test/credentials',
    });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      /aws-ec2: DescribeInstances in eu-west-1 at http:\/\/127\.0\.0\.1:\d+ failed: cannot connect/,
    );
    assert.deepEqual(await containers(), before, 'nothing started, nothing stopped');
    repo.commit({
      'berth.yaml': berthYaml(),
      'inventory.yaml': 'hosts:\n  app-1: { address: 127.0.0.5 }\n',
      'services/api.yaml': null,
      'services/web.yaml': web(world.images.web1, 'three'),
    });
  });

  test('a record kind berth does not have is refused before anything is done', async () => {
    const r = await berth(
      ['apply', ...flags('laptop').slice(0, 6), '--store', 'mysql://berth@127.0.0.1:5499/db'],
      env,
    );
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /--store: unknown record kind "mysql:"/);
    assert.equal(existsSync(path.join(process.cwd(), 'mysql:')), false, 'no folder named mysql:');
  });

  test('SIGTERM during the health wait: rolled back, back in rotation, recorded as cancelled', async () => {
    const before = await containers();
    repo.commit({ 'services/web.yaml': web(world.images.web1, 'five') });
    await closeGate();
    const run = background(['apply', ...flags('laptop')]);
    await waitUntil('the apply to set web aside', asideExists, { timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 300)); // inside the health wait
    const signalled = Date.now();
    run.child.kill('SIGTERM');
    const r = await run.done;
    // The health wait alone could last over a minute; a cancel ends it at once (README: under 30 s).
    assert.ok(Date.now() - signalled < 30_000, `took ${Date.now() - signalled} ms after SIGTERM`);
    assert.equal(r.code, 130, r.stdout + r.stderr);
    assert.match(r.stderr, /SIGTERM: stopping at the next safe point/);
    assert.match(r.stdout, /Apply cancelled: .*web: cancelled before the new container was proven healthy/);
    const now = await containers();
    assert.deepEqual(Object.keys(now), ['web']);
    assert.equal(now.web!.id, before.web!.id, 'the previous container serves again');
    assert.equal(now.web!.state, 'running');
    const lb = readFileSync(`${work}/lb.log`, 'utf8').trim().split('\n');
    assert.equal(lb.at(-1), 'undrain app-1 127.0.0.5', 'back in rotation');
    const h = await berth(['history', '--steps', '--json', '--store', `${work}/laptop/berth.db`]);
    const rows = JSON.parse(h.stdout) as Array<{ action: string; result: string; message?: string }>;
    assert.ok(
      rows.some((x) => x.action === 'rollback' && x.result === 'succeeded'),
      h.stdout,
    );
    const db = new Database(`${work}/laptop/berth.db`, { readonly: true });
    try {
      const last = db.prepare('SELECT result, message FROM applies ORDER BY id DESC LIMIT 1').get() as {
        result: string;
        message: string;
      };
      assert.equal(last.result, 'cancelled', last.message);
    } finally {
      db.close();
    }
    // Back to what the repo says, so later tests start from a converged host.
    await openGate();
    repo.commit({ 'services/web.yaml': web(world.images.web1, 'three') });
    const again = await berth(['apply', ...flags('laptop')], env);
    assert.equal(again.code, 0, again.stdout + again.stderr);
  });
});
