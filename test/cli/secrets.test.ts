import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import type { World } from '../world/index.js';
import { berth, MAIN, type CliResult } from '../support/cli.js';
import { startWorldFixture, type WorldFixture } from '../support/fixture.js';
import type { TestRepo } from '../support/repo.js';
import { startAgentProcess } from '../support/agent.js';

/**
 * Issue 3 end to end: a DATABASE_URL built from a secret with every awkward character reaches
 * the container intact, and canary secrets appear in no output of any command, no label and
 * no byte of the record.
 */
describe('secrets against a real engine', () => {
  let fx: WorldFixture;
  let world: World;
  let repo: TestRepo;
  let work: string;
  let docker: Docker;
  let flags: string[];
  let env: Record<string, string>;
  const tag = randomBytes(6).toString('hex');
  const password = `p/a@s:s%w0rd?#&=+ ${tag}`;
  const token = `tok-${tag}-CANARY`;
  const outputs: Array<{ what: string; text: string }> = [];

  const run = async (args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult> => {
    const r = await berth(args, { ...env, ...extraEnv });
    outputs.push({ what: `berth ${args.join(' ')}`, text: r.stdout + r.stderr });
    return r;
  };
  const secretFile = () => path.join(work, 'secrets', 'db_password');
  const writeSecret = (value: string) => {
    writeFileSync(secretFile(), `${value}\n`, { mode: 0o600 });
    chmodSync(secretFile(), 0o600);
  };

  before(async () => {
    fx = await startWorldFixture('berth-secrets-');
    ({ world, docker, work, env } = fx);
    mkdirSync(path.join(work, 'secrets'), { mode: 0o700 });
    writeSecret(password);
    execFileSync('age-keygen', ['-o', path.join(work, 'age.key')], { stdio: 'ignore' });
    chmodSync(path.join(work, 'age.key'), 0o600);
    const recipient = execFileSync('age-keygen', ['-y', path.join(work, 'age.key')], {
      encoding: 'utf8',
    }).trim();
    repo = fx.createRepo({
      'berth.yaml': `env_dir: ${work}/env\nsecrets_dir: ${work}/secrets\n`,
      'services/api.yaml': [
        `image: ${world.images.web1}`,
        'pull: missing',
        'env_vars:',
        "  PORT: '24501'",
        '  DATABASE_URL: "postgres://app:{{ secrets.db_password | urlencode }}@{{ host.address }}:5432/app"',
        "  API_TOKEN: '{{ secrets.api_token }}'",
        '',
      ].join('\n'),
      'services/web.yaml': `image: ${world.images.web1}\npull: missing\nenv_vars:\n  PORT: '24502'\n`,
    });
    // The CI user encrypts for the host: the value goes in on stdin, never in argv.
    const enc = spawnSync(
      process.execPath,
      [MAIN, 'secret', 'encrypt', '--recipient', recipient, '--repo', repo.dir, 'api_token'],
      { input: token, encoding: 'utf8' },
    );
    assert.equal(enc.status, 0, enc.stderr);
    outputs.push({ what: 'berth secret encrypt', text: enc.stdout + enc.stderr });
    repo.commit({}, 'add api_token');
    flags = [
      '--repo',
      repo.dir,
      '--env',
      'main',
      '--cache-dir',
      `${work}/cache`,
      '--store',
      `${work}/berth.db`,
      '--age-identity',
      path.join(work, 'age.key'),
    ];
  });

  after(() => fx?.stop());

  const repoFlags = () => flags.slice(0, 6).concat(flags.slice(8));

  test('the secret reaches the container so that a URL parser gets the original password back', async () => {
    assert.equal((await run(['validate', ...flags.slice(0, 6)])).code, 0);
    const r = await run(['apply', ...flags]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const info = await docker.getContainer('api').inspect();
    const envOf = (k: string) => info.Config.Env.find((e) => e.startsWith(`${k}=`))!.slice(k.length + 1);
    const url = new URL(envOf('DATABASE_URL'));
    assert.equal(decodeURIComponent(url.password), password);
    assert.equal(url.hostname, '127.0.0.1');
    assert.equal(envOf('API_TOKEN'), token);
    assert.match(readFileSync(`${work}/env/api`, 'utf8'), new RegExp(`^API_TOKEN=${token}$`, 'm'));
    outputs.push({ what: 'container labels', text: JSON.stringify(info.Config.Labels) });
  });

  test('render, plan, history and their JSON show secrets only as <secret:name>', async () => {
    const render = await run(['render', 'api', ...repoFlags()]);
    assert.equal(render.code, 0, render.stderr);
    assert.match(render.stdout, /DATABASE_URL: postgres:\/\/app:<secret:db_password>@127\.0\.0\.1:5432\/app/);
    assert.match(render.stdout, /API_TOKEN: <secret:api_token>/);
    await run(['render', 'api', '--json', ...repoFlags()]);
    assert.equal((await run(['plan', ...flags])).code, 0);
    await run(['plan', '--json', ...flags]);
    await run(['apply', '--json', ...flags]);
    await run(['history', '--store', `${work}/berth.db`]);
    await run(['history', '--json', '--store', `${work}/berth.db`]);
    await run(['history', '--steps', '--store', `${work}/berth.db`]);
    await run(['history', '--steps', '--json', '--store', `${work}/berth.db`]);
  });

  test('a changed secret is named in the plan and recreates only its service', async () => {
    const before = (await docker.getContainer('api').inspect()).Id;
    const web = (await docker.getContainer('web').inspect()).Id;
    writeSecret(`${password}-2`);
    const plan = await run(['plan', ...flags]);
    assert.equal(plan.code, 2, plan.stdout + plan.stderr);
    assert.match(plan.stdout, /api\s+recreate\s+secret db_password changed/);
    const r = await run(['apply', ...flags]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.notEqual((await docker.getContainer('api').inspect()).Id, before);
    assert.equal((await docker.getContainer('web').inspect()).Id, web);
    assert.equal((await run(['plan', ...flags])).code, 0);
  });

  test('a missing secret or a wrong age identity holds the service and leaves its container running', async () => {
    const before = (await docker.getContainer('api').inspect()).Id;
    rmSync(secretFile());
    const missing = await run(['apply', ...flags]);
    assert.equal(missing.code, 1, missing.stdout + missing.stderr);
    assert.match(
      missing.stdout,
      /api\s+held\s+services\/api\.yaml:\d+:\d+ env_vars\.DATABASE_URL: secret db_password is missing/,
    );
    writeSecret(`${password}-2`);
    execFileSync('age-keygen', ['-o', path.join(work, 'other.key')], { stdio: 'ignore' });
    chmodSync(path.join(work, 'other.key'), 0o600);
    const wrong = await run(['apply', ...flags.slice(0, -1), path.join(work, 'other.key')]);
    assert.equal(wrong.code, 1, wrong.stdout + wrong.stderr);
    assert.match(wrong.stdout, /api\s+held\s+.*cannot decrypt secrets\/api_token\.age/);
    const info = await docker.getContainer('api').inspect();
    assert.equal(info.Id, before);
    assert.equal(info.State.Running, true);
    assert.equal((await run(['plan', ...flags])).code, 0, 'the right identity again: nothing to do');
  });

  test('an unknown name or filter is a validate error with its position, and nothing is applied', async () => {
    const before = (await docker.getContainer('api').inspect()).Id;
    const good = readFileSync(path.join(repo.dir, 'services/api.yaml'), 'utf8');
    repo.commit({
      'services/api.yaml': good
        .replace('| urlencode }}', '| urlencod }}')
        .replace("'{{ secrets.api_token }}'", "'{{ hots.name }}'"),
    });
    const r = await run(['apply', ...flags]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /services\/api\.yaml:5:\d+ env_vars\.DATABASE_URL: unknown filter "urlencod"/);
    assert.match(r.stderr, /services\/api\.yaml:6:\d+ env_vars\.API_TOKEN: unknown name "hots"/);
    assert.match(r.stderr, /nothing was applied/);
    assert.equal((await docker.getContainer('api').inspect()).Id, before);
    repo.commit({ 'services/api.yaml': good });
  });

  test('berth agent: its API (status, plan, history, metrics) and its logs, through a drift repair', async () => {
    const agent = await startAgentProcess([...flags, '--interval', '1s'], env);
    try {
      const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repo.dir, encoding: 'utf8' }).trim();
      await agent.waitStatus('converged', (s) => s.applied.commit === head && s.drift.checkedAt !== null);
      // A container removed by hand: the agent plans and logs its re-creation, secrets and all.
      await docker.getContainer('api').remove({ force: true });
      await agent.waitStatus(
        'api back',
        (s) => s.drift.repairs >= 1 && s.services.some((x) => x.name === 'api' && x.state === 'running'),
      );
      for (const p of ['/v1/status', '/v1/plan', '/v1/history?limit=100', '/metrics', '/healthz']) {
        const r = await agent.get(p);
        assert.equal(r.status, 200, p);
        outputs.push({ what: `agent GET ${p}`, text: r.body });
      }
      assert.ok(
        agent.logs().some((l) => l.msg === 'plan'),
        'the drift plan is logged',
      );
    } finally {
      await agent.stop();
      outputs.push({ what: 'agent log', text: agent.output() });
    }
  });

  test('canaries: 0 hits in every output, label and the record', () => {
    for (const f of ['berth.db', 'berth.db-wal']) {
      if (existsSync(`${work}/${f}`)) {
        outputs.push({
          what: `the record (${f}, raw bytes)`,
          text: readFileSync(`${work}/${f}`).toString('latin1'),
        });
      }
    }
    const canaries = [password, `${password}-2`, token, encodeURIComponent(password), tag];
    const hits = outputs.flatMap((o) =>
      canaries.filter((c) => o.text.includes(c)).map((c) => `${o.what}: ${c}`),
    );
    assert.deepEqual(hits, []);
    assert.ok(outputs.length >= 21, `searched ${outputs.length} outputs`);
  });
});
