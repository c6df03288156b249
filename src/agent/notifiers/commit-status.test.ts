import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CommitStatus, Platform, PlatformSettings } from '../../gitops/platforms/types.js';
import { commitStatusNotifier } from './commit-status.js';
import type { Report } from './types.js';

const report: Report = {
  state: 'success',
  commit: 'c'.repeat(40),
  host: 'app-1',
  env: 'production',
  repo: 'git@github.com:ops/state.git',
  description: 'applied: 1 to recreate',
};

/** A platform that keeps what it was asked, for checking how the notifier resolved its settings. */
function recording() {
  const seen: Array<{ settings: PlatformSettings; commit: string; status: CommitStatus }> = [];
  const open = (_p: unknown, settings: PlatformSettings): Platform =>
    ({
      name: 'recording',
      setCommitStatus: async (commit: string, status: CommitStatus) => {
        seen.push({ settings, commit, status });
      },
    }) as unknown as Platform;
  return { seen, open };
}

test('project and API root come from the repo URL, the token from the platform variable', async () => {
  const r = recording();
  const n = commitStatusNotifier({ platform: 'github' }, { GITHUB_TOKEN: 't0k' }, report.repo, r.open);
  await n.send(report, AbortSignal.timeout(1000));
  assert.equal(r.seen.length, 1);
  assert.deepEqual(
    { ...r.seen[0]!.settings, timeoutMs: undefined },
    { apiUrl: 'https://api.github.com', token: 't0k', project: 'ops/state', timeoutMs: undefined },
  );
  assert.deepEqual(r.seen[0]!.status, {
    state: 'success',
    context: 'berth/app-1',
    description: 'applied: 1 to recreate',
  });
});

test('token_env, project, api_url and target_url from berth.yaml win', async () => {
  const r = recording();
  const n = commitStatusNotifier(
    {
      platform: 'gitlab',
      tokenEnv: 'MY_TOKEN',
      project: 'grp/sub/state',
      apiUrl: 'https://gl.example.com/api/v4/',
      targetUrl: 'https://dash.example.com',
    },
    { MY_TOKEN: 'x', GITLAB_TOKEN: 'not-this' },
    report.repo,
    r.open,
  );
  await n.send({ ...report, state: 'failure' }, AbortSignal.timeout(1000));
  const got = r.seen[0]!;
  assert.equal(got.settings.token, 'x');
  assert.equal(got.settings.project, 'grp/sub/state');
  assert.equal(got.settings.apiUrl, 'https://gl.example.com/api/v4');
  assert.equal(got.status.targetUrl, 'https://dash.example.com');
  assert.equal(got.status.state, 'failure');
});

test('a missing token or project fails the notification (not the deploy), naming what to set', async () => {
  const r = recording();
  const noToken = commitStatusNotifier({ platform: 'gitea', tokenEnv: 'GT' }, {}, report.repo, r.open);
  await assert.rejects(noToken.send(report, AbortSignal.timeout(1000)), /no token; set GT/);
  const local = commitStatusNotifier({ platform: 'github' }, { GITHUB_TOKEN: 't' }, '/srv/state', r.open);
  await assert.rejects(local.send(report, AbortSignal.timeout(1000)), /agent\.commit_status\.project/);
  assert.equal(r.seen.length, 0);
  assert.equal(noToken.wants('pending'), true, 'a commit status shows pending too');
});
