import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { chainSources } from './chain.js';
import { fileSecrets } from './files.js';
import { SecretError, type SecretSource } from './types.js';

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-secrets-'));
  t.after(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

async function put(dir: string, name: string, content: string | Buffer, mode = 0o600): Promise<string> {
  const file = path.join(dir, name);
  await fsp.writeFile(file, content);
  await fsp.chmod(file, mode);
  return file;
}

test('a 0600 file gives its content, one trailing newline stripped', async (t) => {
  const dir = await tempDir(t);
  await put(dir, 'db_password', 'p@ss/w:rd%\n');
  await put(dir, 'token', 'abc');
  await put(dir, 'spaced', '  keep spaces  \n');
  await put(dir, 'api.key-2', 'x\n');
  const s = fileSecrets(dir);
  assert.equal(await s.get('db_password'), 'p@ss/w:rd%');
  assert.equal(await s.get('token'), 'abc');
  assert.equal(await s.get('spaced'), '  keep spaces  ');
  assert.equal(await s.get('api.key-2'), 'x');
});

test('a missing file or a missing folder is a missing secret, not an error', async (t) => {
  const dir = await tempDir(t);
  assert.equal(await fileSecrets(dir).get('nope'), undefined);
  assert.equal(await fileSecrets(path.join(dir, 'no', 'such', 'dir')).get('db_password'), undefined);
});

test('a file group or others can read is refused with chmod 600 in the message', async (t) => {
  const dir = await tempDir(t);
  for (const mode of [0o640, 0o604, 0o644, 0o660]) {
    const file = await put(dir, 'db_password', 'value\n', mode);
    await assert.rejects(fileSecrets(dir).get('db_password'), (e: Error) => {
      assert.ok(e instanceof SecretError);
      assert.match(e.message, /^secrets: secret db_password: /);
      assert.ok(e.message.includes(`chmod 600 ${file}`), e.message);
      assert.ok(e.message.includes(`mode 0${mode.toString(8)}`), e.message);
      return true;
    });
  }
  await fsp.chmod(path.join(dir, 'db_password'), 0o400);
  assert.equal(await fileSecrets(dir).get('db_password'), 'value');
});

test('a folder or a FIFO in place of a secret is refused', async (t) => {
  const dir = await tempDir(t);
  await fsp.mkdir(path.join(dir, 'db_password'), { mode: 0o700 });
  await assert.rejects(fileSecrets(dir).get('db_password'), /db_password is not a regular file.*chmod 600/);
  execFileSync('mkfifo', ['-m', '600', path.join(dir, 'fifo')]);
  // Must not hang waiting for a writer.
  await assert.rejects(fileSecrets(dir).get('fifo'), /fifo is not a regular file/);
});

test('a symlink is followed and its target is what is checked', async (t) => {
  const dir = await tempDir(t);
  const target = await put(dir, '.real', 'v\n');
  await fsp.symlink(target, path.join(dir, 'linked'));
  assert.equal(await fileSecrets(dir).get('linked'), 'v');
  await fsp.chmod(target, 0o644);
  await assert.rejects(fileSecrets(dir).get('linked'), /chmod 600/);
});

test('names that are not safe file names are refused before touching the disk', async (t) => {
  const dir = await tempDir(t);
  await put(dir, 'ok', 'v');
  const s = fileSecrets(dir);
  for (const bad of ['', '../ok', 'a/b', '.hidden', '-x', '_x', 'a b', 'x'.repeat(64), 'é', 'a\nb']) {
    await assert.rejects(s.get(bad), /invalid secret name/, JSON.stringify(bad));
  }
  assert.equal(await s.get('x'.repeat(63)), undefined);
});

test('empty, multi-line, NUL and non-UTF-8 values are refused', async (t) => {
  const dir = await tempDir(t);
  await put(dir, 'empty', '');
  await put(dir, 'just_newline', '\n');
  await put(dir, 'two_lines', 'a\nb\n');
  await put(dir, 'two_newlines', 'a\n\n');
  await put(dir, 'crlf', 'a\r\n');
  await put(dir, 'nul', 'a\0b');
  await put(dir, 'latin1', Buffer.from([0x61, 0xe9, 0x62]));
  const s = fileSecrets(dir);
  await assert.rejects(s.get('empty'), /empty is empty/);
  await assert.rejects(s.get('just_newline'), /is empty/);
  await assert.rejects(s.get('two_lines'), /more than one line/);
  await assert.rejects(s.get('two_newlines'), /more than one line/);
  await assert.rejects(s.get('crlf'), /more than one line/);
  await assert.rejects(s.get('nul'), /NUL/);
  await assert.rejects(s.get('latin1'), /not UTF-8/);
});

test('a file where the folder should be is an error', async (t) => {
  const dir = await tempDir(t);
  const file = await put(dir, 'notadir', 'x');
  await assert.rejects(fileSecrets(file).get('a'), /is not a folder/);
});

function fixed(values: Record<string, string>, calls: string[], label: string): SecretSource {
  return {
    async get(name) {
      calls.push(label);
      return values[name];
    },
  };
}

test('chainSources: the first source that has a secret wins; an error stops the lookup', async (t) => {
  const calls: string[] = [];
  const c = chainSources([
    fixed({ a: 'host' }, calls, 'host'),
    fixed({ a: 'repo', b: 'repo' }, calls, 'repo'),
  ]);
  assert.equal(await c.get('a'), 'host');
  assert.deepEqual(calls, ['host']);
  assert.equal(await c.get('b'), 'repo');
  assert.equal(await c.get('c'), undefined);

  // A refused host file must not fall through to the repo's value.
  const dir = await tempDir(t);
  await put(dir, 'a', 'host value', 0o644);
  const refused = chainSources([fileSecrets(dir), fixed({ a: 'repo' }, [], 'repo')]);
  await assert.rejects(refused.get('a'), /chmod 600/);
});
