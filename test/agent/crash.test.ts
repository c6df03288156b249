import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import { docker as dockerCli, type World } from '../world/index.js';
import { startHaproxy, type HaproxyHandle } from '../world/haproxy.js';
import { freePort, killOnExit, sleep, stopPid } from '../world/proc.js';
import { MAIN, stateFlags } from '../support/cli.js';
import { haproxyBalancer, startWorldFixture, type WorldFixture } from '../support/fixture.js';
import { createRemote, startAgentProcess, type AgentRemote } from '../support/agent.js';
import { startGitHttp, type GitHttpServer } from '../support/git-http.js';

/** Every crash point of an apply (src/apply/failpoint.ts), in the order an apply reaches them. */
const STEPS = [
  'after-env-file',
  'after-pull',
  'after-drain',
  'after-aside',
  'after-create',
  'after-start',
] as const;
const ROUNDS = 2;

// A loopback address and port of their own: engines share the host network with other tests.
const ADDRESS = '127.0.0.61';
const PORT = 24931;

/**
 * Issue 10, crash safety and outages, against real components: a `berth agent` process, a real
 * engine and registry (test/world), a real HAProxy in front of the host (the drain step), and the
 * state repo as a bare repository served by git's own smart-HTTP server (test/support/git-http.ts),
 * which the outage test takes down and brings back. The agent is killed with SIGKILL at each step
 * of an apply (BERTH_FAILPOINT), round after round; the next agent converges with no duplicate or
 * orphaned container and the host back in rotation.
 */
describe('berth agent: killed at any step, and a git outage', () => {
  let fx: WorldFixture;
  let world: World;
  let hap: HaproxyHandle;
  let git: GitHttpServer;
  let remote: AgentRemote;
  let work: string;
  let docker: Docker;

  const service = (image: string, bar: string) =>
    [
      `image: ${image}`,
      'pull: missing',
      'drain: true',
      'env_vars:',
      `  PORT: '${PORT}'`,
      `  BIND: '{{ host.address }}'`,
      `  BAR: '${bar}'`,
      `healthcheck: { http: 'http://{{ host.address }}:${PORT}/version', interval: 100ms, timeout: 1s, retries: 5 }`,
      '',
    ].join('\n');
  const flags = (url: string) => [...stateFlags(url, work), '--host', 'h1'];
  const env = () => ({ DOCKER_HOST: world.dockerHost });
  const names = async () =>
    (await docker.listContainers({ all: true })).map((c) => c.Names[0]!.slice(1)).sort();

  before(async () => {
    [fx, hap] = await Promise.all([
      startWorldFixture('berth-agent-crash-'),
      startHaproxy({ servers: [{ name: 'h1', address: ADDRESS, port: PORT }] }),
    ]);
    ({ world, docker, work } = fx);
    remote = createRemote({
      'berth.yaml': [`env_dir: ${work}/env`, ...haproxyBalancer(hap, '2s'), ''].join('\n'),
      'inventory.yaml': `hosts:\n  h1: { address: ${ADDRESS} }\n`,
      'services/web.yaml': service(world.images.web1, 'start'),
    });
    git = await startGitHttp(path.dirname(remote.bare));
  });

  after(async () => {
    await git?.stop();
    await hap?.stop();
    await fx?.stop();
    remote?.remove();
  });

  /** Run the agent with a crash point set until it kills itself there (bounded). */
  const killedAt = async (step: string) => {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [MAIN, 'agent', '--listen', `127.0.0.1:${port}`, '--interval', '1h', ...flags(remote.url)],
      {
        env: { ...process.env, ...env(), BERTH_FAILPOINT: step, NO_COLOR: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const forget = killOnExit(child.pid!);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => void stopPid(child.pid!, 5_000), 120_000);
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    clearTimeout(timer);
    forget();
    return { ...exit, out };
  };

  for (let round = 1; round <= ROUNDS; round++) {
    for (const [i, step] of STEPS.entries()) {
      test(`round ${round}: killed ${step}, the next agent converges`, async () => {
        // A tag only in the registry: the apply pulls, writes the env file, drains, replaces.
        const image = `${world.registry.address}/demo/web:crash${round}-${i}`;
        await world.publish(image, { version: `crash${round}-${i}` });
        await dockerCli(world.dockerHost, ['rmi', image]);
        const commit = remote.push({ 'services/web.yaml': service(image, `${round}-${step}`) });

        const killed = await killedAt(step);
        assert.equal(killed.signal, 'SIGKILL', `the agent should die at ${step}:\n${killed.out}`);

        const agent = await startAgentProcess([...flags(remote.url), '--interval', '1s'], env());
        try {
          await agent.waitStatus(
            'the commit applied after the crash',
            (s) => s.applied.commit === commit && s.agent.activity === 'idle',
            120_000,
          );
          assert.deepEqual(await names(), ['web'], 'one container: no duplicate, nothing orphaned');
          const web = await docker.getContainer('web').inspect();
          assert.equal(web.State.Running, true);
          assert.equal(web.Config.Image, image);
          assert.ok(web.Config.Env.includes(`BAR=${round}-${step}`));
          assert.match(readFileSync(`${work}/env/web`, 'utf8'), new RegExp(`^BAR=${round}-${step}$`, 'm'));
          assert.equal(await hap.adminState('h1'), 0, 'h1 is back in rotation');
          const through = await hap.request('/version');
          assert.equal(through.status, 200);
          assert.equal(through.body.trim(), `crash${round}-${i}`);
        } finally {
          const r = await agent.stop();
          assert.deepEqual(r, { code: 0, signal: null }, 'SIGTERM ends the agent cleanly');
        }
      });
    }
  }

  test('the git remote goes away: nothing is stopped, the status turns stale, and it converges once the remote is back', async () => {
    const url = `${git.url}/${path.basename(remote.bare)}`;
    const agent = await startAgentProcess([...flags(url), '--interval', '1s', '--stale-after', '4s'], env());
    try {
      const first = remote.git('rev-parse', 'HEAD');
      await agent.waitStatus('converged over HTTP', (s) => s.applied.commit === first && !s.source.stale);
      const before = (await docker.getContainer('web').inspect()).Id;

      await git.down();
      const pushed = remote.push({ 'services/web.yaml': service(world.images.web2, 'after-outage') });
      const stale = await agent.waitStatus(
        'the source stale',
        (s) => s.source.stale && s.source.error !== null,
      );
      assert.match(stale.source.error!, /127\.0\.0\.1/);
      assert.equal(stale.applied.commit, first, 'nothing new applied while the remote is away');
      assert.match((await agent.get('/metrics')).body, /berth_agent_source_stale 1/);
      // A few more turns without the remote: the host keeps running what it ran.
      await sleep(3_000);
      const web = await docker.getContainer('web').inspect();
      assert.equal(web.Id, before, 'the container was not touched');
      assert.equal(web.State.Running, true);
      assert.equal(await hap.adminState('h1'), 0, 'still in rotation');
      assert.equal((await hap.request('/version')).status, 200);
      assert.ok(
        agent.logs().some((l) => /the source is stale/.test(String(l.msg))),
        'the staleness is logged',
      );

      await git.up();
      const s = await agent.waitStatus(
        'converged after the remote is back',
        (s) => s.applied.commit === pushed && !s.source.stale,
        120_000,
      );
      assert.equal(s.source.error, null);
      const now = await docker.getContainer('web').inspect();
      assert.equal(now.Config.Image, world.images.web2);
      assert.ok(now.Config.Env.includes('BAR=after-outage'));
      assert.ok(agent.logs().some((l) => l.msg === 'the remote answers again'));
    } finally {
      await agent.stop();
    }
  });
});
