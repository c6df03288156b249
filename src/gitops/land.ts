/**
 * Landing one change on a branch that many CI jobs write at once: read the branch as the remote
 * has it, compute the change from exactly that, commit, push; when another job pushed first,
 * start again from the new head, a bounded number of times. The change is recomputed each time
 * (never rebased), so every rule (a lower build is refused, an unchanged value makes no commit)
 * is judged against what the branch really holds when the push lands.
 */
import { lostRace, type FileChange } from '../adapters/git.js';
import { ExternalError } from '../model/errors.js';
import type { BranchFiles, Workspace } from './workspace.js';

/** What one attempt wants to do, decided from the branch as read. */
export type Attempt<T> =
  { kind: 'unchanged'; result: T } | { kind: 'change'; changes: FileChange[]; message: string; result: T };

/** How a landing ended. */
export interface Landed<T> {
  result: T;
  /** The commit the change was computed on. */
  base: string;
  /** The new commit on the branch; undefined when there was nothing to change. */
  commit?: string;
  /** Attempts made (1 when nobody raced us). */
  tries: number;
}

export interface LandOptions<T> {
  branch: string;
  /** Decide the change from the branch's files; throwing stops everything (nothing is pushed). */
  compute(files: BranchFiles): Attempt<T> | Promise<Attempt<T>>;
  /** Most attempts before giving up. */
  maxTries: number;
  /** The first read, when the caller already has it. */
  first?: BranchFiles;
  /**
   * Build the first attempt on the cached clone without fetching (another job on this machine
   * just pushed). A stale read only costs a refused push; any other conclusion drawn from it
   * (unchanged, refused) is checked again on a fresh read before it is believed.
   */
  trustCache?: boolean;
  /** Waits between attempts (tests pass a fake). */
  sleep?: (ms: number) => Promise<void>;
  /** Told about each lost race, for progress output. */
  onRetry?: (attempt: number, why: string) => void;
  /** Random source for the backoff jitter (tests make it fixed). */
  random?: () => number;
}

/** Default number of attempts: enough for 20 jobs racing on one branch, each losing to all others. */
export const DEFAULT_MAX_TRIES = 30;

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Jittered exponential backoff, capped at 2 s: jobs that lost together must not all come back
 * at the same moment and collide again.
 */
export function backoffMs(attempt: number, random: () => number): number {
  const cap = Math.min(2000, 50 * 2 ** Math.min(attempt, 10));
  return 10 + Math.floor(random() * cap);
}

/** A fetch that lost to another run updating the same cached clone: try again, nothing is wrong. */
function cacheContention(e: unknown): boolean {
  return (
    e instanceof ExternalError &&
    /\block\b|\.lock'|cannot lock ref|unable to create .*\.lock/i.test(e.message)
  );
}

export async function land<T>(ws: Workspace, opts: LandOptions<T>): Promise<Landed<T>> {
  const sleep = opts.sleep ?? defaultSleep;
  const random = opts.random ?? Math.random;
  let first = opts.first;
  let trustCache = opts.trustCache ?? false;
  let lastWhy = '';
  for (let attempt = 1; attempt <= opts.maxTries; attempt++) {
    let files: BranchFiles;
    try {
      files = first ?? (await ws.read(opts.branch, { fetch: !trustCache }));
    } catch (e) {
      if (trustCache) {
        // The cache may not know the branch yet: ask the remote.
        trustCache = false;
        attempt--;
        continue;
      }
      if (!cacheContention(e) || attempt === opts.maxTries) throw e;
      lastWhy = (e as Error).message;
      await sleep(backoffMs(attempt, random));
      continue;
    }
    first = undefined;
    trustCache = false;
    let a: Attempt<T>;
    try {
      a = await opts.compute(files);
    } catch (e) {
      if (files.fresh) throw e;
      attempt--;
      continue;
    }
    if (a.kind === 'unchanged') {
      if (!files.fresh) {
        attempt--;
        continue;
      }
      return { result: a.result, base: files.commit, tries: attempt };
    }
    const commit = await ws.commit(files.commit, a.changes, a.message);
    const pushed = await ws.push(commit, opts.branch);
    if (pushed.ok) {
      await ws.remember(commit, opts.branch);
      return { result: a.result, base: files.commit, commit, tries: attempt };
    }
    const why = [pushed.summary, pushed.reason && `(${pushed.reason})`].filter(Boolean).join(' ');
    if (!lostRace(pushed)) {
      throw new ExternalError(
        'git',
        `${ws.label} refused the push to ${opts.branch}: ${why}; nothing was changed`,
      );
    }
    lastWhy = why;
    if (!files.fresh) {
      // Built on a stale cache, not beaten by anyone: read the remote and go again at once.
      attempt--;
      continue;
    }
    opts.onRetry?.(attempt, why);
    if (attempt < opts.maxTries) await sleep(backoffMs(attempt, random));
  }
  throw new ExternalError(
    'git',
    `gave up after ${opts.maxTries} tries: other jobs kept pushing to ${opts.branch} in ${ws.label} first ` +
      `(last: ${lastWhy}); nothing was changed by this run`,
  );
}
