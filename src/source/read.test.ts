import { mkdirSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countGitRuns, gitIn, tempDirs } from '../../test/support/git.js';
import { cacheName, defaultCacheDir, isLocalRepo, readStateRepo, type RepoFiles } from './read.js';
import { ExternalError, UsageError } from '../model/errors.js';

const tempDir = tempDirs('berth-source-');
const sh = gitIn;

/** Write files (null deletes) and symlinks ({ link: target }) into a folder. */
function write(dir: string, files: Record<string, string | null | { link: string }>): void {
  for (const [f, c] of Object.entries(files)) {
    const full = path.join(dir, f);
    mkdirSync(path.dirname(full), { recursive: true });
    rmSync(full, { force: true });
    if (c === null) continue;
    if (typeof c === 'string') writeFileSync(full, c);
    else symlinkSync(c.link, full);
  }
}

/** A work tree with one commit on main; returns [dir, commit]. */
function workTree(files: Record<string, string | null | { link: string }>): {
  dir: string;
  commit: () => string;
} {
  const dir = tempDir();
  sh(dir, 'init', '-q', '-b', 'main');
  const commit = () => {
    sh(dir, 'add', '-A');
    sh(dir, 'commit', '-q', '--allow-empty', '-m', 'change');
    return sh(dir, 'rev-parse', 'HEAD');
  };
  write(dir, files);
  commit();
  return { dir, commit };
}

/** A bare "remote" holding main and staging, pushed from a work tree we keep changing. */
function remote() {
  const w = workTree({ 'berth.yaml': 'env_dir: /etc/berth/env\n', 'services/web.yaml': 'image: web:1\n' });
  sh(w.dir, 'branch', 'staging');
  const bare = path.join(tempDir(), 'state.git');
  sh(path.dirname(bare), 'init', '-q', '--bare', bare);
  sh(bare, 'symbolic-ref', 'HEAD', 'refs/heads/main');
  sh(w.dir, 'push', '-q', bare, 'main', 'staging');
  const push = (branch: string, files: Record<string, string | null | { link: string }>) => {
    sh(w.dir, 'checkout', '-q', branch);
    write(w.dir, files);
    const c = w.commit();
    sh(w.dir, 'push', '-q', '-f', bare, `${branch}:${branch}`);
    return c;
  };
  return { bare, work: w.dir, push };
}

const names = (r: RepoFiles) => [...r.files.keys()];

/** Files that could not be read safely come back as issues, for validate to report with the rest. */
function unreadable(r: RepoFiles): string[] {
  return (r.unreadable ?? []).map((i) => `${i.file}: ${i.message}`);
}

test('a remote branch by file:// URL: only YAML and secrets/, with the commit and branch', async () => {
  const r = remote();
  const c = r.push('staging', {
    'services/api.yaml': 'image: api:2\n',
    'README.md': '# no\n',
    'secrets/db.age': '-----BEGIN AGE ENCRYPTED FILE-----\n',
    'deep/x/y.yml': 'y: 1\n',
  });
  const got = await readStateRepo({ repo: `file://${r.bare}`, env: 'staging', cacheDir: tempDir() });
  assert.equal(got.commit, c);
  assert.equal(got.ref, 'staging');
  assert.deepEqual(names(got), [
    'berth.yaml',
    'deep/x/y.yml',
    'secrets/db.age',
    'services/api.yaml',
    'services/web.yaml',
  ]);
  assert.equal(got.files.get('services/api.yaml'), 'image: api:2\n');
});

test('a moved branch is seen on the next read, by a fetch into the same cache, not a new clone', async () => {
  const r = remote();
  const cacheDir = tempDir();
  const first = await readStateRepo({ repo: r.bare, env: 'main', cacheDir });
  assert.equal(first.files.get('services/web.yaml'), 'image: web:1\n');
  const [cacheEntry] = readdirSync(cacheDir);
  assert.ok(cacheEntry);
  const cache = path.join(cacheDir, cacheEntry);
  const inode = statSync(cache).ino;
  writeFileSync(path.join(cache, 'berth-marker'), 'still here');

  const c2 = r.push('main', { 'services/web.yaml': 'image: web:2\n', 'services/new.yaml': 'image: new:1\n' });
  const second = await readStateRepo({ repo: r.bare, env: 'main', cacheDir });
  assert.equal(second.commit, c2);
  assert.equal(second.files.get('services/web.yaml'), 'image: web:2\n');
  assert.ok(second.files.has('services/new.yaml'));
  assert.equal(statSync(cache).ino, inode, 'the cache folder was kept');
  assert.ok(statSync(path.join(cache, 'berth-marker')).isFile(), 'the cache was fetched, not recloned');
  assert.deepEqual(readdirSync(cacheDir), [cacheEntry], 'no second cache, no temp debris');
});

test('the default branch when neither env nor ref is given, following the remote after a fetch', async () => {
  const r = remote();
  const cacheDir = tempDir();
  const c1 = sh(r.bare, 'rev-parse', 'main');
  const a = await readStateRepo({ repo: `file://${r.bare}`, cacheDir });
  assert.deepEqual([a.ref, a.commit], ['main', c1]);
  const c2 = r.push('main', { 'services/web.yaml': 'image: web:3\n' });
  const b = await readStateRepo({ repo: `file://${r.bare}`, cacheDir });
  assert.deepEqual([b.ref, b.commit], ['main', c2]);
  assert.equal(b.files.get('services/web.yaml'), 'image: web:3\n');
  // The remote's default branch changes: we follow its commit, and stop calling it main.
  const c3 = r.push('staging', { 'services/web.yaml': 'image: web:4\n' });
  sh(r.bare, 'symbolic-ref', 'HEAD', 'refs/heads/staging');
  const c = await readStateRepo({ repo: `file://${r.bare}`, cacheDir });
  assert.equal(c.commit, c3);
  assert.equal(c.ref, 'HEAD');
});

test('a tag, a sha and a branch name as ref; tags are fetched on later runs', async () => {
  const r = remote();
  const cacheDir = tempDir();
  const c1 = sh(r.bare, 'rev-parse', 'main');
  await readStateRepo({ repo: r.bare, env: 'main', cacheDir });
  sh(r.work, 'tag', '-a', '-m', 'release', 'v1', c1);
  sh(r.work, 'push', '-q', r.bare, 'v1');
  r.push('main', { 'services/web.yaml': 'image: web:9\n' });
  const byTag = await readStateRepo({ repo: r.bare, ref: 'v1', cacheDir });
  assert.deepEqual([byTag.ref, byTag.commit], ['v1', c1]);
  assert.equal(byTag.files.get('services/web.yaml'), 'image: web:1\n');
  const bySha = await readStateRepo({ repo: r.bare, ref: c1.slice(0, 12), cacheDir });
  assert.equal(bySha.commit, c1);
  await assert.rejects(readStateRepo({ repo: r.bare, ref: 'v2', cacheDir }), (e: unknown) => {
    assert.ok(e instanceof UsageError);
    assert.match(e.message, /^ref "v2" does not name a commit in /);
    return true;
  });
});

test('a missing branch is a usage error listing the branches there are', async () => {
  const r = remote();
  await assert.rejects(readStateRepo({ repo: r.bare, env: 'stagin', cacheDir: tempDir() }), (e: unknown) => {
    assert.ok(e instanceof UsageError);
    assert.equal(e.message, `branch "stagin" does not exist in ${r.bare} (branches: main, staging)`);
    return true;
  });
});

test('env and ref together, or names that look like options, are usage errors', async () => {
  const cacheDir = tempDir();
  await assert.rejects(readStateRepo({ repo: '.', env: 'a', ref: 'b', cacheDir }), UsageError);
  await assert.rejects(readStateRepo({ repo: '.', env: '--upload-pack=x', cacheDir }), UsageError);
});

test('an unreachable repo is an ExternalError that never shows credentials', async () => {
  const cacheDir = tempDir();
  const missing = path.join(tempDir(), 'nope');
  for (const repo of [missing, `file://${missing}`, 'http://bob:hunter2@127.0.0.1:1/state.git']) {
    await assert.rejects(readStateRepo({ repo, env: 'main', cacheDir }), (e: unknown) => {
      assert.ok(e instanceof ExternalError, String(e));
      assert.match(e.message, /^git: cannot read state repo /);
      assert.doesNotMatch(e.message, /hunter2|bob/);
      return true;
    });
  }
  await assert.rejects(
    readStateRepo({ repo: missing, cacheDir }),
    /cannot read state repo .*nope: no such directory/,
  );
  assert.deepEqual(
    readdirSync(cacheDir).filter((f) => f.startsWith('.tmp')),
    [],
    'failed clones leave nothing behind',
  );
});

test('committed symlinks: inside the repo followed, escaping ones are config errors naming the file', async () => {
  const r = remote();
  r.push('main', {
    'common/base.yaml': 'image: base:1\n',
    'services/a.yaml': { link: '../common/base.yaml' },
    'services/b.yaml': { link: 'a.yaml' }, // a chain
    linked: { link: 'common' },
    'services/c.yaml': { link: '../linked/base.yaml' }, // through a linked folder
  });
  const ok = await readStateRepo({ repo: r.bare, env: 'main', cacheDir: tempDir() });
  for (const f of ['services/a.yaml', 'services/b.yaml', 'services/c.yaml']) {
    assert.equal(ok.files.get(f), 'image: base:1\n', f);
  }

  r.push('main', {
    'services/etc.yaml': { link: '/etc/passwd' },
    'services/up.yaml': { link: '../../outside.yaml' },
    'services/sneaky.yaml': { link: '../linked/../../x.yaml' },
    'services/loop.yaml': { link: 'loop.yaml' },
    'services/dangling.yaml': { link: 'gone.yaml' },
    'services/dir.yaml': { link: '../common' },
  });
  assert.deepEqual(unreadable(await readStateRepo({ repo: r.bare, env: 'main', cacheDir: tempDir() })), [
    'services/dangling.yaml: symlink target does not exist: services/gone.yaml',
    'services/dir.yaml: symlink points to a directory',
    'services/etc.yaml: symlink points outside the repo: /etc/passwd',
    'services/loop.yaml: more than 8 symlinks deep',
    'services/sneaky.yaml: symlink points outside the repo: ../linked/../../x.yaml',
    'services/up.yaml: symlink points outside the repo: ../../outside.yaml',
  ]);
});

test('files over 1 MiB and binary files are config errors, not silently dropped', async () => {
  const r = remote();
  r.push('main', {
    'services/huge.yaml': 'x'.repeat(1024 * 1024 + 1),
    'secrets/bin.age': '\u0000',
  });
  writeFileSync(path.join(r.work, 'secrets/bin.age'), Buffer.from([0x61, 0xff, 0xfe]));
  r.push('main', {});
  assert.deepEqual(unreadable(await readStateRepo({ repo: r.bare, env: 'main', cacheDir: tempDir() })), [
    'secrets/bin.age: not UTF-8 text; commit age secrets in armored form (age --armor)',
    'services/huge.yaml: file too large (1048577 bytes; the limit is 1048576 bytes)',
  ]);
});

test('a local work tree without env or ref is read from disk, with HEAD only when clean', async () => {
  const w = workTree({ 'services/web.yaml': 'image: web:1\n', 'notes.txt': 'n\n' });
  const head = sh(w.dir, 'rev-parse', 'HEAD');
  const cacheDir = tempDir();
  const clean = await readStateRepo({ repo: w.dir, cacheDir });
  assert.deepEqual([clean.ref, clean.commit], ['working tree', head]);
  assert.deepEqual(readdirSync(cacheDir), [], 'no cache for a working tree');

  write(w.dir, {
    'services/web.yaml': 'image: web:2\n',
    'services/new.yaml': 'image: new:1\n',
    '.gitignore': 'tmp.yaml\n',
  });
  write(w.dir, { 'tmp.yaml': 'ignored: true\n' });
  const dirty = await readStateRepo({ repo: w.dir, cacheDir });
  assert.equal(dirty.commit, undefined);
  assert.equal(dirty.files.get('services/web.yaml'), 'image: web:2\n');
  assert.deepEqual(names(dirty), ['services/new.yaml', 'services/web.yaml'], 'ignored files are not read');

  // With --env the same path is read through the cache at the committed state.
  const committed = await readStateRepo({ repo: w.dir, env: 'main', cacheDir });
  assert.deepEqual([committed.ref, committed.commit], ['main', head]);
  assert.equal(committed.files.get('services/web.yaml'), 'image: web:1\n');
});

test('a work tree folder inside a larger repo is read as the state repo, paths relative to it', async () => {
  const w = workTree({ 'deploy/state/services/web.yaml': 'image: web:1\n', 'app/ci.yaml': 'x: 1\n' });
  const got = await readStateRepo({ repo: path.join(w.dir, 'deploy/state'), cacheDir: tempDir() });
  assert.deepEqual(names(got), ['services/web.yaml']);
  assert.equal(got.commit, sh(w.dir, 'rev-parse', 'HEAD'));
});

test('symlinks in a work tree: inside followed, outside a config error', async () => {
  const outside = tempDir();
  writeFileSync(path.join(outside, 'secret.yaml'), 'password: x\n');
  const w = workTree({
    'common/base.yaml': 'image: base:1\n',
    'services/a.yaml': { link: '../common/base.yaml' },
  });
  const ok = await readStateRepo({ repo: w.dir, cacheDir: tempDir() });
  assert.equal(ok.files.get('services/a.yaml'), 'image: base:1\n');

  write(w.dir, { 'services/b.yaml': { link: path.join(outside, 'secret.yaml') } });
  const got = await readStateRepo({ repo: w.dir, cacheDir: tempDir() });
  assert.deepEqual(unreadable(got), [
    `services/b.yaml: symlink points outside the repo: ${path.join(outside, 'secret.yaml')}`,
  ]);
  assert.equal(got.files.has('services/b.yaml'), false);
  assert.doesNotMatch(JSON.stringify([...got.files, got.unreadable]), /password/);
});

test('a symlinked services folder shows its files, in the work tree and at a branch; never none', async () => {
  const outside = tempDir();
  writeFileSync(path.join(outside, 'evil.yaml'), 'image: evil:1\n');
  const w = workTree({
    'envs/prod/services/web.yaml': 'image: web:1\n',
    'envs/prod/services/api.yaml': 'image: api:1\n',
    services: { link: 'envs/prod/services' },
  });
  const fromTree = await readStateRepo({ repo: w.dir, cacheDir: tempDir() });
  const atBranch = await readStateRepo({ repo: w.dir, env: 'main', cacheDir: tempDir() });
  for (const got of [fromTree, atBranch]) {
    assert.equal(got.files.get('services/web.yaml'), 'image: web:1\n', got.ref);
    assert.equal(got.files.get('services/api.yaml'), 'image: api:1\n', got.ref);
    assert.equal(got.unreadable, undefined, got.ref);
  }
  // A linked folder that leaves the repo is refused where its files would be read.
  write(w.dir, { services: null });
  write(w.dir, { services: { link: outside } });
  const escaped = await readStateRepo({ repo: w.dir, cacheDir: tempDir() });
  assert.deepEqual(unreadable(escaped), [`services: symlink points outside the repo: ${outside}`]);
  assert.equal(
    [...escaped.files.keys()].some((f) => f.startsWith('services/')),
    false,
  );
});

test('a plain folder outside git is read as files, without a commit', async () => {
  const dir = tempDir();
  write(dir, { 'services/web.yaml': 'image: web:1\n', 'x.txt': 'x' });
  const got = await readStateRepo({ repo: dir, cacheDir: tempDir() });
  assert.deepEqual([names(got), got.commit, got.ref], [['services/web.yaml'], undefined, 'working tree']);
});

test('concurrent first and later reads share one cache without corrupting it', async () => {
  const r = remote();
  const cacheDir = tempDir();
  const many = () =>
    Promise.all(
      Array.from({ length: 6 }, () => readStateRepo({ repo: `file://${r.bare}`, env: 'main', cacheDir })),
    );
  const first = await many();
  assert.ok(first.every((g) => g.commit === first[0]?.commit));
  const c2 = r.push('main', { 'services/web.yaml': 'image: web:5\n' });
  const later = await many();
  assert.ok(later.every((g) => g.commit === c2));
  assert.equal(readdirSync(cacheDir).length, 1, 'one cache, no temp debris');
  sh(path.join(cacheDir, readdirSync(cacheDir)[0] as string), 'fsck', '--no-progress');
});

test('a no-op read of a cached repo of 100 services runs a handful of git processes, not one per file', async () => {
  const r = remote();
  const files: Record<string, string> = {};
  for (let i = 0; i < 100; i++)
    files[`services/svc-${i}.yaml`] = `image: reg/svc-${i}:1\nenv_vars: { A: '${i}' }\n`;
  r.push('main', files);
  const cacheDir = tempDir();
  await readStateRepo({ repo: r.bare, env: 'main', cacheDir });
  const { result: got, runs } = await countGitRuns(() =>
    readStateRepo({ repo: r.bare, env: 'main', cacheDir }),
  );
  assert.equal(got.files.size, 102);
  // fetch + rev-parse + ls-tree + one cat-file for all 102 files; the time is in `npm run bench`.
  assert.ok(runs.length <= 6, runs.join('\n'));
  assert.equal(runs.filter((r) => r.startsWith('cat-file')).length, 1, runs.join('\n'));
});

test('cache names: one per location, credentials and trailing slashes ignored', async () => {
  const a = await cacheName('https://tok1@git.example.com/team/state.git');
  assert.equal(a, await cacheName('https://tok2@git.example.com/team/state.git/'));
  assert.notEqual(a, await cacheName('https://git.example.com/team/other.git'));
  assert.match(a, /^state-[0-9a-f]{32}\.git$/);
  assert.doesNotMatch(a, /tok/);
  assert.match(await cacheName('git@github.com:team/state.git'), /^state-/);
});

test('isLocalRepo follows git: URLs and scp-like are remote, paths are local', () => {
  assert.equal(isLocalRepo('/srv/state'), true);
  assert.equal(isLocalRepo('./a:b'), true);
  assert.equal(isLocalRepo('state'), true);
  assert.equal(isLocalRepo('file:///srv/state'), false);
  assert.equal(isLocalRepo('git@github.com:team/state.git'), false);
  assert.equal(isLocalRepo('ssh://git@host:22/state'), false);
});

test('defaultCacheDir honours XDG_CACHE_HOME for ordinary users', () => {
  const saved = process.env.XDG_CACHE_HOME;
  try {
    process.env.XDG_CACHE_HOME = '/x/cache';
    const expected = process.getuid?.() === 0 ? '/var/cache/berth/repos' : '/x/cache/berth/repos';
    assert.equal(defaultCacheDir(), expected);
  } finally {
    if (saved === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = saved;
  }
});

test('a cache folder left without HEAD (debris) is moved aside for a fresh clone', async () => {
  const r = remote();
  const cacheDir = tempDir();
  const url = `file://${r.bare}`;
  const entry = await cacheName(url);
  mkdirSync(path.join(cacheDir, entry, 'objects'), { recursive: true });
  writeFileSync(path.join(cacheDir, entry, 'junk'), 'half a clone');
  const got = await readStateRepo({ repo: url, env: 'main', cacheDir });
  assert.equal(got.commit, sh(r.bare, 'rev-parse', 'refs/heads/main'));
  assert.deepEqual(readdirSync(cacheDir), [entry], 'the debris is gone, no temp folder left');
  assert.deepEqual(readdirSync(path.join(cacheDir, entry)).includes('junk'), false);
});
