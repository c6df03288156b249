import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../model/errors.js';
import type { StoryEntry } from './history.js';
import { chooseTarget } from './rollback.js';

/** A story, newest first: [state commit, buildNumber, gitCommit?, change?]. */
function story(...rows: Array<[string, string, string?, StoryEntry['change']?]>): StoryEntry[] {
  return rows.map(([commit, build, git, change]) => ({
    commit,
    date: '2026-12-01T10:00:00Z',
    author: 'ci',
    authorEmail: 'ci@example.com',
    subject: `build ${build}`,
    change: change ?? 'release',
    release: { image: `reg/api:${build}`, buildNumber: build, ...(git ? { gitCommit: git } : {}) },
  }));
}

const s = story(
  ['c5555555', '123', 'aaa123'], // a rollback commit: 124 → 123
  ['c4444444', '124', 'bbb124'],
  ['c3333333', '123', 'aaa123', 'settings'],
  ['c2222222', '123', 'aaa123'],
  ['c1111111', '122', 'ccc122', 'added'],
);

test('without --to: the newest earlier release with a lower build, so rollbacks only go back', () => {
  assert.equal(
    chooseTarget(s, { buildNumber: '123', gitCommit: 'aaa123', image: 'reg/api:123' }).commit,
    'c1111111',
  );
  assert.equal(
    chooseTarget(s, { buildNumber: '124', gitCommit: 'bbb124', image: 'reg/api:124' }).commit,
    'c5555555',
  );
  assert.throws(
    () =>
      chooseTarget(
        s,
        { buildNumber: '122', gitCommit: 'ccc122', image: 'reg/api:122' },
        undefined,
        'api on prod',
      ),
    (e: Error) => e instanceof UsageError && /api on prod: there is no earlier build/.test(e.message),
  );
});

test('--to: a build number, then a gitCommit prefix, then a state commit prefix', () => {
  const now = { buildNumber: '123', image: 'reg/api:123' };
  assert.equal(chooseTarget(s, now, '124').commit, 'c4444444');
  assert.equal(chooseTarget(s, now, 'ccc1').commit, 'c1111111');
  assert.equal(chooseTarget(s, now, 'c2222').commit, 'c2222222');
  assert.throws(
    () => chooseTarget(s, now, '999'),
    /no release on the branch has that build number, gitCommit or state commit \(builds: 123, 124, 122\)/,
  );
  const twins = story(['d2222222', '7', 'abcd1111'], ['d1111111', '6', 'abcd2222']);
  assert.throws(() => chooseTarget(twins, now, 'abcd'), /matches more than one commit .*give more digits/);
});
