import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import { waitUntil, type World } from '../world/index.js';
import { startHaproxy, type HaproxyHandle } from '../world/haproxy.js';
import { berth, stateFlags } from '../support/cli.js';
import { startWorldFixture, type WorldFixture } from '../support/fixture.js';
import { load } from '../support/load.js';
import type { TestRepo } from '../support/repo.js';

/** The service's port on 127.0.0.1; no other test uses it. */
const PORT = 24871;

/**
 * Issue 15 end to end: a config file rendered from the repo, mounted into a real container, and
 * a change to it applied by rewriting the file in place and sending SIGHUP, with no restart,
 * while a steady load goes through real HAProxy. A reload that breaks the health check is
 * reverted: the previous file goes back and is reloaded.
 */
describe('files: reload without restart against a real engine, under load through HAProxy', () => {
  let fx: WorldFixture;
  let world: World;
  let hap: HaproxyHandle;
  let repo: TestRepo;
  let work: string;
  let docker: Docker;
  let image: string;

  const service = () =>
    [
      `image: ${image}`,
      'pull: missing',
      'env_vars:',
      `  PORT: '${PORT}'`,
      `healthcheck: { http: 'http://127.0.0.1:${PORT}/version', interval: 100ms, timeout: 1s, retries: 3 }`,
      'files:',
      '  - source: files/web.conf',
      '    target: /etc/web.conf',
      '    reload: SIGHUP',
      '',
    ].join('\n');
  // The page shows the environment's name through the template, so the file is really rendered.
  const conf = (v: string) => `${v} on {{ env }}\n`;

  const run = (cmd: string, ...extra: string[]) =>
    berth(
      [
        cmd,
        ...stateFlags(repo.dir, work),
        '--env-dir',
        `${work}/env`,
        '--files-dir',
        `${work}/files`,
        ...extra,
      ],
      fx.env,
      120_000,
    );
  const container = async () => {
    const info = await docker.getContainer('web').inspect();
    return { id: info.Id, startedAt: info.State.StartedAt, restarts: info.RestartCount };
  };
  const page = async () => (await hap.request('/version')).body.trim();
  const hostFile = () => path.join(work, 'files/web/etc-web.conf');

  before(async () => {
    fx = await startWorldFixture('berth-files-');
    ({ world, docker, work } = fx);
    image = `${world.registry.address}/demo/conf:1`;
    await world.publish(image, { version: 'conf', behaviour: 'reload' });
    hap = await startHaproxy({ servers: [{ name: 's1', address: '127.0.0.1', port: PORT }] });
    repo = fx.createRepo({ 'services/web.yaml': service(), 'files/web.conf': conf('v1') });
  });

  after(async () => {
    await hap?.stop();
    await fx?.stop();
  });

  test('the first apply writes the rendered file and mounts it read-only', async () => {
    const r = await run('apply');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(readFileSync(hostFile(), 'utf8'), 'v1 on main\n');
    assert.equal(statSync(hostFile()).mode & 0o777, 0o644);
    await waitUntil('v1 served', async () => (await page()) === 'v1 on main', { timeoutMs: 20_000 });
    const info = await docker.getContainer('web').inspect();
    const mount = info.Mounts.find((m) => m.Destination === '/etc/web.conf');
    assert.equal(mount?.Source, hostFile());
    assert.equal(mount?.RW, false);
  });

  test('a changed file is rewritten in place and reloaded: same container, same start, 0 failed requests', async (t) => {
    const was = await container();
    const inode = statSync(hostFile()).ino;
    repo.commit({ 'files/web.conf': conf('v2') });
    const plan = await run('plan', '--diff');
    assert.equal(plan.code, 2, plan.stdout + plan.stderr);
    assert.match(plan.stdout, /web {2}write-file {2}\/etc\/web\.conf \(changed: \+1 -1 lines\)/);
    assert.match(plan.stdout, /web {2}reload {6}SIGHUP \(file \/etc\/web\.conf changed\)/);
    assert.match(plan.stdout, /^-v1 on main\n\+v2 on main$/m);

    const l = load(hap.frontend, { workers: 4, maxRequests: 20_000, maxMs: 60_000 });
    // Some traffic before the change, so the load really spans it.
    await new Promise((r) => setTimeout(r, 300));
    const r = await run('apply');
    await waitUntil('v2 served', async () => (await page()) === 'v2 on main', { timeoutMs: 20_000 });
    const got = await l.finish();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    t.diagnostic(`${got.sent} requests through HAProxy during the reload: ${JSON.stringify(got.versions)}`);
    assert.deepEqual(got.failures, [], `${got.failures.length} of ${got.sent} requests failed`);
    assert.ok(
      (got.versions['v1 on main'] ?? 0) > 0 && (got.versions['v2 on main'] ?? 0) > 0,
      JSON.stringify(got.versions),
    );
    assert.deepEqual(await container(), was, 'no restart');
    assert.equal(statSync(hostFile()).ino, inode, 'the same inode: the mount sees the new content');
    assert.equal(readFileSync(hostFile(), 'utf8'), 'v2 on main\n');
    const again = await run('plan');
    assert.equal(again.code, 0, again.stdout);
  });

  test('a reload that breaks the health check is reverted: the previous file is back and reloaded', async () => {
    const was = await container();
    repo.commit({ 'files/web.conf': 'broken\n' });
    const r = await run('apply');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /the previous files were put back and reloaded/);
    assert.equal(readFileSync(hostFile(), 'utf8'), 'v2 on main\n');
    assert.equal(await page(), 'v2 on main');
    assert.deepEqual(await container(), was, 'no restart');
  });
});
