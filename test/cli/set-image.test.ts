import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { berth } from '../support/cli.js';
import { tempDirs } from '../support/git.js';
import { createRemote, type TestRemote } from '../support/remote.js';

// `berth set-image` as built, against real bare git repositories (the remote CI pushes to).

const tempDir = tempDirs('berth-setimage-');
const remotes: TestRemote[] = [];
after(() => remotes.forEach((r) => r.remove()));

const API = `# api: the public API (owned by payments)
image: 127.0.0.1:5000/team/api:1.4.2     # bumped by CI
gitCommit: 3f2a1c9d   # CI metadata
buildNumber: '123'

env_vars: {BAR: baz,  QUX: "1.10"}   # flow map, odd spacing kept
hosts:
    - app_server
`;

const WEB = `# the reference design's own fragment
web:
  name: web
  image: >-
    127.0.0.1:5000/team/web:5
  gitCommit: 1a2b3c4d
  buildNumber: '41'
  env_vars:
    FOO: bar   # keep me
`;

const INVENTORY = 'hosts:\n  app-1: { groups: [app_server] }\n';

function remote(extra: Record<string, string> = {}): TestRemote {
  const r = createRemote({
    'services/api.yaml': API,
    'services/web.yaml': WEB,
    'inventory.yaml': INVENTORY,
    ...extra,
  });
  remotes.push(r);
  return r;
}

function setImage(r: TestRemote, args: string[], env: Record<string, string> = {}) {
  return berth(['set-image', '--repo', r.url, '--env', 'staging', '--cache-dir', tempDir(), ...args], env);
}

describe('set-image', () => {
  test('edits only the values, commits "api: build 124 (4b5c6d7)" and pushes', async () => {
    const r = remote();
    const res = await setImage(r, [
      'api',
      '--image',
      '127.0.0.1:5000/team/api:1.4.3',
      '--commit',
      '4b5c6d7e8f90',
      '--build',
      '124',
    ]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(
      res.stdout,
      /^api: build 124 \(4b5c6d7\) pushed to staging as [0-9a-f]{12} \(was build 123 \(3f2a1c9\)\)\n$/,
    );
    assert.equal(
      r.show('staging', 'services/api.yaml'),
      API.replace('api:1.4.2', 'api:1.4.3').replace('3f2a1c9d', '4b5c6d7e8f90').replace("'123'", "'124'"),
    );
    assert.deepEqual(r.subjects('staging'), ['api: build 124 (4b5c6d7)', 'initial state']);
    const body = r.git('log', '-1', '--format=%b', 'staging');
    assert.match(body, /image: 127\.0\.0\.1:5000\/team\/api:1\.4\.2 → 127\.0\.0\.1:5000\/team\/api:1\.4\.3/);
    assert.match(body, /buildNumber: 123 → 124/);
    assert.equal(r.show('staging', 'services/web.yaml'), WEB, 'other files untouched');
  });

  test("keyed form: the folded image's line changes, nothing else", async () => {
    const r = remote();
    const res = await setImage(r, ['web', '--image', '127.0.0.1:5000/team/web:6', '--build', '42', '--json']);
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout);
    assert.equal(out.changed, true);
    assert.equal(out.file, 'services/web.yaml');
    assert.deepEqual(out.after, {
      image: '127.0.0.1:5000/team/web:6',
      gitCommit: '1a2b3c4d',
      buildNumber: '42',
    });
    assert.equal(r.head('staging'), out.commit);
    assert.equal(
      r.show('staging', 'services/web.yaml'),
      WEB.replace('web:5', 'web:6').replace("'41'", "'42'"),
    );
  });

  test('an unchanged value makes no commit; running twice commits once', async () => {
    const r = remote();
    const args = ['api', '--image', '127.0.0.1:5000/team/api:1.4.3', '--build', '124'];
    assert.equal((await setImage(r, args)).code, 0);
    const head = r.head('staging');
    const again = await setImage(r, args);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, 'api: staging already has build 124 (3f2a1c9); nothing to commit\n');
    assert.equal(r.head('staging'), head);
    assert.equal(r.subjects('staging').length, 2);
  });

  test('a lower build is refused (exit 1, nothing pushed) unless --force', async () => {
    const r = remote();
    const head = r.head('staging');
    const low = await setImage(r, ['api', '--image', '127.0.0.1:5000/team/api:1.4.1', '--build', '99']);
    assert.equal(low.code, 1);
    assert.match(low.stderr, /build 99 is lower than build 123 on staging; refused, nothing was pushed/);
    assert.equal(r.head('staging'), head);
    const forced = await setImage(r, [
      'api',
      '--image',
      '127.0.0.1:5000/team/api:1.4.1',
      '--build',
      '99',
      '--force',
    ]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(r.subjects('staging')[0], 'api: build 99 (3f2a1c9)');
  });

  test('author and committer from flags, else from GIT_AUTHOR_* / GIT_COMMITTER_*', async () => {
    const r = remote();
    const byFlags = await setImage(r, [
      'api',
      '--image',
      '127.0.0.1:5000/team/api:2',
      '--author',
      'CI Bot <ci@example.com>',
      '--committer',
      'Release Train <train@example.com>',
    ]);
    assert.equal(byFlags.code, 0, byFlags.stderr);
    assert.equal(
      r.git('log', '-1', '--format=%an <%ae>|%cn <%ce>', 'staging'),
      'CI Bot <ci@example.com>|Release Train <train@example.com>',
    );
    const byEnv = await setImage(r, ['api', '--image', '127.0.0.1:5000/team/api:3'], {
      GIT_AUTHOR_NAME: 'Env Author',
      GIT_AUTHOR_EMAIL: 'author@example.com',
      GIT_COMMITTER_NAME: 'Env Committer',
      GIT_COMMITTER_EMAIL: 'committer@example.com',
    });
    assert.equal(byEnv.code, 0, byEnv.stderr);
    assert.equal(
      r.git('log', '-1', '--format=%an <%ae>|%cn <%ce>', 'staging'),
      'Env Author <author@example.com>|Env Committer <committer@example.com>',
    );
    assert.equal(r.subjects('staging')[0], 'api: image api:3');
    const bad = await setImage(r, ['api', '--image', '127.0.0.1:5000/team/api:4', '--author', 'nobody']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--author "nobody": expected "Name <email>"/);
  });

  test('set-image, rollback, diff, promote, smoke and history --git never load the Docker engine client', async () => {
    // A module hook that fails any resolution of dockerode, in the berth process itself.
    const hook = `export async function resolve(s, c, n) { if (s === 'dockerode' || s.startsWith('dockerode/')) throw new Error('dockerode was loaded'); return n(s, c); }`;
    const register = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)});`;
    const NODE_OPTIONS = `--import=data:text/javascript,${encodeURIComponent(register)}`;
    // The hook works: a plain import of dockerode fails under it.
    const control = spawnSync(process.execPath, ['--input-type=module', '-e', "await import('dockerode')"], {
      env: { ...process.env, NODE_OPTIONS },
      encoding: 'utf8',
      cwd: path.resolve(import.meta.dirname, '../..'),
    });
    assert.notEqual(control.status, 0);
    assert.match(control.stderr, /dockerode was loaded/);
    const r = remote({
      'berth.yaml':
        'environments:\n  staging: { branch: staging, promote_to: production }\n  production: { branch: production }\n',
    });
    r.branch('production', 'staging');
    const res = await setImage(r, ['api', '--image', '127.0.0.1:5000/team/api:1.4.3', '--build', '124'], {
      NODE_OPTIONS,
    });
    assert.equal(res.code, 0, res.stderr);
    const where = ['--repo', r.url, '--cache-dir', tempDir()];
    for (const args of [
      ['rollback', 'api', '--env', 'staging'],
      ['diff', '--from', 'staging'],
      ['promote', '--from', 'staging', '--push'],
      ['history', 'api', '--git', '--env', 'production'],
    ]) {
      const out = await berth([...args, ...where], { NODE_OPTIONS });
      assert.equal(out.code, 0, `${args.join(' ')}: ${out.stderr}`);
    }
    // smoke with no checks declared stops with its own error, not a module load failure.
    const smoke = await berth(['smoke', '--env', 'staging', ...where], { NODE_OPTIONS });
    assert.equal(smoke.code, 1);
    assert.match(smoke.stderr, /declares no smoke checks/);
  });
});

describe('set-image: bad input is a clear error, exit 1, nothing pushed', () => {
  const r = remote();
  const head = () => r.head('staging');

  test('an unknown service names the services and the likely one', async () => {
    const before = head();
    const res = await setImage(r, ['apii', '--image', '127.0.0.1:5000/team/api:9']);
    assert.equal(res.code, 1);
    assert.equal(
      res.stderr,
      'berth: no service "apii" on staging (did you mean "api"?); services: api, web\n',
    );
    assert.equal(head(), before);
  });

  test('an image reference that does not parse', async () => {
    const res = await setImage(r, ['api', '--image', '127.0.0.1:5000/Team/API:1']);
    assert.equal(res.code, 1);
    assert.match(
      res.stderr,
      /--image "127\.0\.0\.1:5000\/Team\/API:1" is not a valid image reference: the repository name must be lowercase/,
    );
    const build = await setImage(r, ['api', '--image', 'reg/api:1', '--build', '12a']);
    assert.equal(build.code, 1);
    assert.match(build.stderr, /--build "12a": expected a whole number/);
  });

  test('a branch that does not exist', async () => {
    const res = await berth([
      'set-image',
      'api',
      '--repo',
      r.url,
      '--env',
      'prod',
      '--image',
      'reg/api:2',
      '--cache-dir',
      tempDir(),
    ]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /branch "prod" does not exist in .*state\.git \(branches: staging\)/);
  });

  test('a file that no longer parses after a hand edit: file:line:col', async () => {
    const broken = remote();
    broken.commit('staging', { 'services/web.yaml': 'web:\n  image: reg/web:1\n  env_vars: { A: b\n' });
    const before = broken.head('staging');
    const res = await setImage(broken, ['api', '--image', '127.0.0.1:5000/team/api:9']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^services\/web\.yaml:\d+:\d+: invalid YAML/m);
    assert.match(res.stderr, /problem\(s\) in the state repo; nothing was applied/);
    assert.equal(broken.head('staging'), before);
  });

  test('a push refused for good (a protected branch) is not retried', async () => {
    const guarded = remote();
    const hook = path.join(guarded.bare, 'hooks', 'pre-receive');
    writeFileSync(hook, '#!/bin/sh\necho "staging is protected: merge a pull request instead" >&2\nexit 1\n');
    chmodSync(hook, 0o755);
    const before = guarded.head('staging');
    const res = await setImage(guarded, ['api', '--image', '127.0.0.1:5000/team/api:9']);
    assert.equal(res.code, 1);
    assert.match(
      res.stderr,
      /refused the push to staging: \[remote rejected\] \(pre-receive hook declined\); nothing was changed/,
    );
    assert.equal(guarded.head('staging'), before);
  });

  test('missing --image or --env', async () => {
    const res = await berth(['set-image', 'api', '--repo', r.url, '--env', 'staging']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /required option '--image <ref>' not specified/);
  });
});
