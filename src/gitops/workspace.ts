/**
 * Where the CI commands meet git: read a branch as the remote has it now, build a commit, push it.
 *
 * Reading goes through the same cached bare clone every berth command uses (src/source/read.ts),
 * so a warm cache only fetches. Commits are built in a private bare repository per run that
 * borrows the cache's objects (git alternates): no work tree, no shared index, nothing another
 * run could trip over, and removed when the run ends. The remote stays the source of truth:
 * every attempt starts from what the remote's branch holds at that moment.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  createCommit,
  GitError,
  initBorrowingRepo,
  isAncestor,
  listTree,
  logFile,
  push,
  readBlobs,
  redact,
  type FileChange,
  type FileCommit,
  type PushedRef,
} from '../adapters/git.js';
import { ExternalError, UsageError } from '../model/errors.js';
import { cacheName, isLocalRepo, readStateRepo, type RepoFiles } from '../source/read.js';
import { inTurn } from './turns.js';

/** A branch's files at the commit the remote had when they were read. */
export interface BranchFiles extends RepoFiles {
  commit: string;
  /** The branch that was read. */
  branch: string;
  /**
   * False when read from the cached clone without asking the remote: good enough to build a
   * commit the remote will refuse if it was stale, never to conclude anything else.
   */
  fresh: boolean;
}

/** Who the commits are by: `Name <email>` each; unset parts come from GIT_* variables or git config. */
export interface Identity {
  author?: string;
  committer?: string;
}

/** The state repo as the CI commands use it. One per run; `close()` removes its private repo. */
export interface Workspace {
  /** The repo as the user named it, credentials removed: for messages. */
  readonly label: string;
  /**
   * A branch as the remote has it now (fetches first), or with `fetch: false` as the cached clone
   * last saw it. UsageError when the branch does not exist.
   */
  read(branch: string, opts?: { fetch?: boolean }): Promise<BranchFiles>;
  /** The files of one commit, which must be known from an earlier read. */
  readCommit(commit: string, branch: string): Promise<BranchFiles>;
  /** The remote's default branch as it is now, or undefined if there is none. */
  readDefault(): Promise<RepoFiles | undefined>;
  /** Git file mode of each path at `commit` (100644, 100755, 120000 for a symlink); absent when missing. */
  modes(commit: string, paths: string[]): Promise<Map<string, string>>;
  /** Build a commit on `parent` with `changes`; nothing is pushed. */
  commit(parent: string, changes: FileChange[], message: string): Promise<string>;
  /** Push `commit` to `branch` (`force` for branches berth owns, such as a promotion branch). */
  push(commit: string, branch: string, opts?: { force?: boolean }): Promise<PushedRef>;
  /**
   * Note in the cached clone that `branch` is now `commit` (just pushed), so the next job on this
   * machine can build on it without fetching first: only when one is waiting. Best effort.
   */
  remember(commit: string, branch: string): Promise<void>;
  /** The commits on `rev`'s first-parent line that changed `file`, newest first. */
  fileLog(rev: string, file: string, limit?: number): Promise<FileCommit[]>;
  /** Blob contents as text, by id. */
  blobs(oids: string[]): Promise<Map<string, string>>;
  /** Whether commit `a` is `b` or an ancestor of it. */
  isAncestor(a: string, b: string): Promise<boolean>;
  /**
   * Run `work` in this machine's turn to write this repo (see turns.ts): jobs on one runner wait
   * for each other instead of racing; jobs elsewhere are still handled by retrying. `waited` says
   * another job held the turn just before, so the cached clone is likely as fresh as the remote.
   */
  exclusive<T>(work: (waited: boolean) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Longest wait for this machine's turn to write a repo before going ahead without it. */
export const TURN_WAIT_MS = 10 * 60_000;

/** `Name <email>` → its parts; a UsageError naming `flag` otherwise. */
export function parseIdentity(value: string, flag: string): { name: string; email: string } {
  const m = /^\s*([^<>\n]*?)\s*<([^<>\s]+)>\s*$/.exec(value);
  if (!m || !m[1]) throw new UsageError(`${flag} ${JSON.stringify(value)}: expected "Name <email>"`);
  return { name: m[1], email: m[2]! };
}

/** The GIT_* variables that set who a commit is by, for the identities given. */
export function identityEnv(id: Identity): Record<string, string> {
  const env: Record<string, string> = {};
  if (id.author) {
    const a = parseIdentity(id.author, '--author');
    env.GIT_AUTHOR_NAME = a.name;
    env.GIT_AUTHOR_EMAIL = a.email;
  }
  if (id.committer) {
    const c = parseIdentity(id.committer, '--committer');
    env.GIT_COMMITTER_NAME = c.name;
    env.GIT_COMMITTER_EMAIL = c.email;
  }
  return env;
}

/** Used only when neither flags, GIT_* variables nor git config say who commits (a bare CI runner). */
const FALLBACK_IDENTITY = { name: 'berth', email: 'berth@localhost' };

export async function openWorkspace(opts: {
  repo: string;
  cacheDir: string;
  identity?: Identity;
  /** Told when another job on this machine is writing the repo and this one waits. */
  onWait?: (holderPid: number | undefined) => void;
}): Promise<Workspace> {
  const { repo, cacheDir } = opts;
  const label = redact(repo);
  // A local path is pushed to as its absolute path, as the cache reads it.
  const url = isLocalRepo(repo) ? path.resolve(repo) : repo;
  const cache = path.join(cacheDir, await cacheName(repo));
  const identity = identityEnv(opts.identity ?? {});
  let privateDir: string | undefined;
  let privateRepo: Promise<string> | undefined;
  let othersWaiting: (() => Promise<boolean>) | undefined;

  const own = () =>
    (privateRepo ??= (async () => {
      privateDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-write-'));
      const dir = path.join(privateDir, 'repo.git');
      await initBorrowingRepo(dir, cache, { label });
      return dir;
    })());

  const withFiles = (files: RepoFiles, branch: string, fresh: boolean): BranchFiles => {
    if (!files.commit) throw new Error(`reading ${branch} gave no commit`);
    return { ...files, commit: files.commit, branch, fresh };
  };

  return {
    label,
    async read(branch, { fetch = true } = {}) {
      return withFiles(await readStateRepo({ repo, env: branch, cacheDir, fetch }), branch, fetch);
    },
    async readCommit(commit, branch) {
      return withFiles(await readStateRepo({ repo, ref: commit, cacheDir }), branch, true);
    },
    async readDefault() {
      try {
        return await readStateRepo({ repo, cacheDir });
      } catch (e) {
        if (e instanceof UsageError) return undefined;
        throw e;
      }
    },
    async modes(commit, paths) {
      const wanted = new Set(paths);
      const out = new Map<string, string>();
      for (const e of await listTree(cache, commit, { label }))
        if (wanted.has(e.path)) out.set(e.path, e.mode);
      return out;
    },
    async commit(parent, changes, message) {
      const dir = await own();
      try {
        return await createCommit(dir, { parent, changes, message, identity }, { label });
      } catch (e) {
        if (
          !(e instanceof GitError) ||
          !/tell me who you are|empty ident|unable to auto-detect/i.test(e.stderrLine)
        )
          throw e;
        const fallback: Record<string, string> = {
          GIT_AUTHOR_NAME: FALLBACK_IDENTITY.name,
          GIT_AUTHOR_EMAIL: FALLBACK_IDENTITY.email,
          GIT_COMMITTER_NAME: FALLBACK_IDENTITY.name,
          GIT_COMMITTER_EMAIL: FALLBACK_IDENTITY.email,
        };
        for (const k of Object.keys(fallback)) if (process.env[k]) delete fallback[k];
        return await createCommit(
          dir,
          { parent, changes, message, identity: { ...fallback, ...identity } },
          { label },
        );
      }
    },
    async push(commit, branch, { force = false } = {}) {
      const dir = await own();
      const ref = `refs/heads/${branch}`;
      const refs = await push(dir, url, [`${force ? '+' : ''}${commit}:${ref}`], { label });
      const r = refs.find((x) => x.ref === ref);
      if (!r) throw new ExternalError('git', `push to ${label} said nothing about ${ref}`);
      return r;
    },
    async remember(commit, branch) {
      // Only worth a local push when a job on this machine waits to build on it.
      if (!privateRepo || !(await othersWaiting?.())) return;
      await push(await privateRepo, cache, [`+${commit}:refs/heads/${branch}`], { label }).catch(
        () => undefined,
      );
    },
    fileLog(rev, file, limit) {
      return logFile(cache, rev, file, { label, ...(limit !== undefined ? { limit } : {}) });
    },
    async blobs(oids) {
      const out = new Map<string, string>();
      for (const [oid, b] of await readBlobs(cache, oids, { label, maxSize: 1024 * 1024 })) {
        if (b instanceof Buffer) out.set(oid, b.toString('utf8'));
      }
      return out;
    },
    isAncestor(a, b) {
      return isAncestor(cache, a, b, { label });
    },
    exclusive(work) {
      return inTurn(
        path.join(cacheDir, '.turns'),
        cache,
        (turn) => {
          othersWaiting = turn.othersWaiting;
          return work(turn.waited);
        },
        { maxWaitMs: TURN_WAIT_MS, ...(opts.onWait ? { onWait: opts.onWait } : {}) },
      ).finally(() => (othersWaiting = undefined));
    },
    async close() {
      if (privateDir) await fsp.rm(privateDir, { recursive: true, force: true });
    },
  };
}
