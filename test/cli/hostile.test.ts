import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import { docker as dockerCli, freePort, type World } from '../world/index.js';
import { berth, MAIN, stateFlags, type CliResult } from '../support/cli.js';
import { startWorldFixture, type WorldFixture } from '../support/fixture.js';
import { createRepo, type TestRepo } from '../support/repo.js';

/**
 * The faults hostile testing found (issue 8), each with a sibling of the same class: files
 * berth did not write, env files that outlive their service, hangs, env files out of step after
 * a rollback, names berth uses itself, symlinked folders, paused containers and bounds the
 * engine enforces. A real engine, registry and git repos throughout.
 */
describe('what berth will and will not do to a host', () => {
  let fx: WorldFixture;
  let world: World;
  let repo: TestRepo;
  let work: string;
  let docker: Docker;
  let env: Record<string, string>;
  let exitImage: string;
  const PORT = 24760;

  const flags = (extra: string[] = []) => [...stateFlags(repo.dir, work), ...extra];
  const apply = (extra: string[] = []) => berth(['apply', ...flags(extra)], env);
  const plan = (extra: string[] = []) => berth(['plan', ...flags(extra)], env);
  const svc = (image: string, port: number, extra = '') =>
    `image: ${image}\npull: missing\nenv_vars:\n  PORT: '${port}'\n  BAR: one\n${extra}`;
  const names = async () =>
    (await docker.listContainers({ all: true }))
      .filter((c) => !c.Labels['berth.role'])
      .map((c) => c.Names[0]!.slice(1))
      .sort();
  const envFile = (name: string) => path.join(work, 'env', name);

  before(async () => {
    fx = await startWorldFixture('berth-hostile-');
    ({ world, docker, work, env } = fx);
    exitImage = `${world.registry.address}/demo/exits:1`;
    await world.publish(exitImage, { version: 'exits', behaviour: 'exit' });
    repo = fx.createRepo({
      'berth.yaml': `env_dir: ${work}/env\n`,
      'services/web.yaml': svc(world.images.web1, PORT),
    });
    const r = await apply();
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  after(() => fx?.stop());

  test('1. a file berth did not write is never overwritten, nor removed with its service', async () => {
    // Repro: a service named like a file that is already there.
    writeFileSync(envFile('passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
    repo.commit({ 'services/passwd.yaml': svc(world.images.web1, PORT + 1) });
    const p = await plan();
    assert.equal(p.code, 1, p.stdout + p.stderr);
    assert.match(p.stdout, /blocked: passwd: .*\/env\/passwd exists and berth did not write it/);
    const a = await apply();
    assert.equal(a.code, 1, a.stdout + a.stderr);
    assert.equal(readFileSync(envFile('passwd'), 'utf8'), 'root:x:0:0:root:/root:/bin/bash\n');
    assert.deepEqual(await names(), ['web']);
    repo.commit({ 'services/passwd.yaml': null });
    rmSync(envFile('passwd'));

    // Sibling: a service berth ran, whose env file someone replaced by their own; the service
    // goes, the file stays.
    repo.commit({ 'services/notes.yaml': svc(world.images.web1, PORT + 2) });
    assert.equal((await apply()).code, 0);
    writeFileSync(envFile('notes'), 'MY_OWN=1\n');
    repo.commit({ 'services/notes.yaml': null });
    const gone = await apply();
    assert.equal(gone.code, 0, gone.stdout + gone.stderr);
    assert.deepEqual(await names(), ['web']);
    assert.equal(readFileSync(envFile('notes'), 'utf8'), 'MY_OWN=1\n');
    rmSync(envFile('notes'));

    // And a system folder is refused as the env folder, in berth.yaml and on the command line.
    repo.commit({ 'berth.yaml': 'env_dir: /etc\n' });
    const v = await berth(['validate', '--repo', repo.dir, '--env', 'main']);
    assert.equal(v.code, 1);
    assert.match(v.stderr, /berth\.yaml:1:10 env_dir: env_dir "\/etc" is a system folder/);
    repo.commit({ 'berth.yaml': `env_dir: ${work}/env\n` });
    const flag = await apply(['--env-dir', '/usr']);
    assert.equal(flag.code, 1);
    assert.match(flag.stderr, /--env-dir: env_dir "\/usr" is a system folder/);
  });

  test('2. an env file, secrets and all, does not outlive its service', async () => {
    // Repro: a new service whose container fails at once is rolled back: no env file is left.
    repo.commit({ 'services/broken.yaml': svc(exitImage, PORT + 3) });
    const failed = await apply();
    assert.equal(failed.code, 1, failed.stdout + failed.stderr);
    assert.equal(existsSync(envFile('broken')), false, 'the env file went with the failed container');
    repo.commit({ 'services/broken.yaml': null });
    assert.equal((await plan()).code, 0);

    // Sibling: a container removed by hand, then its service deleted from the repo.
    repo.commit({ 'services/gone.yaml': svc(world.images.web1, PORT + 4) });
    assert.equal((await apply()).code, 0);
    await dockerCli(world.dockerHost, ['rm', '-f', 'gone']);
    repo.commit({ 'services/gone.yaml': null });
    const p = await plan();
    assert.equal(p.code, 2, p.stdout);
    assert.match(
      p.stdout,
      /gone\s+remove-env\s+.*\/env\/gone \(no longer in the repo; its env file is left without a container\)/,
    );
    assert.equal((await apply()).code, 0);
    assert.equal(existsSync(envFile('gone')), false);
  });

  test('5. after a rollback, the env file on disk is the one the running container was made from', async () => {
    const before = readFileSync(envFile('web'), 'utf8');
    // Repro: a new image that exits at once.
    repo.commit({ 'services/web.yaml': svc(exitImage, PORT).replace('BAR: one', 'BAR: two') });
    const a = await apply();
    assert.equal(a.code, 1, a.stdout + a.stderr);
    assert.equal(readFileSync(envFile('web'), 'utf8'), before);
    // Sibling: a health check that never passes.
    repo.commit({
      'services/web.yaml': svc(
        world.images.web1,
        PORT,
        `healthcheck: { tcp: '127.0.0.1:${await freePort()}', interval: 100ms, timeout: 200ms, retries: 2 }\n`,
      ).replace('BAR: one', 'BAR: three'),
    });
    const h = await apply();
    assert.equal(h.code, 1, h.stdout + h.stderr);
    assert.match(h.stdout + h.stderr, /restore-env\s+ok/);
    assert.equal(readFileSync(envFile('web'), 'utf8'), before);
    repo.commit({ 'services/web.yaml': svc(world.images.web1, PORT) });
    const p = await plan();
    assert.equal(p.code, 0, p.stdout);
  });

  test('8. a paused container is unpaused; a paused one that changed is replaced', async () => {
    await dockerCli(world.dockerHost, ['pause', 'web']);
    const p = await plan();
    assert.equal(p.code, 2);
    assert.match(p.stdout, /web\s+unpause\s+container is paused \(docker pause\)/);
    assert.equal((await apply()).code, 0);
    assert.equal((await docker.getContainer('web').inspect()).State.Status, 'running');
    await dockerCli(world.dockerHost, ['pause', 'web']);
    repo.commit({ 'services/web.yaml': svc(world.images.web1, PORT).replace('BAR: one', 'BAR: four') });
    const r = await apply();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const info = await docker.getContainer('web').inspect();
    assert.equal(info.State.Status, 'running');
    assert.ok(info.Config.Env.includes('BAR=four'));
  });

  test('6. names berth uses itself are refused at validate, in both file forms', async () => {
    repo.commit({
      'services/web.berth-old.yaml': svc(world.images.web1, PORT + 5),
      'services/lock.yaml': `berth.lock:\n  image: ${world.images.web1}\n`,
    });
    const v = await berth(['validate', '--repo', repo.dir, '--env', 'main']);
    assert.equal(v.code, 1);
    assert.match(v.stderr, /services\/web\.berth-old\.yaml: service name "web\.berth-old" is reserved/);
    assert.match(v.stderr, /services\/lock\.yaml:1:1: service name "berth\.lock" is reserved/);
    repo.commit({ 'services/web.berth-old.yaml': null, 'services/lock.yaml': null });
  });

  test('7. a symlinked services folder is read through, at a branch and in the work tree', async () => {
    const linked = createRepo({
      'envs/prod/services/web.yaml': `image: ${world.images.web1}\n`,
      'envs/prod/services/api.yaml': `image: ${world.images.web1}\n`,
    });
    try {
      symlinkSync('envs/prod/services', path.join(linked.dir, 'services'));
      linked.commit({}, 'services is a link');
      for (const extra of [['--env', 'main'], []]) {
        const v = await berth(['validate', '--repo', linked.dir, ...extra]);
        assert.equal(v.code, 0, v.stderr);
        assert.match(v.stdout, /^ok: 2 service\(s\)/);
      }
    } finally {
      linked.remove();
    }
  });

  test('9. sizes the engine or the kernel refuse, and a DOCKER_HOST that is no address, are named', async () => {
    try {
      repo.commit({
        'services/big.yaml': `image: ${world.images.web1}\nenv_vars:\n  BIG: ${'x'.repeat(500_000)}\n`,
      });
      const v = await berth(['validate', '--repo', repo.dir, '--env', 'main']);
      assert.equal(v.code, 1);
      assert.match(
        v.stderr,
        /services\/big\.yaml:3:8 env_vars\.BIG: BIG=… is 500005 bytes; Linux gives a process environment entries of at most 131072 bytes/,
      );
      repo.commit({
        'services/big.yaml': null,
        'berth.yaml': `env_dir: ${work}/env\ndefaults:\n  env_vars: { HUGE: ${'y'.repeat(200_000)} }\n`,
      });
      const d = await berth(['validate', '--repo', repo.dir, '--env', 'main']);
      assert.equal(d.code, 1);
      assert.match(d.stderr, /berth\.yaml:3:\d+ defaults\.env_vars\.HUGE: HUGE=… is 200006 bytes/);
    } finally {
      repo.commit({ 'services/big.yaml': null, 'berth.yaml': `env_dir: ${work}/env\n` });
    }

    for (const [value, message] of [
      [
        'garbage',
        /DOCKER_HOST "garbage" is not an engine address: use unix:\/\/\/path\/to\/docker\.sock or tcp:\/\/HOST:PORT/,
      ],
      [
        'ssh://admin@host',
        /DOCKER_HOST "ssh:\/\/admin@host": berth reaches engines by unix:\/\/ or tcp:\/\//,
      ],
    ] as const) {
      const r = await berth(['plan', ...flags()], { DOCKER_HOST: value });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, message);
    }
  });

  describe('4. nothing waits forever: an engine or a git remote that never answers', () => {
    let silent: Server;
    let port: number;
    const held = new Set<Socket>();
    before(async () => {
      silent = createServer((c) => held.add(c));
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
      port = (silent.address() as { port: number }).port;
    });
    after(async () => {
      for (const c of held) c.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    });

    test('an engine that accepts and never answers: plan and apply stop at --engine-timeout, naming DOCKER_HOST', async () => {
      for (const cmd of ['plan', 'apply']) {
        const started = Date.now();
        const r = await berth([cmd, ...flags(['--engine-timeout', '1s'])], {
          DOCKER_HOST: `tcp://127.0.0.1:${port}`,
        });
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(
          r.stderr,
          new RegExp(
            `the Docker engine at tcp://127\\.0\\.0\\.1:${port} \\(DOCKER_HOST\\) did not answer within 1 s .*--engine-timeout sets the limit`,
          ),
        );
        assert.ok(Date.now() - started < 30_000, `${cmd} took ${Date.now() - started} ms`);
      }
    });

    test('a git remote that never answers stops at --git-timeout, and does not hold the host meanwhile', async () => {
      const url = `http://127.0.0.1:${port}/state.git`;
      const r = await berth(
        [
          'apply',
          '--repo',
          url,
          '--env',
          'main',
          '--cache-dir',
          `${work}/cache2`,
          '--store',
          `${work}/b2.db`,
          '--git-timeout',
          '1s',
        ],
        env,
      );
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `127\\.0\\.0\\.1:${port}/state\\.git.*no answer within 1 s .*--git-timeout sets the limit`,
        ),
      );

      // While one apply waits on the silent remote, another apply of this host goes ahead.
      const hung = spawn(
        process.execPath,
        [
          MAIN,
          'apply',
          '--repo',
          url,
          '--env',
          'main',
          '--cache-dir',
          `${work}/cache3`,
          '--store',
          `${work}/b3.db`,
          '--git-timeout',
          '60s',
        ],
        { env: { ...process.env, ...env }, stdio: 'ignore' },
      );
      try {
        await new Promise((r) => setTimeout(r, 1_000));
        const other: CliResult = await apply();
        assert.equal(other.code, 0, other.stdout + other.stderr);
      } finally {
        hung.kill('SIGKILL');
      }
    });
  });
});
