import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { berth } from '../support/cli.js';
import { tempDirs } from '../support/git.js';
import { createRemote, type TestRemote } from '../support/remote.js';

// `berth rollback` and `berth history --git` as built, on real repositories whose history was
// written the way CI writes it: one commit per build.

const tempDir = tempDirs('berth-rollback-');
const remotes: TestRemote[] = [];
after(() => remotes.forEach((r) => r.remove()));

const api = (build: number, commit?: string) =>
  `# api (payments)\nimage: 127.0.0.1:5000/team/api:1.${build}   # CI writes this\n` +
  (commit ? `gitCommit: ${commit}\n` : '') +
  `buildNumber: '${build}'\nenv_vars: { MODE: live }\n`;

/** A remote whose staging branch holds builds 10 (no gitCommit), 11, 12 of api, one commit each. */
function withBuilds(): { r: TestRemote; commits: string[] } {
  const r = createRemote({ 'services/api.yaml': api(10), 'services/web.yaml': 'image: reg/web:1\n' });
  remotes.push(r);
  const commits = [r.head('staging')];
  commits.push(
    r.commit('staging', { 'services/api.yaml': api(11, 'aaaa1111bbbb') }, 'api: build 11 (aaaa111)'),
  );
  commits.push(r.commit('staging', { 'services/web.yaml': 'image: reg/web:2\n' }, 'web: image web:2'));
  commits.push(
    r.commit('staging', { 'services/api.yaml': api(12, 'cccc2222dddd') }, 'api: build 12 (cccc222)'),
  );
  return { r, commits };
}

function run(r: TestRemote, cmd: string, args: string[]) {
  return berth([cmd, ...args, '--repo', r.url, '--env', 'staging', '--cache-dir', tempDir()]);
}

describe('rollback', () => {
  test('goes back one build as a new commit, then further back; history is kept', async () => {
    const { r, commits } = withBuilds();
    const first = await run(r, 'rollback', ['api']);
    assert.equal(first.code, 0, first.stderr);
    assert.match(
      first.stdout,
      /^api: rolled back build 12 \(cccc222\) → build 11 \(aaaa111\) \(as of [0-9a-f]{7}\) on staging as [0-9a-f]{12}\n$/,
    );
    assert.equal(
      r.show('staging', 'services/api.yaml'),
      api(11, 'aaaa1111bbbb'),
      'comments and the rest kept',
    );
    assert.equal(r.subjects('staging')[0], 'api: rollback build 12 (cccc222) → build 11 (aaaa111)');
    assert.match(
      r.git('log', '-1', '--format=%b', 'staging'),
      /Restores the release of [0-9a-f]{7} \(api: build 11 \(aaaa111\)\)\./,
    );
    // Nothing was rewritten: the old head is an ancestor of the new one.
    r.git('merge-base', '--is-ancestor', commits[3]!, 'refs/heads/staging');
    assert.equal(r.show('staging', 'services/web.yaml'), 'image: reg/web:2\n', 'other services untouched');

    const second = await run(r, 'rollback', ['api']);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /rolled back build 11 \(aaaa111\) → build 10 /);
    // Build 10 had no gitCommit: the key is removed, not left describing build 11.
    assert.equal(r.show('staging', 'services/api.yaml'), api(10));

    const none = await run(r, 'rollback', ['api']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /api on staging: there is no earlier build to roll back to \(now build 10\)/);
  });

  test('--to a build number, a gitCommit prefix or a state commit', async () => {
    const { r, commits } = withBuilds();
    const byBuild = await run(r, 'rollback', ['api', '--to', '10', '--json']);
    assert.equal(byBuild.code, 0, byBuild.stderr);
    const out = JSON.parse(byBuild.stdout);
    assert.deepEqual([out.changed, out.after.buildNumber, out.restoredFrom], [true, '10', commits[0]]);
    const byCommit = await run(r, 'rollback', ['api', '--to', 'cccc22']);
    assert.equal(byCommit.code, 0, byCommit.stderr);
    assert.equal(r.show('staging', 'services/api.yaml'), api(12, 'cccc2222dddd'));
    const byState = await run(r, 'rollback', ['api', '--to', commits[1]!.slice(0, 10)]);
    assert.equal(byState.code, 0, byState.stderr);
    assert.equal(r.show('staging', 'services/api.yaml'), api(11, 'aaaa1111bbbb'));
    const same = await run(r, 'rollback', ['api', '--to', '11']);
    assert.equal(same.code, 0, same.stderr);
    assert.equal(same.stdout, 'api: staging already has build 11 (aaaa111); nothing to commit\n');
    const head = r.head('staging');
    const unknown = await run(r, 'rollback', ['api', '--to', '99']);
    assert.equal(unknown.code, 1);
    assert.match(
      unknown.stderr,
      /--to 99: no release on api on staging has that build number, gitCommit or state commit \(builds: /,
    );
    const noService = await run(r, 'rollback', ['apj']);
    assert.equal(noService.code, 1);
    assert.match(noService.stderr, /no service "apj" on staging \(did you mean "api"\?\)/);
    assert.equal(r.head('staging'), head, 'nothing pushed by the refusals');
  });
});

describe('history --git', () => {
  test('each build that entered the branch: when, by whom, which commit', async () => {
    const { r, commits } = withBuilds();
    assert.equal((await run(r, 'rollback', ['api', '--author', 'Release Bot <bot@example.com>'])).code, 0);
    const res = await berth([
      'history',
      'api',
      '--git',
      '--json',
      '--repo',
      r.url,
      '--env',
      'staging',
      '--cache-dir',
      tempDir(),
    ]);
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout);
    assert.equal(out.file, 'services/api.yaml');
    assert.deepEqual(
      out.entries.map((e: { change: string; release: { buildNumber: string }; author: string }) => [
        e.change,
        e.release.buildNumber,
        e.author,
      ]),
      [
        ['release', '11', 'Release Bot'],
        ['release', '12', 'someone'],
        ['release', '11', 'someone'],
        ['added', '10', 'someone'],
      ],
    );
    assert.deepEqual(
      out.entries.slice(1).map((e: { commit: string }) => e.commit),
      [commits[3], commits[1], commits[0]],
    );
    assert.ok(
      !out.entries.some((e: { commit: string }) => e.commit === commits[2]),
      "web's commit is not api's story",
    );
    const text = await berth([
      'history',
      'api',
      '--git',
      '--limit',
      '2',
      '--repo',
      r.url,
      '--env',
      'staging',
      '--cache-dir',
      tempDir(),
    ]);
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^WHEN\s+COMMIT\s+BY\s+CHANGE\s+RELEASE\s+IMAGE$/);
    assert.equal(lines.length, 3);
    assert.match(
      lines[2]!,
      /^\d{4}-\d\d-\d\d \d\d:\d\d\s+[0-9a-f]{7}\s+someone\s+release\s+build 12 \(cccc222\)\s+api:1\.12$/,
    );
    const bad = await berth(['history', 'api', '--git', '--repo', r.url]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /history --git needs --env/);
  });
});
