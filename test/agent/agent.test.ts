import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import type { World } from '../world/index.js';
import { stateFlags } from '../support/cli.js';
import { startWorldFixture, type WorldFixture } from '../support/fixture.js';
import { createRemote, startAgentProcess, type AgentProcess, type AgentRemote } from '../support/agent.js';
import { signBody } from '../../src/agent/webhooks.js';
import { openSqliteStore } from '../../src/store/sqlite.js';

/**
 * Issue 10 against real components: a `berth agent` process, a real Docker engine and registry
 * (test/world), and a real git remote (a bare repository over file://) that the test pushes to
 * as CI would. Webhooks go to the agent's real port on 127.0.0.1.
 */
describe('berth agent against a real engine and a real git remote', () => {
  let fx: WorldFixture;
  let world: World;
  let remote: AgentRemote;
  let work: string;
  let docker: Docker;
  const secret = 'hook-secret-for-tests';
  const apiToken = 'api-token-for-tests';
  const svc = (image: string, port: number, extra = '') =>
    `image: ${image}\npull: missing\nenv_vars:\n  PORT: '${port}'\n${extra}`;
  const flags = () => [...stateFlags(remote.url, work), '--stale-after', '20s'];
  const env = () => ({
    DOCKER_HOST: world.dockerHost,
    BERTH_WEBHOOK_SECRET: secret,
    BERTH_API_TOKEN: apiToken,
  });
  const envOf = async (name: string) => (await docker.getContainer(name).inspect()).Config.Env;

  before(async () => {
    fx = await startWorldFixture('berth-agent-');
    ({ world, docker, work } = fx);
    remote = createRemote({
      'berth.yaml': `env_dir: ${work}/env\n`,
      'services/web.yaml': svc(world.images.web1, 24701, "  BAR: 'one'\n"),
      'services/api.yaml': svc(world.images.web1, 24702),
    });
  });

  after(async () => {
    await fx?.stop();
    remote?.remove();
  });

  describe('polling, drift and the API', () => {
    let agent: AgentProcess;
    before(async () => {
      agent = await startAgentProcess([...flags(), '--interval', '1s'], env());
    });
    after(async () => {
      const r = await agent?.stop();
      assert.deepEqual(r, { code: 0, signal: null }, 'SIGTERM ends the agent cleanly');
    });

    test('converges the branch at start and says so in its status', async () => {
      const head = remote.git('rev-parse', 'HEAD');
      const s = await agent.waitStatus('the first commit applied', (s) => s.applied.commit === head);
      assert.equal(s.version, 'berth.agent.status/v1');
      assert.equal(s.source.desiredCommit, head);
      assert.equal(s.source.stale, false);
      assert.equal(s.env, 'main');
      assert.equal((await docker.getContainer('web').inspect()).State.Running, true);
      assert.ok((await envOf('web')).includes('BAR=one'));
    });

    test('a pushed commit is running after the next look', async () => {
      const commit = remote.push({ 'services/web.yaml': svc(world.images.web2, 24701, "  BAR: 'two'\n") });
      const applied = await agent.waitStatus('the pushed commit applied', (s) => s.applied.commit === commit);
      const web = await docker.getContainer('web').inspect();
      assert.equal(
        web.Config.Image,
        world.images.web2,
        `web runs ${web.Config.Image} (${web.State.Status}); status: ${JSON.stringify(applied.lastReconcile)}\nlog:\n${agent.output().slice(-8000)}`,
      );
      assert.ok(web.Config.Env.includes('BAR=two'));
      const s = await agent.waitStatus(
        'services listed',
        (s) => s.services.length === 2 && s.drift.checkedAt !== null,
      );
      const row = s.services.find((x) => x.name === 'web')!;
      assert.equal(row.image, world.images.web2);
      assert.equal(row.state, 'running');
      assert.equal(row.health, 'healthy');
      assert.match(row.digest ?? '', /^sha256:[0-9a-f]{64}$/);
      assert.equal(row.stateCommit, commit);
      assert.equal(row.lastResult?.result, 'succeeded');
    });

    test('a container stopped by hand is started again (self-heal)', async () => {
      const id = (await docker.getContainer('api').inspect()).Id;
      const turns = async () => (JSON.parse((await agent.get('/healthz')).body) as { turns: number }).turns;
      await docker.getContainer('api').stop({ t: 1 });
      const stoppedAt = await turns();
      await agent.waitStatus('a drift repair', (s) => s.drift.repairs >= 1 && s.drift.changes.length === 0);
      // Within one interval, counted in turns rather than seconds (a busy machine stretches
      // seconds): the turn under way may have looked before the stop, the next one repairs.
      // One more may end while this test polls; a repair only every few intervals would not fit.
      const repairedBy = await turns();
      assert.ok(repairedBy - stoppedAt <= 3, `repaired ${repairedBy - stoppedAt} turns after the stop`);
      const api = await docker.getContainer('api').inspect();
      assert.equal(api.State.Running, true);
      assert.equal(api.Id, id, 'started again, not recreated');
      const drift = agent.logs().find((l) => l.msg === 'drift: the host differs from the applied commit');
      assert.ok(drift, 'the drift is logged');
      assert.match(JSON.stringify(drift.changes), /api.*start/);
    });

    test('a container removed by hand is created again', async () => {
      const repairs = (await agent.status()).drift.repairs;
      await docker.getContainer('api').remove({ force: true });
      await agent.waitStatus(
        'api back',
        (s) => s.drift.repairs > repairs && s.services.some((x) => x.name === 'api' && x.state === 'running'),
      );
      assert.equal((await docker.getContainer('api').inspect()).State.Running, true);
    });

    test('a repo that suddenly has no services is refused and nothing is removed', async () => {
      const good = remote.git('rev-parse', 'HEAD');
      const empty = remote.push(
        { 'services/web.yaml': null, 'services/api.yaml': null },
        'remove everything',
      );
      const s = await agent.waitStatus('the empty commit refused', (s) => s.failure?.commit === empty);
      assert.match(s.failure!.reason, /allow-empty/);
      assert.equal(s.applied.commit, good);
      const names = (await docker.listContainers()).map((c) => c.Names[0]);
      assert.ok(names.includes('/web') && names.includes('/api'), 'both still running');
      // A new commit resets the backoff and is applied at once.
      const fixed = remote.push({
        'services/web.yaml': svc(world.images.web2, 24701, "  BAR: 'two'\n"),
        'services/api.yaml': svc(world.images.web1, 24702),
      });
      const after = await agent.waitStatus('the fixed commit applied', (s) => s.applied.commit === fixed);
      assert.equal(after.failure, null);
    });

    test('a commit that fails is not retried in a hot loop, and a new commit resets the backoff', async () => {
      const missing = `${world.registry.address}/demo/web:nowhere`;
      const bad = remote.push({ 'services/api.yaml': svc(missing, 24702) }, 'an image that does not exist');
      await agent.waitStatus(
        'the failing commit in backoff',
        (s) => s.failure?.commit === bad && s.failure.failures >= 2,
      );
      // Watch it for a while: with a 1 s interval, a hot loop would try every second.
      const seen = await agent.status();
      await new Promise((r) => setTimeout(r, 6_000));
      const later = await agent.status();
      const store = openSqliteStore(`${work}/berth.db`);
      const tries = (await store.applies({ limit: 1000 })).filter((a) => a.stateCommit === bad).length;
      await store.close();
      assert.ok(
        later.failure!.failures - seen.failure!.failures <= 3,
        `retried ${later.failure!.failures} times`,
      );
      assert.ok(tries <= later.failure!.failures, `${tries} applies recorded for the failing commit`);
      assert.ok(Date.parse(later.failure!.retryAt) > Date.parse(later.lastReconcile!.finishedAt));
      assert.equal((await docker.getContainer('api').inspect()).State.Running, true, 'api still runs');
      const good = remote.push({ 'services/api.yaml': svc(world.images.web1, 24702, "  FIXED: 'yes'\n") });
      const s = await agent.waitStatus('the next commit applied', (s) => s.applied.commit === good);
      assert.equal(s.failure, null);
      assert.ok((await envOf('api')).includes('FIXED=yes'));
    });

    test('history, plan and metrics answer from what the agent knows', async () => {
      const h = await agent.get('/v1/history?limit=5');
      assert.equal(h.status, 200);
      const history = JSON.parse(h.body) as { version: string; rows: Array<{ service: string }> };
      assert.equal(history.version, 'berth.agent.history/v1');
      assert.equal(history.rows.length, 5);
      assert.equal((await agent.get('/v1/history?limit=0')).status, 400);
      const p = JSON.parse((await agent.get('/v1/plan')).body) as {
        version: string;
        drift: { plan: { changes: boolean } } | null;
      };
      assert.equal(p.version, 'berth.agent.plan/v1');
      assert.equal(p.drift?.plan.changes, false);
      const m = await agent.get('/metrics');
      assert.equal(m.status, 200);
      const head = remote.git('rev-parse', 'HEAD');
      assert.match(m.body, new RegExp(`berth_agent_applied_commit_info\\{commit="${head}"\\} 1`));
      assert.match(m.body, /berth_agent_reconciles_total\{result="applied"\} \d+/);
      assert.match(m.body, /berth_agent_reconcile_duration_seconds_bucket/);
      assert.match(m.body, /berth_agent_drift_repairs_total\{result="applied"\} [1-9]/);
      assert.match(m.body, /berth_agent_source_stale 0/);
      assert.match(m.body, /berth_agent_process_resident_memory_bytes \d+/);
      assert.equal((await agent.get('/nothing')).status, 404);
    });
  });

  describe('webhooks and sync', () => {
    let agent: AgentProcess;
    const checks = async () => {
      const m = (await agent.get('/metrics')).body;
      return [...m.matchAll(/berth_agent_source_checks_total\{result="(\w+)"\} (\d+)/g)].reduce(
        (a, x) => a + Number(x[2]),
        0,
      );
    };
    before(async () => {
      // An hour between looks: anything that happens sooner was started by a webhook or the API.
      agent = await startAgentProcess([...flags(), '--interval', '1h', '--no-self-heal'], env());
      const head = remote.git('rev-parse', 'HEAD');
      await agent.waitStatus(
        'started and converged',
        (s) => s.applied.commit === head && s.agent.activity === 'idle',
      );
    });
    after(async () => {
      await agent?.stop();
    });

    test('a signed GitHub webhook makes a pushed commit run without waiting for the interval', async () => {
      const commit = remote.push({ 'services/web.yaml': svc(world.images.web1, 24701, "  BAR: 'hook'\n") });
      const body = JSON.stringify({ ref: 'refs/heads/main', after: commit });
      const r = await agent.post('/hooks/github', body, {
        'content-type': 'application/json',
        'x-github-event': 'push',
        'x-hub-signature-256': signBody(body, secret),
      });
      assert.equal(r.status, 202, r.body);
      const s = await agent.waitStatus('the hooked commit applied', (s) => s.applied.commit === commit);
      assert.equal(s.lastReconcile?.trigger, 'webhook:github');
      assert.ok((await envOf('web')).includes('BAR=hook'));
    });

    test('GitLab, Gitea and the generic form are accepted with their own proofs', async () => {
      const body = '{"object_kind":"push"}';
      const forms: Array<[string, Record<string, string>]> = [
        ['gitlab', { 'x-gitlab-token': secret }],
        ['gitea', { 'x-gitea-signature': signBody(body, secret).slice('sha256='.length) }],
        ['generic', { 'x-berth-signature': signBody(body, secret) }],
      ];
      for (const [kind, headers] of forms) {
        const r = await agent.post(`/hooks/${kind}`, body, headers);
        assert.equal(r.status, 202, `${kind}: ${r.body}`);
      }
    });

    test('a bad signature or an oversized body is refused without any work', async () => {
      await agent.waitStatus('idle', (s) => s.agent.activity === 'idle');
      const before = await checks();
      const lastCheck = (await agent.status()).source.lastCheckAt;
      const body = '{"ref":"refs/heads/main"}';
      const bad = [
        await agent.post('/hooks/github', body, { 'x-hub-signature-256': signBody(body, 'wrong-secret') }),
        await agent.post('/hooks/github', body, {}),
        await agent.post('/hooks/gitlab', body, { 'x-gitlab-token': 'wrong' }),
        await agent.post('/hooks/generic', body, { 'x-berth-signature': 'sha256=00' }),
      ];
      assert.deepEqual(
        bad.map((r) => r.status),
        [401, 401, 401, 401],
      );
      // 2 MiB, signed correctly: refused by its size alone, before it is read to the end.
      const big = Buffer.alloc(2 * 1024 * 1024, 0x61);
      const huge = await agent.post('/hooks/github', big, { 'x-hub-signature-256': signBody(big, secret) });
      assert.equal(huge.status, 413);
      const m = (await agent.get('/metrics')).body;
      assert.match(m, /berth_agent_webhooks_total\{kind="github",result="bad_signature"\} 2/);
      assert.match(m, /berth_agent_webhooks_total\{kind="github",result="too_large"\} 1/);
      assert.equal(await checks(), before, 'no look at the remote was made');
      assert.equal((await agent.status()).source.lastCheckAt, lastCheck);
    });

    test('POST /v1/sync needs the bearer token; drift is only reported without self-heal', async () => {
      await docker.getContainer('api').stop({ t: 1 });
      assert.equal((await agent.post('/v1/sync', '')).status, 401);
      assert.equal((await agent.post('/v1/sync', '', { authorization: 'Bearer nope' })).status, 401);
      const before = (await agent.status()).drift.checkedAt;
      const ok = await agent.post('/v1/sync', '', { authorization: `Bearer ${apiToken}` });
      assert.equal(ok.status, 202);
      const s = await agent.waitStatus(
        'drift seen',
        (s) => s.drift.checkedAt !== before && s.drift.changes.length > 0,
      );
      assert.deepEqual(
        s.drift.changes.map((c) => [c.service, c.kind]),
        [['api', 'start']],
      );
      assert.equal(s.drift.repairs, 0);
      assert.equal((await docker.getContainer('api').inspect()).State.Running, false, 'left as it is');
      assert.equal(s.services.find((x) => x.name === 'api')?.state, 'exited');
      await docker.getContainer('api').start();
    });
  });

  test('bad flags are refused with the flag named', async () => {
    const { berth } = await import('../support/cli.js');
    const noEnv = await berth(['agent', '--repo', remote.url], { DOCKER_HOST: world.dockerHost });
    assert.equal(noEnv.code, 1);
    assert.match(noEnv.stderr, /--env/);
    const listen = await berth(['agent', '--repo', remote.url, '--env', 'main', '--listen', 'nowhere'], {
      DOCKER_HOST: world.dockerHost,
    });
    assert.equal(listen.code, 1);
    assert.match(listen.stderr, /--listen "nowhere"/);
    const verify = await berth(['agent', '--repo', remote.url, '--env', 'main', '--verify-signatures'], {
      DOCKER_HOST: world.dockerHost,
    });
    assert.equal(verify.code, 1);
    assert.match(verify.stderr, /--allowed-signers/);
  });
});
