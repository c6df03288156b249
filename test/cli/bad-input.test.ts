import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import type { World } from '../world/index.js';
import { berth, type CliResult } from '../support/cli.js';
import { startWorldFixture, type WorldFixture } from '../support/fixture.js';
import type { TestRepo } from '../support/repo.js';

/** What a bad input must leave exactly as it was. */
interface Snapshot {
  /** name → id and state of every container on the engine. */
  containers: Record<string, { id: string; state: string }>;
  /** file name → mode and content of every file in the env dir. */
  envFiles: Record<string, { mode: number; content: string }>;
  /** image id → its tags. */
  images: Record<string, string[]>;
  /** `berth history --json`, newest first. */
  record: HistoryRow[];
}

interface HistoryRow {
  service: string;
  action: string;
  result: string;
}

describe('bad input is refused with a clear error and nothing changes', () => {
  let fx: WorldFixture;
  let world: World;
  let docker: Docker;
  let repo: TestRepo;
  let work: string;
  let env: Record<string, string>;
  const port = (n: number) => String(24300 + n);
  const svc = (image: string, p: number, extra = '') =>
    `image: ${image}\nenv_vars:\n  PORT: '${port(p)}'\n  BAR: baz\n${extra}`;
  const good = () => ({
    'services/web.yaml': svc(world.images.web1, 1),
    'services/api.yaml': svc(world.images.web1, 2, 'pull: missing\n'),
  });

  const readFlags = (branch: string) => ['--repo', repo.dir, '--env', branch, '--cache-dir', `${work}/cache`];
  const applyFlags = (branch: string) => [...readFlags(branch), '--store', `${work}/berth.db`];
  const apply = (branch: string, extra: string[] = []) =>
    berth(['apply', ...applyFlags(branch), ...extra], env);
  const validate = (branch: string, extra: string[] = []) =>
    berth(['validate', ...readFlags(branch), ...extra], env);
  const out = (r: CliResult) => r.stdout + r.stderr;

  /** A branch off main with these changes (null deletes) and symlinks (path → target). */
  const branch = (name: string, files: Record<string, string | null>, links: Record<string, string> = {}) => {
    repo.git('checkout', '-q', '-b', name, 'main');
    try {
      for (const [file, target] of Object.entries(links)) {
        mkdirSync(path.dirname(path.join(repo.dir, file)), { recursive: true });
        symlinkSync(target, path.join(repo.dir, file));
      }
      repo.commit(files, `bad input: ${name}`);
    } finally {
      repo.git('checkout', '-q', 'main');
    }
  };

  const snapshot = async (): Promise<Snapshot> => {
    const list = await docker.listContainers({ all: true });
    const containers = Object.fromEntries(
      list.map((c) => [c.Names[0]!.slice(1), { id: c.Id, state: c.State }]),
    );
    const images = Object.fromEntries(
      (await docker.listImages()).map((i) => [i.Id, [...(i.RepoTags ?? [])].sort()]),
    );
    const dir = `${work}/env`;
    const envFiles = Object.fromEntries(
      readdirSync(dir)
        .sort()
        .map((f) => [
          f,
          {
            mode: statSync(path.join(dir, f)).mode & 0o777,
            content: readFileSync(path.join(dir, f), 'utf8'),
          },
        ]),
    );
    const h = await berth(['history', '--steps', '--json', '--limit', '1000', '--store', `${work}/berth.db`]);
    assert.equal(h.code, 0, h.stderr);
    return { containers, images, envFiles, record: JSON.parse(h.stdout) as HistoryRow[] };
  };

  /**
   * Run one berth command and assert that the engine (containers and images), the env dir and
   * the record are exactly as before it. `failedPulls`: the record may gain rows, but only
   * failed pulls (an apply that tried the registry records that it failed, and nothing else).
   */
  const unchangedBy = async (run: () => Promise<CliResult>, opts: { failedPulls?: boolean } = {}) => {
    const before = await snapshot();
    const r = await run();
    const now = await snapshot();
    const why = `something changed after:\n${out(r)}`;
    assert.deepEqual(now.containers, before.containers, why);
    assert.deepEqual(now.images, before.images, why);
    assert.deepEqual(now.envFiles, before.envFiles, why);
    const added = now.record.slice(0, now.record.length - before.record.length);
    assert.deepEqual(now.record.slice(added.length), before.record, why);
    if (opts.failedPulls) {
      assert.ok(added.length > 0, `the failed pull was not recorded:\n${out(r)}`);
      for (const row of added) assert.deepEqual([row.action, row.result], ['pull', 'failed'], why);
    } else assert.deepEqual(added, [], why);
    return r;
  };

  before(async () => {
    fx = await startWorldFixture('berth-bad-');
    ({ world, docker, work, env } = fx);
    repo = fx.createRepo({ 'berth.yaml': `env_dir: ${work}/env\n`, ...good() });
    const first = await apply('main');
    assert.equal(first.code, 0, out(first));
    // Something to protect: two running services, their env files and their record.
    const start = await snapshot();
    assert.deepEqual(Object.keys(start.containers).sort(), ['api', 'web']);
    assert.deepEqual(Object.keys(start.envFiles), ['api', 'web']);
    assert.equal(start.record.length, 6); // per service: env file, create, health

    // Each bad input is a commit on a branch of its own, so the tests do not depend on order.
    const image = world.images.web1;
    branch('invalid-yaml', { 'services/web.yaml': `image: ${image}\nenv_vars: [unclosed\n` });
    branch('duplicate-keys', { 'services/web.yaml': `image: ${image}\nimage: ${world.images.web2}\n` });
    branch('unknown-keys', {
      'services/web.yaml': `imgae: ${image}\nenv_vars:\n  PORT: '${port(1)}'\nrestart: always\n`,
    });
    branch('wrong-types', {
      'services/web.yaml': `image: ${image}\nenv_vars:\n  PORT: '${port(1)}'\n  FOO:\n    nested: map\ninit: 'yes'\n`,
    });
    branch('invalid-image', { 'services/web.yaml': svc(image.replace('demo/web', 'Demo/Web'), 1) });
    branch('invalid-env-names', {
      'services/web.yaml': `image: ${image}\nenv_vars:\n  bad name: x\n  1ABC: y\n  OK-NOT: z\n`,
    });
    branch('env-newline', { 'services/web.yaml': `image: ${image}\nenv_vars:\n  FOO: "one\\ntwo"\n` });
    branch('env-nul', { 'services/web.yaml': `image: ${image}\nenv_vars:\n  FOO: "one\\0two"\n` });
    branch('name-dotdot', { 'services/x.yaml': `x:\n  name: ../x\n  image: ${image}\n` });
    branch('name-slash', { 'services/ab.yaml': `ab:\n  name: a/b\n  image: ${image}\n` });
    branch('name-empty', { 'services/empty.yaml': `empty:\n  name: ''\n  image: ${image}\n` });
    branch('name-long', { [`services/${'a'.repeat(64)}.yaml`]: `image: ${image}\n` });
    branch('name-short', { 'services/a.yaml': `image: ${image}\n` });
    branch('symlink-absolute', {}, { 'services/passwd.yaml': '/etc/passwd' });
    branch('symlink-parent', {}, { 'services/up.yaml': '../../x' });
    branch('no-services', { 'services/web.yaml': null, 'services/api.yaml': null });
    branch('many-errors', {
      'services/web.yaml': `image: ${image}\nenv_vars:\n  FOO: { a: b }\n`,
      'services/api.yaml': `imgae: ${image}\n`,
      'services/x.yaml': `x:\n  name: a/b\n  image: ${image}\n`,
    });
    branch('missing-tag', { 'services/web.yaml': svc(image.replace(':1', ':404'), 1) });
  });

  after(() => fx?.stop());

  const SAFE = 'use 2-63 letters, digits, "_", "." or "-", starting with a letter or digit';
  const ENV_RULE = 'use letters, digits and "_", not starting with a digit';
  const long = 'a'.repeat(64);

  /** Branch → the exact issue lines berth prints for it (validate and apply alike). */
  const configCases: Array<[string, () => string[]]> = [
    [
      'invalid-yaml',
      () => [
        'services/web.yaml:3:1: invalid YAML: flow sequence in block collection must be sufficiently indented and end with a ]',
      ],
    ],
    ['duplicate-keys', () => ['services/web.yaml:2:1: duplicate key "image"']],
    [
      'unknown-keys',
      () => [
        'services/web.yaml:1:1: missing required key "image"',
        'services/web.yaml:1:1: unknown key "imgae" (did you mean "image"?)',
        'services/web.yaml:4:1: unknown key "restart" (did you mean "restart_policy"?)',
      ],
    ],
    [
      'wrong-types',
      () => [
        'services/web.yaml:5:5 env_vars.FOO: expected a string, got a map',
        'services/web.yaml:6:7 init: expected true or false, got a string',
      ],
    ],
    [
      'invalid-image',
      () => [
        `services/web.yaml:1:8 image: invalid image reference "${world.registry.address}/Demo/Web:1": ` +
          'the repository name must be lowercase',
      ],
    ],
    [
      'invalid-env-names',
      () => [
        `services/web.yaml:3:3 env_vars.bad name: invalid env name "bad name": ${ENV_RULE}`,
        `services/web.yaml:4:3 env_vars.1ABC: invalid env name "1ABC": ${ENV_RULE}`,
        `services/web.yaml:5:3 env_vars.OK-NOT: invalid env name "OK-NOT": ${ENV_RULE}`,
      ],
    ],
    ['env-newline', () => ['services/web.yaml:3:8 env_vars.FOO: contains a line break; use one line']],
    ['env-nul', () => ['services/web.yaml:3:8 env_vars.FOO: contains a NUL character']],
    ['name-dotdot', () => [`services/x.yaml:2:9 x.name: "../x" is not a safe service name: ${SAFE}`]],
    ['name-slash', () => [`services/ab.yaml:2:9 ab.name: "a/b" is not a safe service name: ${SAFE}`]],
    ['name-empty', () => [`services/empty.yaml:2:9 empty.name: "" is not a safe service name: ${SAFE}`]],
    [
      'name-long',
      () => [
        `services/${long}.yaml: service name "${long}" (the file name) is not a safe file and container name: ${SAFE}`,
      ],
    ],
    [
      'name-short',
      () => [
        `services/a.yaml: service name "a" (the file name) is not a safe file and container name: ${SAFE}`,
      ],
    ],
    ['symlink-absolute', () => ['services/passwd.yaml: symlink points outside the repo: /etc/passwd']],
    ['symlink-parent', () => ['services/up.yaml: symlink points outside the repo: ../../x']],
    [
      // Three files, four problems, one run: a person fixes them all at once.
      'many-errors',
      () => [
        'services/api.yaml:1:1: missing required key "image"',
        'services/api.yaml:1:1: unknown key "imgae" (did you mean "image"?)',
        'services/web.yaml:3:8 env_vars.FOO: expected a string, got a map',
        `services/x.yaml:2:9 x.name: "a/b" is not a safe service name: ${SAFE}`,
      ],
    ],
  ];
  for (const [name, expected] of configCases) {
    test(`${name}: validate and apply exit 1 with file:line:col lines and change nothing`, async () => {
      const lines = expected();
      const v = await unchangedBy(() => validate(name));
      assert.equal(v.code, 1, out(v));
      assert.equal(v.stdout, '');
      assert.equal(v.stderr, [...lines, `${lines.length} error(s)`, ''].join('\n'));
      const a = await unchangedBy(() => apply(name));
      assert.equal(a.code, 1, out(a));
      assert.equal(a.stdout, '');
      assert.equal(
        a.stderr,
        [...lines, `${lines.length} problem(s) in the state repo; nothing was applied.`, ''].join('\n'),
      );
    });
  }

  test('validate --json reports a symlink out of the repo as an issue, like any other', async () => {
    const v = await validate('symlink-absolute', ['--json']);
    assert.equal(v.code, 1, out(v));
    assert.deepEqual(JSON.parse(v.stdout), {
      ok: false,
      issues: [
        {
          file: 'services/passwd.yaml',
          message: 'symlink points outside the repo: /etc/passwd',
          severity: 'error',
        },
      ],
      services: 0,
    });
  });

  test('plan exits 1, not 2, for a bad repo and for a blocked plan', async () => {
    const bad = await unchangedBy(() => berth(['plan', ...readFlags('wrong-types')], env));
    assert.equal(bad.code, 1, out(bad));
    assert.match(bad.stderr, /^services\/web\.yaml:5:5 env_vars\.FOO: expected a string, got a map$/m);
    const blocked = await unchangedBy(() => berth(['plan', ...readFlags('no-services')], env));
    assert.equal(blocked.code, 1, out(blocked));
    assert.match(blocked.stdout, /^blocked: .*pass --allow-empty/m);
  });

  test('a branch that does not exist: the message names it and lists the branches', async () => {
    for (const run of [() => validate('nope'), () => apply('nope')]) {
      const r = await unchangedBy(run);
      assert.equal(r.code, 1, out(r));
      assert.match(
        r.stderr,
        new RegExp(
          `^berth: branch "nope" does not exist in ${escape(repo.dir)} \\(branches: [^)]*\\bmain\\b[^)]*\\)$`,
          'm',
        ),
      );
      assert.match(r.stderr, /branches: duplicate-keys, env-newline, /);
    }
  });

  test('an unreachable repo: a missing path and a file:// URL to nothing', async () => {
    const cases: Array<[string, string]> = [
      [
        '/nonexistent/berth-state',
        'berth: git: cannot read state repo /nonexistent/berth-state: no such directory',
      ],
      [
        'file:///nope',
        "berth: git: cannot read state repo file:///nope: fatal: '/nope' does not appear to be a git repository",
      ],
    ];
    for (const [url, message] of cases) {
      const flags = ['--repo', url, '--cache-dir', `${work}/cache`];
      const v = await unchangedBy(() => berth(['validate', ...flags], env));
      assert.equal(v.code, 1, out(v));
      assert.equal(v.stderr, `${message}\n`);
      const a = await unchangedBy(() => berth(['apply', ...flags, '--store', `${work}/berth.db`], env));
      assert.equal(a.code, 1, out(a));
      assert.equal(a.stderr, `${message}\n`);
    }
  });

  test('an unreachable engine: the message names DOCKER_HOST and the socket', async () => {
    const a = await unchangedBy(() =>
      berth(['apply', ...applyFlags('main')], { DOCKER_HOST: 'unix:///tmp/nonexistent.sock' }),
    );
    assert.equal(a.code, 1, out(a));
    assert.equal(
      a.stderr,
      'berth: docker: cannot reach the Docker engine at unix:///tmp/nonexistent.sock (DOCKER_HOST): ' +
        'connect ENOENT /tmp/nonexistent.sock\n',
    );
  });

  test('a tag the registry does not have: the pull fails first and nothing else happens', async () => {
    const ref = world.images.web1.replace(':1', ':404');
    const a = await unchangedBy(() => apply('missing-tag'), { failedPulls: true });
    assert.equal(a.code, 1, out(a));
    assert.match(
      a.stdout,
      new RegExp(`^Apply failed: pulling ${escape(ref)} failed, so nothing was changed on this host$`, 'm'),
    );
    assert.match(
      a.stderr,
      new RegExp(`^  web  pull  failed: docker: pull ${escape(ref)}: manifest for .* not found`, 'm'),
    );
  });

  test('a repo that suddenly has no services is refused without --allow-empty', async () => {
    const a = await unchangedBy(() => apply('no-services'));
    assert.equal(a.code, 1, out(a));
    assert.match(
      a.stdout,
      /^blocked: the state repo has no services for this host, which would remove all 2 managed container\(s\); pass --allow-empty if that is really wanted$/m,
    );
    assert.equal(a.stderr, 'berth: the plan is blocked (see above); nothing was applied\n');
  });

  // Last: the one test here that changes the host.
  test('with --allow-empty, a repo without services really removes everything', async () => {
    const a = await apply('no-services', ['--allow-empty']);
    assert.equal(a.code, 0, out(a));
    const now = await snapshot();
    assert.deepEqual(now.containers, {});
    assert.deepEqual(now.envFiles, {});
    assert.deepEqual(
      now.record
        .filter((r) => r.action === 'remove')
        .map((r) => [r.service, r.result])
        .sort(),
      [
        ['api', 'succeeded'],
        ['web', 'succeeded'],
      ],
    );
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
