/**
 * Jobs on one machine that write to the same repo take turns.
 *
 * Correctness never depends on this: the remote decides which push lands, and a job that lost
 * reads the branch again (land.ts). But twenty jobs started at once on one CI runner would each
 * redo their read-edit-push many times over, every round won by one of them: quadratic work on
 * the same few cores. Taking turns, each does its one attempt. The turn is a directory (mkdir is
 * atomic) holding the holder's PID; a holder that died is noticed and its turn taken over, and a
 * job that waited too long goes ahead without a turn, which is safe.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';

export interface TurnOptions {
  /** Longest wait for a turn before going ahead without one. */
  maxWaitMs: number;
  /** Told once when this job has to wait, with the holder's PID. */
  onWait?: (holderPid: number | undefined) => void;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function holderPid(text: string): number | undefined {
  const pid = Number.parseInt(text, 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** This job's turn, as `work` sees it. */
export interface Turn {
  /** Another job held the turn when this one asked for it. */
  waited: boolean;
  /** Whether other live jobs are waiting for the turn now. */
  othersWaiting(): Promise<boolean>;
}

function lockPath(dir: string, key: string): string {
  return path.join(dir, `${createHash('sha256').update(key).digest('hex').slice(0, 24)}.turn`);
}

/**
 * Live jobs waiting for the turn at `lock`: each leaves a `.wait-PID-RANDOM` file while it waits
 * (the holder's own was removed before its turn began).
 */
async function waiters(lock: string): Promise<number[]> {
  const prefix = `${path.basename(lock)}.wait-`;
  const names = await fsp.readdir(path.dirname(lock)).catch(() => [] as string[]);
  return names
    .filter((n) => n.startsWith(prefix))
    .map((n) => holderPid(n.slice(prefix.length)))
    .filter((pid): pid is number => pid !== undefined && alive(pid));
}

/** Take the turn at `lock`; resolves to a release function, or undefined without a turn. */
async function take(
  lock: string,
  opts: TurnOptions,
  onWaiting: () => void,
): Promise<(() => Promise<void>) | undefined> {
  const sleep = opts.sleep ?? defaultSleep;
  const now = opts.now ?? Date.now;
  await fsp.mkdir(path.dirname(lock), { recursive: true, mode: 0o700 });
  const mark = `${lock}.wait-${process.pid}-${randomBytes(4).toString('hex')}`;
  const deadline = now() + opts.maxWaitMs;
  let told = false;
  try {
    // Bounded in count as well as time, so a clock that stands still cannot make this endless.
    for (let i = 0; i < 100_000 && now() <= deadline; i++) {
      try {
        await fsp.mkdir(lock, { mode: 0o700 });
        await fsp.writeFile(path.join(lock, 'pid'), `${process.pid}\n`);
        return () => fsp.rm(lock, { recursive: true, force: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return undefined;
      }
      const text = await fsp.readFile(path.join(lock, 'pid'), 'utf8').catch(() => undefined);
      const pid = text === undefined ? undefined : holderPid(text);
      const st = await fsp.stat(lock).catch(() => undefined);
      const dead = pid !== undefined ? !alive(pid) : st !== undefined && now() - st.mtimeMs > 5_000;
      if (dead) {
        // Only one contender wins the rename; the others meet the winner's turn next time round.
        const stale = `${lock}.stale-${randomBytes(4).toString('hex')}`;
        await fsp.rename(lock, stale).then(
          () => fsp.rm(stale, { recursive: true, force: true }),
          () => undefined,
        );
        continue;
      }
      if (!told) {
        told = true;
        // Let the holder know someone waits, so it leaves the cache ready for the next one.
        await fsp.writeFile(mark, '').catch(() => undefined);
        onWaiting();
        opts.onWait?.(pid);
      }
      await sleep(100 + Math.floor(Math.random() * 150));
    }
    return undefined;
  } finally {
    if (told) await fsp.rm(mark, { force: true }).catch(() => undefined);
  }
}

/** Run `work` during this job's turn to write `key` (a repo); see the module comment. */
export async function inTurn<T>(
  dir: string,
  key: string,
  work: (turn: Turn) => Promise<T>,
  opts: TurnOptions,
): Promise<T> {
  const lock = lockPath(dir, key);
  let waited = false;
  const release = await take(lock, opts, () => (waited = true)).catch(() => undefined);
  try {
    return await work({ waited, othersWaiting: async () => (await waiters(lock)).length > 0 });
  } finally {
    await release?.().catch(() => undefined);
  }
}
