// @slow: a real engine and git repos with thousands of services.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { MAIN, stateFlags } from '../support/cli.js';
import { startEngineFixture, type EngineFixture } from '../support/fixture.js';
import type { TestRepo } from '../support/repo.js';

/**
 * Run berth with its stdout on a pipe that nobody reads for a while, as `berth plan --json |
 * slow-consumer` would: the pipe fills (64 KiB) long before berth is done. Everything must
 * still arrive, whatever the size, and the exit code must match what was printed.
 */
function throughSlowPipe(args: string[], env: Record<string, string>) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      env: { ...process.env, NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.pause();
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // Start reading only after berth had every chance to write all and exit.
    const late = setTimeout(() => {
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stdout.resume();
    }, 1_500);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`berth ${args[0]} did not finish in 180 s`));
    }, 180_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      clearTimeout(late);
      resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr });
    });
  });
}

describe('output is never cut off when piped', () => {
  const N = 5_000;
  let fx: EngineFixture;
  let repo: TestRepo;
  let env: Record<string, string>;
  let flags: string[];

  before(async () => {
    fx = await startEngineFixture('berth-output-');
    const files: Record<string, string> = { 'berth.yaml': `env_dir: ${fx.work}/env\n` };
    for (let i = 0; i < N; i++) {
      files[`services/svc-${String(i).padStart(4, '0')}.yaml`] =
        `image: 127.0.0.1:5999/team/svc:1\npull: missing\nenv_vars: { INDEX: '${i}' }\n`;
    }
    repo = fx.createRepo(files);
    // A branch where every service file has a problem: validate has thousands of issues to print.
    repo.git('checkout', '-q', '-b', 'broken');
    const broken: Record<string, string> = {};
    for (let i = 0; i < N; i++) {
      broken[`services/svc-${String(i).padStart(4, '0')}.yaml`] =
        `image: 127.0.0.1:5999/team/svc:1\npull: missing\nenv_vars: { INDEX: '${i}', 'bad name': x }\n`;
    }
    repo.commit(broken);
    repo.git('checkout', '-q', 'main');
    env = fx.env;
    flags = stateFlags(repo.dir, fx.work);
  });

  after(() => fx?.stop());

  test(`validate --json with ${N} problems arrives whole`, async () => {
    const r = await throughSlowPipe(['validate', '--json', '--repo', repo.dir, '--env', 'broken'], env);
    assert.equal(r.code, 1, r.stderr);
    assert.ok(r.stdout.length > 131_072, `${r.stdout.length} bytes; stderr: ${r.stderr.slice(0, 2000)}`);
    const v = JSON.parse(r.stdout) as { ok: boolean; issues: unknown[] };
    assert.equal(v.ok, false);
    assert.equal(v.issues.length, N);
  });

  test(`plan --json of ${N} services arrives whole, and parses`, async () => {
    const r = await throughSlowPipe(['plan', '--json', ...flags], env);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stdout.length > 1_000_000, `${r.stdout.length} bytes`);
    const plan = JSON.parse(r.stdout) as { operations: unknown[]; pulls: unknown[] };
    assert.equal(plan.operations.length, 2 * N, 'a write-env and a create for each');
  });

  test('plan as text ends with its summary line, however long the plan', async () => {
    const r = await throughSlowPipe(['plan', ...flags], env);
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.at(-1), `${N} to create, ${N} env files to write; 0 unchanged.`);
  });
});
