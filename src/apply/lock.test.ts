import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { withHostLock } from './lock.js';

test('a second apply against the same engine is refused while the first holds the lock', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-lock-'));
  try {
    await withHostLock(dir, 'unix:///a.sock', async () => {
      await assert.rejects(
        withHostLock(dir, 'unix:///a.sock', async () => 'never'),
        /another berth apply is running against unix:\/\/\/a\.sock/,
      );
      // Another engine has its own lock.
      assert.equal(await withHostLock(dir, 'unix:///b.sock', async () => 'b'), 'b');
    });
    // Released after the work, also when the work throws.
    await assert.rejects(
      withHostLock(dir, 'unix:///a.sock', async () => {
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(await withHostLock(dir, 'unix:///a.sock', async () => 'again'), 'again');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the lock of an apply that was killed is taken over at once', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-lock-'));
  try {
    // A holder that no longer exists: a child that has already exited.
    const { pid } = spawnSync(process.execPath, ['-e', '0']);
    const lockDir = path.join(dir, 'locks');
    mkdirSync(lockDir, { recursive: true });
    const [name] = await withHostLock(dir, 'unix:///c.sock', async () => readdirSync(lockDir));
    mkdirSync(path.join(lockDir, name!));
    writeFileSync(path.join(lockDir, name!, 'pid'), `${pid}\n`);
    assert.equal(await withHostLock(dir, 'unix:///c.sock', async () => 'taken over'), 'taken over');
    assert.deepEqual(readdirSync(lockDir), [], 'no stale lock left behind');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
