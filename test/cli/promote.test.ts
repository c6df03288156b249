import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { berth } from '../support/cli.js';
import { tempDirs } from '../support/git.js';
import { startFakePlatform, type FakePlatform, type PlatformName } from '../support/platforms.js';
import { createRemote, type TestRemote } from '../support/remote.js';

// `berth diff` and `berth promote` as built, on real repositories with a staging and a
// production branch. Pull requests go to local HTTP servers that implement the documented
// GitHub, GitLab and Gitea endpoints berth calls (test/support/platforms.ts): the hosted
// platforms cannot run here.

const tempDir = tempDirs('berth-promote-');
const remotes: TestRemote[] = [];
after(() => remotes.forEach((r) => r.remove()));

const BERTH = `environments:
  staging: { branch: staging, promote_to: production }
  production: { branch: production }
`;

const api = (build: number, env: string) =>
  `# api: owned by payments\nimage: 127.0.0.1:5000/team/api:1.${build}   # CI\ngitCommit: c0ffee${build}\nbuildNumber: '${build}'\n` +
  `env_vars:\n  LOG_LEVEL: ${env}          # differs per environment\n  DB_URL: 'postgres://app:{{ secrets.db_password | urlencode }}@db/app'\nhosts: [app]\n`;
const INVENTORY = 'hosts:\n  app-1: { groups: [app] }\n';

/** staging and production at build 10; staging then gets api 11, web 3 and a new worker. */
function environments(): { r: TestRemote; verified: string } {
  const r = createRemote(
    {
      'berth.yaml': BERTH,
      'inventory.yaml': INVENTORY,
      'services/api.yaml': api(10, 'info'),
      'services/web.yaml': 'image: reg/web:2\nbuildNumber: 2\n',
    },
    ['staging', 'production'],
  );
  remotes.push(r);
  r.commit('production', { 'services/api.yaml': api(10, 'warn') }, 'production logs less');
  r.commit('staging', { 'services/api.yaml': api(11, 'debug') }, 'api: build 11 (c0ffee11)');
  r.commit('staging', { 'services/web.yaml': 'image: reg/web:3\nbuildNumber: 3\n' }, 'web: build 3');
  const verified = r.commit('staging', { 'services/worker.yaml': 'image: reg/worker:1\n' }, 'worker: new');
  return { r, verified };
}

function run(r: TestRemote, args: string[], env: Record<string, string> = {}) {
  return berth([...args, '--repo', r.url, '--cache-dir', tempDir()], env);
}

describe('diff', () => {
  test('per service: release, env values as written, settings, and one-sided services', async () => {
    const { r } = environments();
    const res = await run(r, ['diff', '--from', 'staging']);
    assert.equal(res.code, 0, res.stderr);
    const lines = res.stdout.split('\n');
    assert.match(lines[0]!, /^staging \([0-9a-f]{7}\) compared with production \([0-9a-f]{7}\):$/);
    assert.match(lines[1]!, /^SERVICE\s+WHAT\s+production\s+staging$/);
    const rows = lines.slice(2, -2).map((l) => l.split(/\s{2,}/));
    assert.deepEqual(rows, [
      ['api', 'build', '10 (c0ffee1)', '11 (c0ffee1)'],
      ['api', 'image', 'api:1.10', 'api:1.11'],
      ['api', 'env LOG_LEVEL', 'warn', 'debug'],
      ['web', 'build', '2', '3'],
      ['web', 'image', 'web:2', 'web:3'],
      ['worker', 'service', '-', 'worker:1'],
    ]);
    assert.equal(lines.at(-2), '3 service(s) differ, 0 the same.');
    const json = JSON.parse(
      (await run(r, ['diff', '--from', 'staging', '--to', 'production', '--json'])).stdout,
    );
    assert.equal(json.from.env, 'staging');
    assert.equal(json.to.branch, 'production');
    assert.deepEqual(
      json.services.map((s: { service: string; status: string }) => [s.service, s.status]),
      [
        ['api', 'changed'],
        ['web', 'changed'],
        ['worker', 'new'],
      ],
    );
  });

  test('a secret-bearing value shows as its template, never rendered', async () => {
    const { r } = environments();
    r.commit('staging', {
      'services/api.yaml': api(11, 'debug').replace('@db/app', '@db2/app'),
    });
    const res = await run(r, ['diff', '--from', 'staging', '--json']);
    const row = JSON.parse(res.stdout).services.find((s: { service: string }) => s.service === 'api');
    const db = row.fields.find((f: { what: string }) => f.what === 'env DB_URL');
    assert.deepEqual(db, {
      what: 'env DB_URL',
      to: 'postgres://app:{{ secrets.db_password | urlencode }}@db/app',
      from: 'postgres://app:{{ secrets.db_password | urlencode }}@db2/app',
    });
  });
});

describe('promote --push', () => {
  test('carries the releases of the verified commit; production-only values survive', async () => {
    const { r, verified } = environments();
    // Staging moves on after the smoke tests passed on `verified`: that build must not come along.
    r.commit(
      'staging',
      { 'services/web.yaml': 'image: reg/web:4\nbuildNumber: 4\n' },
      'web: build 4 (unverified)',
    );
    const res = await run(r, ['promote', '--from', 'staging', '--commit', verified.slice(0, 10), '--push']);
    assert.equal(res.code, 0, res.stderr);
    assert.match(
      res.stdout,
      new RegExp(`^promoted staging \\(${verified.slice(0, 7)}\\) to production as [0-9a-f]{12}\\n`),
    );
    assert.match(res.stdout, / {2}api {2}build 10 \(c0ffee1\) → build 11 \(c0ffee1\)\n/);
    assert.match(res.stdout, / {2}api {2}kept as on production: env LOG_LEVEL\n/);
    assert.match(res.stdout, /only on staging, not carried \(--include-new\): worker/);
    // The file is production's own, with only the release values replaced.
    assert.equal(
      r.show('production', 'services/api.yaml'),
      api(10, 'warn').replace('api:1.10', 'api:1.11').replace('c0ffee10', 'c0ffee11').replace("'10'", "'11'"),
    );
    assert.equal(
      r.show('production', 'services/web.yaml'),
      'image: reg/web:3\nbuildNumber: 3\n',
      'build 3, not 4',
    );
    assert.equal(r.show('production', 'services/worker.yaml'), undefined);
    const message = r.git('log', '-1', '--format=%B', 'production');
    assert.match(
      message,
      new RegExp(
        `^promote staging \\(${verified.slice(0, 7)}\\) to production: api build 11 \\(c0ffee1\\), web build 3\\n`,
      ),
    );
    assert.match(message, new RegExp(`Promoted-from: staging ${verified}`));
    // Again: nothing left to carry.
    const again = await run(r, ['promote', '--from', 'staging', '--commit', verified, '--push']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(
      again.stdout,
      /production already has the releases of staging at [0-9a-f]{7}; nothing to promote/,
    );
  });

  test('--include-new, --services and --all-fields', async () => {
    const { r, verified } = environments();
    const some = await run(r, [
      'promote',
      '--from',
      'staging',
      '--commit',
      verified,
      '--services',
      'worker',
      '--include-new',
      '--push',
    ]);
    assert.equal(some.code, 0, some.stderr);
    assert.equal(r.show('production', 'services/worker.yaml'), 'image: reg/worker:1\n');
    assert.equal(
      r.show('production', 'services/web.yaml'),
      'image: reg/web:2\nbuildNumber: 2\n',
      'not selected',
    );
    const all = await run(r, [
      'promote',
      '--from',
      'staging',
      '--commit',
      verified,
      '--services',
      'api',
      '--all-fields',
      '--push',
    ]);
    assert.equal(all.code, 0, all.stderr);
    assert.equal(r.show('production', 'services/api.yaml'), api(11, 'debug'));
    const unknown = await run(r, ['promote', '--from', 'staging', '--services', 'nope', '--push']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /--services: "nope" not on staging; services there: api, web, worker/);
  });

  test('a hotfix made on production: kept, and a lower build is refused unless --force', async () => {
    const { r, verified } = environments();
    // The hotfix: build 12 of api straight to production, and an env change there.
    r.commit('production', {
      'services/api.yaml': api(12, 'warn').replace('hosts: [app]', 'hosts: [app]\n# hotfix #4711'),
    });
    const before = r.head('production');
    const refused = await run(r, ['promote', '--from', 'staging', '--commit', verified, '--push']);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /production has a higher build than staging for: api \(build 12 \(c0ffee1\) on production, build 11 \(c0ffee1\) on staging\)\. Refused, nothing was pushed/,
    );
    assert.equal(r.head('production'), before);
    // The other services can still go; the hotfix stays.
    const others = await run(r, [
      'promote',
      '--from',
      'staging',
      '--commit',
      verified,
      '--services',
      'web',
      '--push',
    ]);
    assert.equal(others.code, 0, others.stderr);
    assert.match(r.show('production', 'services/api.yaml')!, /# hotfix #4711/);
    assert.equal(r.show('production', 'services/web.yaml'), 'image: reg/web:3\nbuildNumber: 3\n');
  });
});

describe('promote --merge', () => {
  test('fast-forwards production to the verified commit, not to a later one', async () => {
    const r = createRemote({ 'berth.yaml': BERTH, 'services/api.yaml': api(10, 'info') }, [
      'staging',
      'production',
    ]);
    remotes.push(r);
    const verified = r.commit('staging', { 'services/api.yaml': api(11, 'info') });
    r.commit('staging', { 'services/api.yaml': api(12, 'info') }, 'after the smoke tests');
    const res = await run(r, ['promote', '--from', 'staging', '--commit', verified, '--merge']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, `production fast-forwarded to staging (${verified.slice(0, 7)})\n`);
    assert.equal(r.head('production'), verified);
    const again = await run(r, ['promote', '--from', 'staging', '--commit', verified, '--merge']);
    assert.match(again.stdout, /production already contains staging at [0-9a-f]{7}; nothing to merge/);
  });

  test('refuses clearly when production has commits staging lacks (a hotfix)', async () => {
    const { r, verified } = environments();
    const before = r.head('production');
    const res = await run(r, ['promote', '--from', 'staging', '--commit', verified, '--merge']);
    assert.equal(res.code, 1);
    assert.match(
      res.stderr,
      /production \(at [0-9a-f]{7}\) has commits that staging at [0-9a-f]{7} lacks, such as a hotfix made there; --merge only fast-forwards/,
    );
    assert.equal(r.head('production'), before);
  });
});

describe('promote: bad input is refused before anything is pushed', () => {
  test('modes, environments, commits, tokens', async () => {
    const { r } = environments();
    const heads = () => [r.head('staging'), r.head('production')];
    const before = heads();
    const cases: Array<[string[], RegExp]> = [
      [['promote', '--from', 'staging'], /give one of --push, --merge or --pr PLATFORM/],
      [
        ['promote', '--from', 'staging', '--push', '--merge'],
        /give one of --push, --merge, --pr, not --push and --merge/,
      ],
      [['promote', '--from', 'stagign', '--push'], /branch "stagign" does not exist/],
      [
        ['promote', '--from', 'production', '--push'],
        /no --to, and berth\.yaml on production declares no environments\.production\.promote_to/,
      ],
      [['promote', '--from', 'staging', '--commit', 'zzz', '--push'], /--commit "zzz": expected a commit id/],
      [
        ['promote', '--from', 'staging', '--commit', r.head('production'), '--push'],
        /is not on staging .*promote only what was verified there/,
      ],
      [
        [
          'promote',
          '--from',
          'staging',
          '--pr',
          'github',
          '--project',
          'ops/state',
          '--api-url',
          'http://127.0.0.1:9/api',
        ],
        /--pr github needs a token in GITHUB_TOKEN or GH_TOKEN/,
      ],
      [
        ['promote', '--from', 'staging', '--pr', 'gitlab', '--api-url', 'http://127.0.0.1:9/api'],
        /cannot tell the project from --repo .*give --project owner\/name/,
      ],
    ];
    for (const [args, message] of cases) {
      const res = await run(r, args, { GITHUB_TOKEN: '', GH_TOKEN: '', GITLAB_TOKEN: 'x' });
      assert.equal(res.code, 1, `${args.join(' ')}: ${res.stdout}`);
      assert.match(res.stderr, message, args.join(' '));
    }
    assert.deepEqual(heads(), before);
    assert.deepEqual(r.git('for-each-ref', '--format=%(refname)', 'refs/heads/').split('\n').sort(), [
      'refs/heads/production',
      'refs/heads/staging',
    ]);
  });
});

for (const name of ['github', 'gitlab', 'gitea'] as PlatformName[]) {
  describe(`promote --pr ${name}`, () => {
    let fake: FakePlatform;
    before(async () => {
      fake = await startFakePlatform(name);
    });
    after(() => fake?.stop());

    test('opens a pull request whose body is the diff; a second run updates the same one', async () => {
      const { r, verified } = environments();
      const pr = [
        'promote',
        '--from',
        'staging',
        '--pr',
        name,
        '--project',
        fake.project,
        '--api-url',
        fake.apiUrl,
      ];
      const first = await run(r, [...pr, '--commit', verified], fake.env());
      assert.equal(first.code, 0, first.stderr);
      assert.match(
        first.stdout,
        /^pull request #1 opened: https:\/\/.*\n {2}promotes staging \([0-9a-f]{7}\) to production from branch berth\/promote-staging-to-production\n/,
      );
      const open = fake.pulls.filter((p) => p.state === 'open');
      assert.equal(open.length, 1);
      assert.equal(open[0]!.head, 'berth/promote-staging-to-production');
      assert.equal(open[0]!.base, 'production');
      assert.equal(open[0]!.title, 'Promote staging to production: api build 11 (c0ffee1), web build 3');
      assert.match(
        open[0]!.body,
        new RegExp(`Promotes \\*\\*staging\\*\\* at \`${verified}\` to \\*\\*production\\*\\*`),
      );
      assert.match(
        open[0]!.body,
        /\| service \| what \| production now \| from staging \|\n\| --- \| --- \| --- \| --- \|\n\| api \| build \| `10 \(c0ffee1\)` \| `11 \(c0ffee1\)` \|\n\| api \| image \| `api:1\.10` \| `api:1\.11` \|/,
      );
      assert.match(open[0]!.body, /Stays as production has it .*`api`: env LOG_LEVEL/);
      // The branch holds the promotion on top of production; production itself is untouched.
      assert.equal(
        r.git('rev-parse', 'refs/heads/berth/promote-staging-to-production~1'),
        r.head('production'),
      );
      assert.match(r.show('berth/promote-staging-to-production', 'services/api.yaml')!, /LOG_LEVEL: warn/);
      assert.match(r.show('berth/promote-staging-to-production', 'services/api.yaml')!, /api:1\.11/);

      // Staging gets a newer web build, verified again: the same pull request is updated.
      const next = r.commit(
        'staging',
        { 'services/web.yaml': 'image: reg/web:5\nbuildNumber: 5\n' },
        'web: build 5',
      );
      const second = await run(r, [...pr, '--json'], fake.env());
      assert.equal(second.code, 0, second.stderr);
      const out = JSON.parse(second.stdout);
      assert.equal(out.pullRequest.number, 1);
      assert.equal(out.pullRequest.created, false);
      assert.equal(out.from.commit, next, 'default: the head of staging, recorded');
      assert.equal(fake.pulls.filter((p) => p.state === 'open').length, 1, 'no second pull request');
      assert.match(fake.pulls[0]!.body, /\| web \| build \| `2` \| `5` \|/);
      assert.equal(
        r.show('berth/promote-staging-to-production', 'services/web.yaml'),
        'image: reg/web:5\nbuildNumber: 5\n',
      );
      assert.deepEqual(fake.unexpected, []);
      for (const res of [first, second]) assert.ok(!`${res.stdout}${res.stderr}`.includes(fake.token));
    });

    test('a token the platform refuses: a clear error without the token', async () => {
      const { r } = environments();
      const res = await run(
        r,
        ['promote', '--from', 'staging', '--pr', name, '--project', fake.project, '--api-url', fake.apiUrl],
        Object.fromEntries(Object.keys(fake.env()).map((k) => [k, 'not-the-token-123'])),
      );
      assert.equal(res.code, 1);
      assert.match(res.stderr, /answered 401: .*\(is the token valid and allowed to do this\?\)/);
      assert.ok(!res.stderr.includes('not-the-token-123'));
    });
  });
}
