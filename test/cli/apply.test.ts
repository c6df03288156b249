import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import type { World } from '../world/index.js';
import { berth, stateFlags } from '../support/cli.js';
import { startWorldFixture, type WorldFixture } from '../support/fixture.js';
import type { TestRepo } from '../support/repo.js';

/**
 * berth as a user runs it, against a real engine, a real registry and a real git repo:
 * the "How we will know" list of the core issue, one test each.
 */
describe('apply against a real engine', () => {
  let fx: WorldFixture;
  let world: World;
  let repo: TestRepo;
  let work: string;
  let docker: Docker;
  let env: Record<string, string>;
  let flags: string[];
  const port = (n: number) => String(24000 + n);

  const svc = (image: string, p: number, extra = '') =>
    `image: ${image}\nenv_vars:\n  PORT: '${port(p)}'\n  BAR: baz\n${extra}`;

  /** name → container id of every running or stopped container on the engine. */
  const containers = async () => {
    const list = await docker.listContainers({ all: true });
    return Object.fromEntries(list.map((c) => [c.Names[0]!.slice(1), c.Id]));
  };

  before(async () => {
    fx = await startWorldFixture('berth-cli-');
    ({ world, docker, work, env } = fx);
    repo = fx.createRepo({
      'berth.yaml': `env_dir: ${work}/env\n`,
      'services/web.yaml': svc(world.images.web1, 1),
      'services/api.yaml': svc(world.images.web1, 2, 'pull: missing\n'),
      'services/worker.yaml': svc(world.images.web1, 3, 'pull: missing\n'),
    });
    flags = stateFlags(repo.dir, work);
  });

  after(() => fx?.stop());

  test('first apply starts everything, writes env files 0600 and records it', async () => {
    const r = await berth(['apply', ...flags], env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /3 to create/);
    const names = await containers();
    assert.deepEqual(Object.keys(names).sort(), ['api', 'web', 'worker']);
    const st = statSync(`${work}/env/web`);
    assert.equal(st.mode & 0o777, 0o600);
    assert.match(readFileSync(`${work}/env/web`, 'utf8'), new RegExp(`^PORT=${port(1)}$`, 'm'));
    const info = await docker.getContainer('web').inspect();
    assert.equal(info.State.Running, true);
    assert.equal(info.Config.Labels['berth.service'], 'web');
    assert.equal(info.HostConfig.NetworkMode, 'host');
    assert.equal(info.HostConfig.Init, true);
    assert.equal(info.HostConfig.RestartPolicy?.Name, 'always');
    const h = await berth(['history', '--steps', '--json', '--store', `${work}/berth.db`]);
    assert.equal(h.code, 0, h.stderr);
    const rows = JSON.parse(h.stdout) as Array<{ service: string; action: string; result: string }>;
    assert.ok(rows.some((x) => x.service === 'web' && x.action === 'create' && x.result === 'succeeded'));
  });

  test('every container option in the service file reaches the engine', async () => {
    repo.commit({
      'services/options.yaml': [
        `image: ${world.images.web1}`,
        'env_vars:',
        `  PORT: '${port(7)}'`,
        "entrypoint: ['/bin/busybox']",
        "command: sh -c 'exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /'",
        "user: '0:0'",
        'working_dir: /www',
        `volumes: ['${work}:/data:ro']`,
        'labels: { team: payments }',
        'stop_signal: SIGINT',
        'stop_timeout: 7s',
        'restart_policy: on-failure:3',
        'init: false',
        'log_driver: json-file',
        "log_options: { max-size: 1m, max-file: '2' }",
        'pull: missing',
        '',
      ].join('\n'),
    });
    const r = await berth(['apply', ...flags], env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const info = await docker.getContainer('options').inspect();
    const cfg = info.Config as typeof info.Config & { StopSignal?: string; StopTimeout?: number };
    assert.deepEqual(cfg.Entrypoint, ['/bin/busybox']);
    assert.deepEqual(cfg.Cmd, ['sh', '-c', 'exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /']);
    assert.equal(cfg.User, '0:0');
    assert.equal(cfg.WorkingDir, '/www');
    assert.equal(cfg.Labels.team, 'payments');
    assert.equal(cfg.StopSignal, 'SIGINT');
    assert.equal(cfg.StopTimeout, 7);
    assert.ok(cfg.Env.includes(`PORT=${port(7)}`));
    assert.deepEqual(info.HostConfig.Binds, [`${work}:/data:ro`]);
    assert.equal(info.HostConfig.NetworkMode, 'host');
    assert.deepEqual(info.HostConfig.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 3 });
    assert.equal(info.HostConfig.Init, false);
    assert.deepEqual(info.HostConfig.LogConfig, {
      Type: 'json-file',
      Config: { 'max-size': '1m', 'max-file': '2' },
    });
    assert.equal(info.State.Running, true);
    repo.commit({ 'services/options.yaml': null });
    const removed = await berth(['apply', ...flags], env);
    assert.equal(removed.code, 0, removed.stderr + removed.stdout);
  });

  test('a second plan exits 0 and a second apply changes no container', async () => {
    const beforeIds = await containers();
    const p = await berth(['plan', ...flags.slice(0, 4), '--cache-dir', `${work}/cache`], env);
    assert.equal(p.code, 0, p.stdout + p.stderr);
    assert.match(p.stdout, /No changes\. 3 unchanged\./);
    const a = await berth(['apply', ...flags], env);
    assert.equal(a.code, 0, a.stderr);
    assert.deepEqual(await containers(), beforeIds);
  });

  test('an env change recreates only that service', async () => {
    const beforeIds = await containers();
    repo.commit({ 'services/api.yaml': svc(world.images.web1, 2, 'pull: missing\n').replace('baz', 'qux') });
    const p = await berth(['plan', ...flags.slice(0, 4), '--cache-dir', `${work}/cache`], env);
    assert.equal(p.code, 2, p.stdout + p.stderr);
    assert.match(p.stdout, /api\s+recreate\s+env BAR changed/);
    const a = await berth(['apply', ...flags], env);
    assert.equal(a.code, 0, a.stderr + a.stdout);
    const now = await containers();
    assert.notEqual(now.api, beforeIds.api);
    assert.equal(now.web, beforeIds.web);
    assert.equal(now.worker, beforeIds.worker);
    assert.match(readFileSync(`${work}/env/api`, 'utf8'), /^BAR=qux$/m);
  });

  test('a new tag recreates only that service', async () => {
    const beforeIds = await containers();
    repo.commit({ 'services/worker.yaml': svc(world.images.web2, 3, 'pull: missing\n') });
    const a = await berth(['apply', ...flags], env);
    assert.equal(a.code, 0, a.stderr + a.stdout);
    assert.match(a.stdout, /worker\s+recreate\s+image :1 → :2/);
    const now = await containers();
    assert.notEqual(now.worker, beforeIds.worker);
    assert.equal(now.web, beforeIds.web);
    assert.equal(now.api, beforeIds.api);
  });

  test('the same tag re-pushed with new content is found by pull: always', async () => {
    const beforeIds = await containers();
    await world.repush(world.images.web1, 'v1-rebuilt');
    const p = await berth(['plan', ...flags.slice(0, 4), '--cache-dir', `${work}/cache`], env);
    assert.equal(p.code, 2, p.stdout + p.stderr);
    assert.match(p.stdout, /web\s+recreate\s+:1 now names sha256:[0-9a-f]{4}… \(was sha256:[0-9a-f]{4}…\)/);
    assert.doesNotMatch(p.stdout, /api\s+recreate/);
    const a = await berth(['apply', ...flags], env);
    assert.equal(a.code, 0, a.stderr + a.stdout);
    const now = await containers();
    assert.notEqual(now.web, beforeIds.web);
    assert.equal(now.api, beforeIds.api);
    const again = await berth(['plan', ...flags.slice(0, 4), '--cache-dir', `${work}/cache`], env);
    assert.equal(again.code, 0, again.stdout);
  });

  test('a container berth did not make is never touched; --adopt takes over a same-named one', async () => {
    const foreign = await docker.createContainer({
      name: 'handmade',
      Image: world.images.web1,
      Env: [`PORT=${port(9)}`],
      HostConfig: { NetworkMode: 'host' },
    });
    await foreign.start();
    const legacy = await docker.createContainer({
      name: 'legacy',
      Image: world.images.web1,
      Env: [`PORT=${port(8)}`],
      HostConfig: { NetworkMode: 'host' },
    });
    await legacy.start();
    repo.commit({ 'services/legacy.yaml': svc(world.images.web1, 8, 'pull: missing\n') });
    const blocked = await berth(['apply', ...flags], env);
    assert.equal(blocked.code, 1, blocked.stdout);
    assert.match(blocked.stdout, /legacy: a container named "legacy" exists that berth did not create/);
    assert.equal((await containers()).legacy, legacy.id, 'nothing applied when blocked');
    const adopted = await berth(['apply', ...flags, '--adopt'], env);
    assert.equal(adopted.code, 0, adopted.stderr + adopted.stdout);
    const now = await containers();
    assert.notEqual(now.legacy, legacy.id);
    assert.equal(now.handmade, foreign.id);
    const info = await docker.getContainer('legacy').inspect();
    assert.equal(info.Config.Labels['berth.service'], 'legacy');
  });

  test('a deleted service file removes only its container and env file', async () => {
    const beforeIds = await containers();
    repo.commit({ 'services/worker.yaml': null });
    const a = await berth(['apply', ...flags], env);
    assert.equal(a.code, 0, a.stderr + a.stdout);
    assert.match(a.stdout, /worker\s+remove\s+no longer in the repo/);
    const now = await containers();
    assert.equal(now.worker, undefined);
    assert.equal(now.web, beforeIds.web);
    assert.equal(now.handmade, beforeIds.handmade);
    assert.equal(existsSync(`${work}/env/worker`), false);
  });

  test('a stopped managed container is started again', async () => {
    await docker.getContainer('api').stop();
    const a = await berth(['apply', ...flags], env);
    assert.equal(a.code, 0, a.stderr + a.stdout);
    assert.match(a.stdout, /api\s+start\s+container is exited/);
    assert.equal((await docker.getContainer('api').inspect()).State.Running, true);
  });

  test('a new container that fails its health check is removed and the previous one serves again', async () => {
    const beforeIds = await containers();
    repo.commit({
      'services/api.yaml': svc(
        world.images.web2,
        2,
        `pull: missing\nhealthcheck: { http: 'http://127.0.0.1:${port(2)}/no-such-page', interval: 200ms, timeout: 1s, retries: 2 }\n`,
      ),
    });
    const a = await berth(['apply', ...flags], env);
    assert.equal(a.code, 1, a.stdout);
    assert.match(
      a.stdout + a.stderr,
      /health check \(http http:\/\/127\.0\.0\.1:\d+\/no-such-page\) failed: .*HTTP 404/,
    );
    assert.match(a.stdout + a.stderr, /previous container was started again/);
    const now = await containers();
    assert.equal(now.api, beforeIds.api);
    const info = await docker.getContainer('api').inspect();
    assert.equal(info.State.Running, true);
    assert.equal(info.Config.Image, world.images.web1, 'the old version keeps answering');
    const h = await berth(['history', 'api', '--steps', '--json', '--store', `${work}/berth.db`]);
    const rows = JSON.parse(h.stdout) as Array<{ action: string; result: string; message?: string }>;
    // Newest first: the change, its health wait and the rollback are each a step of the record
    // (beside the env file's write and its restore, when the env file changed too).
    const [rollback, health, recreate] = rows.filter((r) => !r.action.endsWith('-env'));
    assert.deepEqual(
      [
        recreate?.action,
        recreate?.result,
        health?.action,
        health?.result,
        rollback?.action,
        rollback?.result,
      ],
      ['recreate', 'succeeded', 'health', 'failed', 'rollback', 'succeeded'],
    );
    assert.match(health?.message ?? '', /HTTP 404/);
  });

  test('a container that cannot start is removed and the previous one started again', async () => {
    const beforeIds = await containers();
    repo.commit({
      'services/api.yaml': svc(world.images.web1, 2, "pull: missing\nentrypoint: ['/bin/no-such-program']\n"),
    });
    const a = await berth(['apply', ...flags], env);
    assert.equal(a.code, 1, a.stdout);
    assert.match(a.stdout + a.stderr, /previous container was started again/);
    const now = await containers();
    assert.equal(now.api, beforeIds.api);
    assert.equal((await docker.getContainer('api').inspect()).State.Running, true);
    assert.equal(Object.keys(now).filter((n) => n.includes('berth-old')).length, 0);
    repo.commit({ 'services/api.yaml': svc(world.images.web1, 2, 'pull: missing\n').replace('baz', 'qux') });
  });
});
