import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { berth, type CliResult } from '../support/cli.js';
import { tempDirs } from '../support/git.js';
import { createRemote, type TestRemote } from '../support/remote.js';
import { startSshd, type SshdHandle } from '../world/sshd.js';

// Many CI jobs running `berth set-image` at the same moment against one real remote: a bare
// repository reached over file:// and over ssh:// through a real sshd on loopback. The 20 jobs
// share one cache folder, as jobs on one runner would (they take turns on the machine); the 5
// jobs each have their own, as jobs on five runners would (they race at the remote, and the
// losers read the branch again and redo their edit). Each run is bounded (400 s: on a box busy
// with other test suites, twenty node processes and twenty ssh handshakes take their time);
// nothing here asserts how fast.

const tempDir = tempDirs('berth-race-');
const remotes: TestRemote[] = [];
let sshd: SshdHandle | undefined;
before(async () => {
  sshd = await startSshd();
});
after(async () => {
  await sshd?.stop();
  remotes.forEach((r) => r.remove());
});

const SERVICES = Array.from({ length: 20 }, (_, i) => `svc-${String(i).padStart(2, '0')}`);

function fleetRemote(): TestRemote {
  const files: Record<string, string> = {};
  for (const s of SERVICES) {
    files[`services/${s}.yaml`] = `# ${s}\nimage: 127.0.0.1:5000/team/${s}:1   # CI\nbuildNumber: '100'\n`;
  }
  const r = createRemote(files);
  remotes.push(r);
  return r;
}

const transports = [
  { name: 'file://', url: (r: TestRemote) => r.url, env: (): Record<string, string> => ({}) },
  { name: 'ssh://', url: (r: TestRemote) => sshd!.url(r.bare), env: () => sshd!.gitEnv() },
];

function buildOf(text: string | undefined): string | undefined {
  return /buildNumber: '(\d+)'/.exec(text ?? '')?.[1];
}

for (const t of transports) {
  describe(`set-image races over ${t.name}`, () => {
    test('20 runs started at once for 20 services all land, one commit each', async () => {
      const r = fleetRemote();
      const cache = tempDir();
      const results = await Promise.all(
        SERVICES.map((s) =>
          berth(
            [
              'set-image',
              s,
              '--repo',
              t.url(r),
              '--env',
              'staging',
              '--cache-dir',
              cache,
              '--image',
              `127.0.0.1:5000/team/${s}:2`,
              '--build',
              '101',
              '--json',
            ],
            t.env(),
            400_000,
          ),
        ),
      );
      results.forEach((res, i) => assert.equal(res.code, 0, `${SERVICES[i]}: ${res.stderr}`));
      for (const s of SERVICES) {
        const text = r.show('staging', `services/${s}.yaml`);
        assert.equal(text, `# ${s}\nimage: 127.0.0.1:5000/team/${s}:2   # CI\nbuildNumber: '101'\n`);
      }
      const subjects = r.subjects('staging');
      assert.equal(subjects.length, 21, 'twenty commits on top of the initial one');
      assert.deepEqual(subjects.slice(0, 20).sort(), SERVICES.map((s) => `${s}: build 101`).sort());
      // Each run reports the commit that is on the branch.
      const onBranch = new Set(r.git('rev-list', 'refs/heads/staging').split('\n'));
      for (const res of results) assert.ok(onBranch.has(JSON.parse(res.stdout).commit));
      // Linear history: every commit has one parent, so no update was merged away.
      assert.equal(r.git('rev-list', '--merges', 'refs/heads/staging'), '');
    });

    test('5 at once for one service end at the highest build, no lost update, no duplicate commit', async () => {
      const r = fleetRemote();
      const builds = [101, 102, 103, 104, 105];
      const results: CliResult[] = await Promise.all(
        builds.map((b) =>
          berth(
            [
              'set-image',
              'svc-07',
              '--repo',
              t.url(r),
              '--env',
              'staging',
              '--cache-dir',
              tempDir(),
              '--image',
              `127.0.0.1:5000/team/svc-07:${b}`,
              '--build',
              String(b),
            ],
            t.env(),
            400_000,
          ),
        ),
      );
      // A job whose build is already overtaken on the branch is refused; every other one lands.
      const landed: number[] = [];
      results.forEach((res, i) => {
        if (res.code === 0) landed.push(builds[i]!);
        else {
          assert.equal(res.code, 1, res.stderr);
          assert.match(
            res.stderr,
            new RegExp(`build ${builds[i]} is lower than build \\d+ on staging; refused`),
          );
        }
      });
      assert.ok(landed.includes(105), 'the highest build always lands');
      const text = r.show('staging', 'services/svc-07.yaml');
      assert.equal(text, `# svc-07\nimage: 127.0.0.1:5000/team/svc-07:105   # CI\nbuildNumber: '105'\n`);
      // One commit per landed job, none twice, in rising build order.
      const commits = r.subjects('staging').slice(0, -1).reverse();
      assert.equal(commits.length, landed.length, commits.join('\n'));
      assert.equal(new Set(commits).size, commits.length, 'no duplicate commit');
      const order = commits.map((s) => Number(/build (\d+)/.exec(s)?.[1]));
      assert.deepEqual(
        order,
        [...order].sort((a, b) => a - b),
        `builds landed out of order: ${order.join(', ')}`,
      );
      // No other service was touched.
      assert.equal(buildOf(r.show('staging', 'services/svc-08.yaml')), '100');
    });
  });
}

describe('set-image over ssh:// without permission', () => {
  test('a key the server refuses: a clear error, exit 1, nothing pushed', async () => {
    const r = fleetRemote();
    const before = r.head('staging');
    const res = await berth(
      [
        'set-image',
        'svc-01',
        '--repo',
        sshd!.url(r.bare),
        '--env',
        'staging',
        '--cache-dir',
        tempDir(),
        '--image',
        '127.0.0.1:5000/team/svc-01:9',
      ],
      sshd!.gitEnv(sshd!.newKey(false)),
      120_000,
    );
    assert.equal(res.code, 1);
    assert.match(res.stderr, /cannot read state repo ssh:\/\/.*: .*Permission denied \(publickey\)/);
    assert.equal(r.head('staging'), before);
  });
});
