import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import { docker as dockerCli, type World } from '../world/index.js';
import { berth, MAIN, stateFlags } from '../support/cli.js';
import { startWorldFixture, type WorldFixture } from '../support/fixture.js';
import type { TestRepo } from '../support/repo.js';

const STEPS = ['after-env-file', 'after-pull', 'after-aside', 'after-create', 'after-start'] as const;

/**
 * berth killed with SIGKILL at each step of an apply (issue 4, point 5), then run again: the
 * expected containers, nothing extra, nothing orphaned, the new config running.
 */
describe('an apply killed at any step converges on the next run', () => {
  let fx: WorldFixture;
  let world: World;
  let repo: TestRepo;
  let work: string;
  let docker: Docker;
  let flags: string[];
  let env: Record<string, string>;
  const svc = (image: string, bar: string) =>
    `image: ${image}\npull: missing\nenv_vars:\n  PORT: '24601'\n  BAR: '${bar}'\n`;

  before(async () => {
    fx = await startWorldFixture('berth-kill-');
    ({ world, docker, work, env } = fx);
    repo = fx.createRepo({
      'berth.yaml': `env_dir: ${work}/env\n`,
      'services/web.yaml': svc(world.images.web1, 'start'),
      'services/api.yaml': `image: ${world.images.web1}\npull: missing\nenv_vars:\n  PORT: '24602'\n`,
    });
    flags = stateFlags(repo.dir, work);
    const r = await berth(['apply', ...flags], env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  after(() => fx?.stop());

  for (const [i, step] of STEPS.entries()) {
    test(`killed ${step}`, async () => {
      // A new tag that is only in the registry, so the apply pulls, writes env, replaces.
      const image = `${world.registry.address}/demo/web:kill${i}`;
      await world.publish(image, { version: `kill${i}` });
      await dockerCli(world.dockerHost, ['rmi', image]);
      repo.commit({ 'services/web.yaml': svc(image, step) });
      const apiBefore = (await docker.getContainer('api').inspect()).Id;

      const killed = spawnSync(process.execPath, [MAIN, 'apply', ...flags], {
        env: { ...process.env, ...env, BERTH_FAILPOINT: step, NO_COLOR: '1' },
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(
        killed.signal,
        'SIGKILL',
        `expected berth to die at ${step}: ${killed.stdout}${killed.stderr}`,
      );

      const again = await berth(['apply', ...flags], env);
      assert.equal(again.code, 0, again.stdout + again.stderr);
      const names = (await docker.listContainers({ all: true })).map((c) => c.Names[0]!.slice(1)).sort();
      assert.deepEqual(names, ['api', 'web'], 'the expected containers, nothing extra');
      const web = await docker.getContainer('web').inspect();
      assert.equal(web.State.Running, true);
      assert.equal(web.Config.Image, image);
      assert.ok(web.Config.Env.includes(`BAR=${step}`));
      assert.match(readFileSync(`${work}/env/web`, 'utf8'), new RegExp(`^BAR=${step}$`, 'm'));
      assert.equal((await docker.getContainer('api').inspect()).Id, apiBefore, 'other services untouched');
      const plan = await berth(
        ['plan', ...flags.slice(0, 4), '--cache-dir', `${work}/cache`, '--store', `${work}/berth.db`],
        env,
      );
      assert.equal(plan.code, 0, plan.stdout + plan.stderr);
    });
  }
});
