import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { UsageError } from '../model/errors.js';

/**
 * Run `work` holding the lock of one Docker engine, so two applies never act on one host at
 * once. The lock is a directory that proper-lockfile refreshes while we live; a holder that
 * died leaves a stale lock that the next apply takes over after `stale` ms.
 */
export async function withHostLock<T>(dir: string, endpoint: string, work: () => Promise<T>): Promise<T> {
  const locks = path.join(dir, 'locks');
  mkdirSync(locks, { recursive: true, mode: 0o700 });
  const name = createHash('sha256').update(endpoint).digest('hex').slice(0, 16);
  const target = path.join(locks, name);
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(target, { realpath: false, stale: 15_000, update: 5_000 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOCKED') {
      throw new UsageError(`another berth apply is running against ${endpoint} (lock ${target}.lock)`);
    }
    throw e;
  }
  try {
    return await work();
  } finally {
    await release().catch(() => undefined);
  }
}
