import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countGitRuns, gitIn, tempDirs } from '../../test/support/git.js';
import {
  GitError,
  changedPaths,
  createCommit,
  initBorrowingRepo,
  logFile,
  lostRace,
  push,
  cloneBare,
  fetch,
  listBranches,
  listTree,
  listWorkTreeFiles,
  readBlobs,
  redact,
  resolveCommit,
  symbolicRef,
  telling,
  workTreeInfo,
} from './git.js';
import { ExternalError } from '../model/errors.js';

const tempDir = tempDirs('berth-git-');
const sh = gitIn;

/** A work tree with the given files committed on main; returns its path. */
function repoWith(files: Record<string, string>): string {
  const dir = tempDir();
  sh(dir, 'init', '-q', '-b', 'main');
  for (const [f, c] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    writeFileSync(path.join(dir, f), c);
  }
  sh(dir, 'add', '-A');
  sh(dir, 'commit', '-q', '-m', 'init');
  return dir;
}

test('resolveCommit peels tags and answers undefined for what does not exist', async () => {
  const dir = repoWith({ 'a.yaml': 'a: 1\n' });
  const head = sh(dir, 'rev-parse', 'HEAD');
  sh(dir, 'tag', '-a', '-m', 'annotated', 'v1');
  assert.equal(await resolveCommit(dir, 'HEAD'), head);
  assert.equal(await resolveCommit(dir, 'v1'), head, 'an annotated tag is peeled to its commit');
  assert.equal(await resolveCommit(dir, 'refs/heads/main'), head);
  assert.equal(await resolveCommit(dir, 'nope'), undefined);
  assert.equal(await resolveCommit(dir, '--output=x'), undefined, 'never taken for an option');
  const blob = sh(dir, 'rev-parse', 'HEAD:a.yaml');
  assert.equal(await resolveCommit(dir, blob), undefined, 'a blob is not a commit');
});

test('listTree lists every entry recursively with modes, paths with spaces intact', async () => {
  const dir = repoWith({ 'services/web app.yaml': 'x\n', 'berth.yaml': 'y\n', 'bin/run': '#!/bin/sh\n' });
  execFileSync('chmod', ['+x', path.join(dir, 'bin/run')]);
  symlinkSync('../berth.yaml', path.join(dir, 'services/link.yaml'));
  sh(dir, 'add', '-A');
  sh(dir, 'commit', '-q', '-m', 'more');
  const entries = await listTree(dir, 'HEAD');
  const byPath = new Map(entries.map((e) => [e.path, e]));
  assert.equal(byPath.get('services/web app.yaml')?.mode, '100644');
  assert.equal(byPath.get('bin/run')?.mode, '100755');
  assert.equal(byPath.get('services/link.yaml')?.mode, '120000');
  assert.equal(byPath.get('services')?.type, 'tree');
  assert.equal(byPath.get('services/web app.yaml')?.oid, sh(dir, 'rev-parse', 'HEAD:services/web app.yaml'));
});

test('readBlobs reads 100 files through one git process', async () => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 100; i++)
    files[`services/svc-${i}.yaml`] = `image: registry/svc-${i}:1.0.${i}\n`.repeat(20);
  const dir = repoWith(files);
  const entries = (await listTree(dir, 'HEAD')).filter((e) => e.type === 'blob');
  assert.equal(entries.length, 100);
  const { result: blobs, runs } = await countGitRuns(() =>
    readBlobs(
      dir,
      entries.map((e) => e.oid),
    ),
  );
  // The time this saves is in `npm run bench`; here, the shape: one `cat-file --batch`.
  assert.deepEqual(runs, ['cat-file --batch']);
  for (const e of entries) {
    const name = e.path.replace(/^services\/|\.yaml$/g, '');
    assert.equal((blobs.get(e.oid) as Buffer).toString('utf8'), files[e.path], name);
  }
});

test('readBlobs skips objects over maxSize without holding them, and keeps binary content exact', async () => {
  const dir = repoWith({ 'small.yaml': 'a: 1\n', 'big.yaml': 'x'.repeat(5000), 'empty.yaml': '' });
  const bin = Buffer.from([0, 1, 2, 10, 255, 10, 10]);
  writeFileSync(path.join(dir, 'bin.dat'), bin);
  sh(dir, 'add', '-A');
  sh(dir, 'commit', '-q', '-m', 'bin');
  const oid = (p: string) => sh(dir, 'rev-parse', `HEAD:${p}`);
  const blobs = await readBlobs(
    dir,
    [oid('small.yaml'), oid('big.yaml'), oid('empty.yaml'), oid('bin.dat')],
    {
      maxSize: 1000,
    },
  );
  assert.equal((blobs.get(oid('small.yaml')) as Buffer).toString(), 'a: 1\n');
  assert.deepEqual(blobs.get(oid('big.yaml')), { tooLarge: true, size: 5000 });
  assert.equal((blobs.get(oid('empty.yaml')) as Buffer).length, 0);
  assert.deepEqual(blobs.get(oid('bin.dat')), bin);
  assert.equal((await readBlobs(dir, [])).size, 0);
});

test('readBlobs names a missing object', async () => {
  const dir = repoWith({ 'a.yaml': 'a\n' });
  await assert.rejects(readBlobs(dir, ['0123456789012345678901234567890123456789']), (e: unknown) => {
    assert.ok(e instanceof GitError && e instanceof ExternalError);
    assert.match(
      e.message,
      /^git: git cat-file --batch .*0123456789012345678901234567890123456789 is missing/,
    );
    return true;
  });
});

test('cloneBare and fetch keep a cache up to date, pruning deleted branches', async () => {
  const work = repoWith({ 'a.yaml': '1\n' });
  sh(work, 'branch', 'staging');
  const cache = path.join(tempDir(), 'c.git');
  await cloneBare(work, cache, { cwd: path.dirname(cache) });
  assert.deepEqual(await listBranches(cache), ['main', 'staging']);
  assert.equal(await symbolicRef(cache), 'refs/heads/main');

  writeFileSync(path.join(work, 'a.yaml'), '2\n');
  sh(work, 'commit', '-q', '-am', 'two');
  sh(work, 'branch', '-D', 'staging');
  await fetch(cache, `file://${work}`, ['+refs/heads/*:refs/heads/*', '+HEAD:refs/berth/remote-head']);
  assert.deepEqual(await listBranches(cache), ['main']);
  assert.equal(await resolveCommit(cache, 'main'), sh(work, 'rev-parse', 'HEAD'));
  assert.equal(await resolveCommit(cache, 'refs/berth/remote-head'), sh(work, 'rev-parse', 'HEAD'));
});

test('failures are ExternalErrors naming the command, the repo and git’s fatal line, without credentials', async () => {
  const dir = tempDir();
  await assert.rejects(cloneBare(path.join(dir, 'nope'), path.join(dir, 'c'), { cwd: dir }), (e: unknown) => {
    assert.ok(e instanceof GitError);
    assert.match(
      e.message,
      /^git: git clone --bare --quiet -- .*nope .* failed: fatal: repository '.*nope' does not exist/,
    );
    return true;
  });
  await assert.rejects(
    cloneBare('http://alice:s3cret@127.0.0.1:1/repo.git', path.join(dir, 'c'), { cwd: dir }),
    (e: unknown) => {
      assert.ok(e instanceof GitError);
      assert.doesNotMatch(e.message, /s3cret|alice/);
      assert.match(e.message, /http:\/\/\*\*\*@127\.0\.0\.1:1\/repo\.git/);
      return true;
    },
  );
});

test('redact hides userinfo in http(s) and passwords anywhere, keeps ssh user names', () => {
  assert.equal(redact('https://tok@github.com/a/b'), 'https://***@github.com/a/b');
  assert.equal(redact("fatal: 'https://u:p@h/x' nope"), "fatal: 'https://***@h/x' nope");
  assert.equal(redact('ssh://git@host/x'), 'ssh://git@host/x');
  assert.equal(redact('ssh://git:pw@host/x'), 'ssh://***@host/x');
  assert.equal(redact('git@github.com:a/b.git'), 'git@github.com:a/b.git');
});

test('work tree helpers: where a folder stands, what git would commit, what changed', async () => {
  const dir = repoWith({ 'state/a.yaml': 'a\n', 'state/b.yaml': 'b\n', 'other.txt': 'o\n' });
  writeFileSync(path.join(dir, '.gitignore'), 'state/ignored.yaml\n');
  writeFileSync(path.join(dir, 'state/ignored.yaml'), 'i\n');
  assert.deepEqual(await workTreeInfo(dir), { inWorkTree: true, prefix: '' });
  assert.deepEqual(await workTreeInfo(path.join(dir, 'state')), { inWorkTree: true, prefix: 'state/' });
  assert.equal(await workTreeInfo(tempDir()), undefined, 'a plain folder');
  const bare = path.join(tempDir(), 'b.git');
  sh(path.dirname(bare), 'init', '-q', '--bare', bare);
  assert.equal((await workTreeInfo(bare))?.inWorkTree, false);

  assert.deepEqual(await changedPaths(path.join(dir, 'state')), []);
  writeFileSync(path.join(dir, 'state/new.yaml'), 'n\n');
  sh(dir, 'mv', 'state/b.yaml', 'state/c.yaml');
  writeFileSync(path.join(dir, 'other.txt'), 'changed\n');
  assert.deepEqual((await changedPaths(path.join(dir, 'state'))).sort(), [
    'state/b.yaml',
    'state/c.yaml',
    'state/new.yaml',
  ]);
  assert.deepEqual((await listWorkTreeFiles(path.join(dir, 'state'))).sort(), [
    'a.yaml',
    'c.yaml',
    'new.yaml',
  ]);
});

test('telling picks the line that explains the failure', () => {
  const ssh = [
    'ssh: connect to host 10.0.0.1 port 22: Connection refused',
    'fatal: Could not read from remote repository.',
    '',
    'Please make sure you have the correct access rights',
    'and the repository exists.',
  ].join('\n');
  assert.equal(telling(ssh), 'ssh: connect to host 10.0.0.1 port 22: Connection refused');
  assert.equal(telling('warning: x\nfatal: bad thing\n'), 'fatal: bad thing');
  assert.equal(
    telling("fatal: unable to access 'https://a:b@h/x/'"),
    "fatal: unable to access 'https://***@h/x/'",
  );
});

test('createCommit builds a commit without a work tree: exact bytes, kept modes, removals', async () => {
  const src = repoWith({
    'services/api.yaml': 'image: a\n',
    'services/old.yaml': 'image: o\n',
    'run.sh': '#!/bin/sh\n',
  });
  execFileSync('chmod', ['+x', path.join(src, 'run.sh')]);
  sh(src, 'add', '-A');
  sh(src, 'commit', '-q', '-m', 'mode');
  const cache = path.join(tempDir(), 'cache.git');
  sh(path.dirname(cache), 'clone', '-q', '--bare', src, cache);
  const priv = path.join(tempDir(), 'priv.git');
  await initBorrowingRepo(priv, cache);
  const parent = sh(cache, 'rev-parse', 'HEAD');
  const commit = await createCommit(priv, {
    parent,
    changes: [
      { path: 'services/api.yaml', content: 'image: b   # kept\r\n' },
      { path: 'run.sh', content: '#!/bin/sh\necho hi\n', mode: '100755' },
      { path: 'services/old.yaml', content: null },
    ],
    message: 'api: build 2\n\nbody\n',
    identity: { GIT_AUTHOR_NAME: 'CI', GIT_AUTHOR_EMAIL: 'ci@example.com' },
  });
  assert.equal(sh(priv, 'cat-file', '-p', `${commit}:services/api.yaml`), 'image: b   # kept');
  assert.equal(
    execFileSync('git', ['cat-file', 'blob', `${commit}:services/api.yaml`], { cwd: priv }).toString(),
    'image: b   # kept\r\n',
  );
  assert.match(sh(priv, 'ls-tree', commit, 'run.sh'), /^100755 /);
  assert.equal(sh(priv, 'ls-tree', '-r', '--name-only', commit), 'run.sh\nservices/api.yaml');
  assert.equal(
    sh(priv, 'log', '-1', '--format=%P|%an <%ae>|%B', commit),
    `${parent}|CI <ci@example.com>|api: build 2\n\nbody`,
  );
  await assert.rejects(
    createCommit(priv, { parent, changes: [{ path: '../x', content: '' }], message: 'm' }),
    GitError,
  );
});

test('push answers per ref: landed, lost a race, refused by a hook', async () => {
  const src = repoWith({ 'a.yaml': 'a: 1\n' });
  const remote = path.join(tempDir(), 'remote.git');
  sh(path.dirname(remote), 'clone', '-q', '--bare', src, remote);
  const priv = path.join(tempDir(), 'priv.git');
  await initBorrowingRepo(priv, remote);
  const base = sh(remote, 'rev-parse', 'HEAD');
  const make = (content: string) =>
    createCommit(priv, { parent: base, changes: [{ path: 'a.yaml', content }], message: content });
  const first = await make('a: 2\n');
  const [landed] = await push(priv, remote, [`${first}:refs/heads/main`]);
  assert.deepEqual([landed?.ok, landed?.ref, lostRace(landed!)], [true, 'refs/heads/main', false]);
  const second = await make('a: 3\n');
  const [raced] = await push(priv, remote, [`${second}:refs/heads/main`]);
  assert.deepEqual(
    [raced?.ok, raced?.summary, raced?.reason, lostRace(raced!)],
    [false, '[rejected]', 'non-fast-forward', true],
  );
  const hook = path.join(remote, 'hooks', 'pre-receive');
  writeFileSync(hook, '#!/bin/sh\nexit 1\n', { mode: 0o755 });
  const third = await createCommit(priv, {
    parent: first,
    changes: [{ path: 'a.yaml', content: 'a: 4\n' }],
    message: 'm',
  });
  const [hooked] = await push(priv, remote, [`${third}:refs/heads/main`]);
  assert.deepEqual(
    [hooked?.ok, hooked?.reason, lostRace(hooked!)],
    [false, 'pre-receive hook declined', false],
  );
  await assert.rejects(
    push(priv, path.join(tempDir(), 'nowhere.git'), [`${first}:refs/heads/main`]),
    GitError,
  );
});

test('logFile: the first-parent story of one file with its blob after each commit', async () => {
  const dir = repoWith({ 'services/api.yaml': 'v: 1\n', 'services/web.yaml': 'w: 1\n' });
  const c1 = sh(dir, 'rev-parse', 'HEAD');
  sh(dir, 'checkout', '-q', '-b', 'side');
  writeFileSync(path.join(dir, 'services/api.yaml'), 'v: 2\n');
  sh(dir, 'commit', '-q', '-am', 'side: v2');
  sh(dir, 'checkout', '-q', 'main');
  writeFileSync(path.join(dir, 'services/web.yaml'), 'w: 2\n');
  sh(dir, 'commit', '-q', '-am', 'web only');
  sh(dir, 'merge', '-q', '--no-ff', '-m', 'merge side', 'side');
  const merge = sh(dir, 'rev-parse', 'HEAD');
  sh(dir, 'rm', '-q', 'services/api.yaml');
  sh(dir, 'commit', '-q', '-m', 'remove api');
  const removed = sh(dir, 'rev-parse', 'HEAD');
  const log = await logFile(dir, 'HEAD', 'services/api.yaml');
  assert.deepEqual(
    log.map((e) => [e.commit, e.subject, e.blob]),
    [
      [removed, 'remove api', undefined],
      [merge, 'merge side', sh(dir, 'rev-parse', `${merge}:services/api.yaml`)],
      [c1, 'init', sh(dir, 'rev-parse', `${c1}:services/api.yaml`)],
    ],
  );
  assert.equal(log[0]?.authorName, 'berth-test');
});
