import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { ExternalError, UsageError } from '../model/errors.js';

/**
 * Run `work` holding the lock of one Docker engine, so two applies never act on one host at
 * once. The lock is a directory (mkdir is atomic) holding the holder's PID. An apply that was
 * killed leaves its lock behind; the next one sees that PID is gone and takes the lock over at
 * once, by renaming the stale directory away (only one contender can win that rename).
 */
export async function withHostLock<T>(dir: string, endpoint: string, work: () => Promise<T>): Promise<T> {
  const locks = path.join(dir, 'locks');
  mkdirSync(locks, { recursive: true, mode: 0o700 });
  const name = createHash('sha256').update(endpoint).digest('hex').slice(0, 16);
  const lockDir = path.join(locks, `${name}.lock`);
  await acquire(lockDir, endpoint);
  try {
    return await work();
  } finally {
    await fsp.rm(lockDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function acquire(lockDir: string, endpoint: string): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fsp.mkdir(lockDir, { mode: 0o700 });
      await fsp.writeFile(path.join(lockDir, 'pid'), `${process.pid}\n`);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new ExternalError('lock', `cannot take the lock ${lockDir}: ${(e as Error).message}`, {
          cause: e,
        });
      }
    }
    const holder = await holderOf(lockDir);
    if (holder === 'alive') {
      throw new UsageError(`another berth apply is running against ${endpoint} (lock ${lockDir})`);
    }
    if (holder === 'unknown') {
      // Just made by another apply that has not written its PID yet: that one holds it.
      throw new UsageError(`another berth apply is starting against ${endpoint} (lock ${lockDir})`);
    }
    const stale = `${lockDir}.stale-${randomBytes(4).toString('hex')}`;
    await fsp.rename(lockDir, stale).then(
      () => fsp.rm(stale, { recursive: true, force: true }),
      () => undefined, // another apply took it over first; try again and meet its lock
    );
  }
  throw new UsageError(`another berth apply is running against ${endpoint} (lock ${lockDir})`);
}

async function holderOf(lockDir: string): Promise<'alive' | 'dead' | 'unknown'> {
  let pid: number;
  try {
    pid = Number.parseInt(await fsp.readFile(path.join(lockDir, 'pid'), 'utf8'), 10);
  } catch {
    const st = await fsp.stat(lockDir).catch(() => undefined);
    // A directory without a PID that is more than a few seconds old was left by a crash
    // between mkdir and the write.
    return st && Date.now() - st.mtimeMs > 5_000 ? 'dead' : 'unknown';
  }
  if (!Number.isInteger(pid) || pid <= 0) return 'dead';
  try {
    process.kill(pid, 0);
    return 'alive';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM' ? 'alive' : 'dead';
  }
}
