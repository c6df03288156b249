import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { World } from '../world/index.js';
import { stateFlags } from '../support/cli.js';
import { startWorldFixture, type WorldFixture } from '../support/fixture.js';
import { tracedBerth, type TracedRun } from '../support/module-trace.js';
import { createRepo, type TestRepo } from '../support/repo.js';

/**
 * Issue 16: each command loads only what it uses. What a process loaded is a fact, not a
 * timing, so these hold on a busy machine; the times themselves are in `npm run bench`.
 * Every "not loaded" below has a "loaded" beside it (the same trace seeing zod, or age when a
 * secret is encrypted, or SQLite when something is recorded), so a trace that saw nothing
 * cannot pass.
 */

/** The engine client: loaded by commands that reach an engine (plan, apply), by no other. */
const ENGINE_CLIENT = ['dockerode', 'docker-modem', 'ssh2'];
/** What the engine client would load for features berth does not use (ssh://, image builds). */
const UNUSED_CLIENT_PARTS = ['ssh2', '@grpc/grpc-js', 'protobufjs'];
/** Libraries no command needs until it reaches what they are for. `@scope/*`: every package of the scope. */
const LAZY = [
  'better-sqlite3',
  'pg',
  'age-encryption',
  'tar-stream',
  '@aws-sdk/*',
  '@smithy/*',
  // The agent's HTTP server, logger and metrics: `berth agent` alone needs them.
  'hono',
  '@hono/*',
  'pino',
  'prom-client',
];
const HEAVY = [...ENGINE_CLIENT, ...LAZY];

function assertNotLoaded(run: TracedRun, packages: string[], what: string): void {
  const hit = (p: string) =>
    p.endsWith('/*') ? [...run.packages].some((q) => q.startsWith(p.slice(0, -1))) : run.packages.has(p);
  const loaded = packages.filter(hit);
  assert.deepEqual(loaded, [], `${what} loaded ${loaded.join(', ')}`);
}

function assertLoaded(run: TracedRun, packages: string[], what: string): void {
  const missing = packages.filter((p) => !run.packages.has(p));
  assert.deepEqual(
    missing,
    [],
    `${what} should have loaded ${missing.join(', ')} (the trace saw: ${[...run.packages].join(', ')})`,
  );
}

describe('without an engine', () => {
  let work: string;
  let repo: TestRepo;
  let flags: string[];

  before(() => {
    work = mkdtempSync(path.join(tmpdir(), 'berth-startup-'));
    const identity = path.join(work, 'age.key');
    execFileSync('age-keygen', ['-o', identity], { stdio: 'ignore' });
    chmodSync(identity, 0o600);
    const recipient = execFileSync('age-keygen', ['-y', identity], { encoding: 'utf8' }).trim();
    const sealed = execFileSync('age', ['-a', '-r', recipient], { input: 'hunter2', encoding: 'utf8' });
    repo = createRepo({
      'berth.yaml': `env_dir: ${work}/env\nsecrets_dir: ${work}/none\n`,
      'services/web.yaml': "image: 127.0.0.1:5000/demo/web:1\nenv_vars: { PORT: '26001' }\n",
      'services/api.yaml': "image: 127.0.0.1:5000/demo/api:1\nenv_vars: { DB: '{{ secrets.db }}' }\n",
      'secrets/db.age': sealed,
    });
    flags = ['--repo', repo.dir, '--env', 'main', '--cache-dir', `${work}/cache`, '--age-identity', identity];
  });

  after(() => {
    repo?.remove();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('--version and --help load the command table only: no schemas, no YAML, no engine, no record', async () => {
    for (const args of [['--version'], ['--help'], ['plan', '--help'], ['agent', '--help']]) {
      const r = await tracedBerth(args);
      assert.equal(r.code, 0, r.stderr);
      assertLoaded(r, ['commander'], `berth ${args.join(' ')}`);
      assertNotLoaded(r, [...HEAVY, 'zod', 'yaml'], `berth ${args.join(' ')}`);
      assert.equal(r.loadedOwn('cli/main.js'), true, 'the trace sees our own modules');
      assert.equal(r.loadedOwn('host/pipeline.js'), false, `berth ${args.join(' ')} loaded the pipeline`);
    }
  });

  test('validate reads the repo with the schemas and never touches the engine client, age or SQLite', async () => {
    const r = await tracedBerth(['validate', ...flags]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ok: 2 service\(s\)/);
    assertLoaded(r, ['zod', 'yaml'], 'validate');
    assertNotLoaded(r, HEAVY, 'validate');
    for (const own of ['adapters/docker.js', 'host/pipeline.js', 'store/sqlite.js'])
      assert.equal(r.loadedOwn(own), false, `validate loaded ${own}`);
  });

  test('render never loads the engine client or SQLite; age when a secret is in an .age file', async () => {
    const r = await tracedBerth(['render', 'api', ...flags]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /DB: <secret:db>/);
    assertLoaded(r, ['zod', 'yaml', 'age-encryption'], 'render api (its secret is in secrets/db.age)');
    assertNotLoaded(r, [...ENGINE_CLIENT, 'better-sqlite3', 'tar-stream'], 'render');
    assert.equal(r.loadedOwn('adapters/docker.js'), false, 'render loaded the engine adapter');
  });

  test('a repo without .age files never loads age, even where services use secrets', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'berth-startup-noage-'));
    try {
      mkdirSync(path.join(dir, 'secrets'), { mode: 0o700 });
      writeFileSync(path.join(dir, 'secrets', 'db'), 'hunter2\n', { mode: 0o600 });
      const noAge = createRepo({
        'berth.yaml': `secrets_dir: ${dir}/secrets\n`,
        'services/api.yaml': "image: 127.0.0.1:5000/demo/api:1\nenv_vars: { DB: '{{ secrets.db }}' }\n",
      });
      try {
        const r = await tracedBerth([
          'render',
          'api',
          '--repo',
          noAge.dir,
          '--env',
          'main',
          '--cache-dir',
          `${dir}/cache`,
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /DB: <secret:db>/);
        assertNotLoaded(r, HEAVY, 'render of a repo without .age files');
      } finally {
        noAge.remove();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('against a real engine', () => {
  let fx: WorldFixture;
  let world: World;
  let work: string;
  let repo: TestRepo;
  let flags: string[];
  let env: Record<string, string>;

  before(async () => {
    fx = await startWorldFixture('berth-startup-engine-');
    ({ world, work, env } = fx);
    repo = fx.createRepo({
      'berth.yaml': `env_dir: ${work}/env\n`,
      'services/web.yaml': `image: ${world.images.web1}\nenv_vars: { PORT: '26011' }\n`,
      'services/api.yaml': `image: ${world.images.web1}\npull: missing\nenv_vars: { PORT: '26012' }\n`,
    });
    flags = stateFlags(repo.dir, work);
  });

  after(() => fx?.stop());

  test('an apply that changes something opens the record; a no-op plan and apply load neither SQLite nor age', async () => {
    const first = await tracedBerth(['apply', ...flags], env);
    assert.equal(first.code, 0, first.stderr + first.stdout);
    assert.match(first.stdout, /2 to create/);
    assertLoaded(first, ['better-sqlite3', 'dockerode', 'docker-modem'], 'an apply that records');
    // The client's ssh:// protocol and build sessions are never used (adapters/docker.ts).
    assertNotLoaded(first, ['age-encryption', 'pg', '@aws-sdk/*', ...UNUSED_CLIENT_PARTS], 'the first apply');

    const plan = await tracedBerth(['plan', ...flags], env);
    assert.equal(plan.code, 0, plan.stderr + plan.stdout);
    assert.match(plan.stdout, /No changes/);
    assertLoaded(plan, ['dockerode'], 'plan reaches the engine');
    assertNotLoaded(plan, [...LAZY, ...UNUSED_CLIENT_PARTS], 'a no-op plan');

    const again = await tracedBerth(['apply', ...flags], env);
    assert.equal(again.code, 0, again.stderr + again.stdout);
    assert.match(again.stdout, /No changes/);
    assertNotLoaded(again, LAZY, 'a no-op apply');
  });
});
