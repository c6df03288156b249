/**
 * Reading the state repo: which files, at which commit. Knows nothing of their meaning (that is
 * src/config); only how to get them from a working tree, a plain folder, or any git remote
 * through a local cache.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp, type Dirent } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  GitError,
  NETWORK_TIMEOUT_MS,
  changedPaths,
  cloneBare,
  fetch,
  listBranches,
  listTree,
  listWorkTreeFiles,
  readBlobs,
  redact,
  resolveCommit,
  setConfig,
  symbolicRef,
  workTreeInfo,
  type TooLarge,
  type TreeEntry,
} from '../adapters/git.js';
import { ExternalError, UsageError, type ConfigIssue } from '../model/errors.js';
import { urlScheme } from '../model/location.js';
import { sleep } from '../adapters/clock.js';
import type { RepoFiles } from '../model/repo-files.js';

export type { RepoFiles };

/** What to read. */
export interface ReadOptions {
  /** A local path or any git URL: file://, ssh://, https://, scp-like user@host:path. */
  repo: string;
  /** Environment = branch name. Excludes `ref`. */
  env?: string;
  /** Any commit-ish: sha, tag, branch. Excludes `env`. */
  ref?: string;
  /** Where remote repos are cached between runs (see defaultCacheDir). */
  cacheDir: string;
  /**
   * Longest a clone or fetch may take before berth gives up and says which remote did not
   * answer (default NETWORK_TIMEOUT_MS; `--git-timeout`).
   */
  networkTimeoutMs?: number;
  /**
   * false: read an existing cached clone as it is, without fetching. Only for a caller that
   * checks freshness another way (a push that the remote refuses when the read was stale).
   */
  fetch?: boolean;
}

/** Bigger than any sane service file; protects memory from a stray binary. */
export const MAX_FILE_SIZE = 1024 * 1024;
/** How many symlinks deep we follow, like the kernel's ELOOP limit but smaller. */
const MAX_LINK_HOPS = 8;
const WORKING_TREE = 'working tree';
const HEADS = '+refs/heads/*:refs/heads/*';
const TAGS = '+refs/tags/*:refs/tags/*';
/** Where we keep the remote's HEAD, refreshed by each fetch (a bare repo's own HEAD is not). */
const REMOTE_HEAD = 'refs/berth/remote-head';

/** Whether berth reads this path at all: YAML at any depth, and anything under secrets/. */
export function isRelevant(file: string): boolean {
  return /\.ya?ml$/i.test(file) || file.startsWith('secrets/');
}

/**
 * Where cached clones live: /var/cache/berth/repos for root (an agent run by systemd), else
 * $XDG_CACHE_HOME/berth/repos, else ~/.cache/berth/repos.
 */
export function defaultCacheDir(): string {
  if (process.getuid?.() === 0) return '/var/cache/berth/repos';
  const xdg = process.env.XDG_CACHE_HOME;
  // The XDG spec says a relative value is invalid and must be ignored.
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache');
  return path.join(base, 'berth', 'repos');
}

/** Whether git would take `repo` for a local path rather than a URL (git's own rule). */
export function isLocalRepo(repo: string): boolean {
  if (urlScheme(repo) !== undefined) return false;
  const colon = repo.indexOf(':');
  if (colon < 0) return true;
  // scp-like host:path, unless a slash comes before the colon (./a:b is a path).
  const slash = repo.indexOf('/');
  return slash >= 0 && slash < colon;
}

/**
 * The cache folder name for a repo: a readable stem plus a sha256 of the normalised location,
 * so a path and a URL, or two hosts, never share a cache. Credentials are dropped first: a
 * rotated token must not cause a fresh clone, and must not be derivable from the name.
 */
export async function cacheName(repo: string): Promise<string> {
  let key: string;
  if (isLocalRepo(repo)) {
    const abs = path.resolve(repo);
    key = await fsp.realpath(abs).catch(() => abs);
  } else {
    key = repo
      .trim()
      .replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/\s]*)@/i, (whole, scheme: string, userinfo: string) => {
        if (/^https?:/i.test(scheme)) return scheme;
        const user = userinfo.split(':')[0];
        return `${scheme}${user}@`;
      })
      .replace(/\/+$/, '');
  }
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 32);
  const stem = (key.replace(/\/+$/, '').split(/[/:]/).pop() ?? '')
    .replace(/\.git$/, '')
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .slice(0, 40);
  return `${stem || 'repo'}-${hash}.git`;
}

/**
 * Read the state repo.
 *
 * - A local git work tree with neither env nor ref: the files on disk, so `berth validate`
 *   works before committing; `commit` is HEAD when nothing under the folder has changed.
 *   A local folder outside git is read the same way, without a commit.
 * - Otherwise a cached bare clone under `cacheDir`: cloned once, fetched on every later run;
 *   env → that branch, ref → that commit-ish, neither → the remote's default branch.
 *
 * Throws UsageError (both env and ref, missing branch or ref) or ExternalError (the repo cannot
 * be reached). A file berth cannot safely read (symlink leaving the repo, too large, not UTF-8)
 * is returned in `unreadable`, so it is reported with every other problem of the repo; the
 * loader refuses such a repo, since a missing service file would mean "remove this service".
 */
export async function readStateRepo(opts: ReadOptions): Promise<RepoFiles> {
  const { repo, env, ref } = opts;
  if (env !== undefined && ref !== undefined) {
    throw new UsageError('give either an environment (--env) or a ref (--ref), not both');
  }
  for (const [flag, value] of [
    ['--env', env],
    ['--ref', ref],
  ] as const) {
    if (value !== undefined && (value === '' || value.startsWith('-') || /[\s\0]/.test(value))) {
      throw new UsageError(`${flag} ${JSON.stringify(value)} is not a valid git name`);
    }
  }
  const shown = redact(repo);
  const unreachable = (detail: string, cause?: unknown) =>
    new ExternalError('git', `cannot read state repo ${shown}: ${detail}`, { cause });

  let url = repo;
  if (isLocalRepo(repo)) {
    const abs = path.resolve(repo);
    const st = await fsp.stat(abs).catch(() => undefined);
    if (!st?.isDirectory()) throw unreachable(st ? 'not a directory' : 'no such directory');
    url = abs;
    if (env === undefined && ref === undefined) {
      try {
        const info = await workTreeInfo(abs, { label: repo });
        if (!info) return await readFolder(abs, await walk(abs), undefined);
        if (info.inWorkTree) return await readWorkTree(abs, repo);
      } catch (e) {
        if (e instanceof GitError) throw unreachable(e.stderrLine, e);
        throw e;
      }
      // A bare repository: read its default branch through the cache like any remote.
    }
  }

  let cache: { dir: string; fetched: boolean };
  try {
    cache = await ensureCache(
      url,
      opts.cacheDir,
      env === undefined && ref === undefined,
      opts.networkTimeoutMs ?? NETWORK_TIMEOUT_MS,
      opts.fetch ?? true,
    );
  } catch (e) {
    if (e instanceof NoDefaultBranch) {
      throw new UsageError(
        `${shown} has no default branch (its HEAD names no branch); choose one with --env (branches: ${await branchList(e.dir)})`,
      );
    }
    if (e instanceof GitError) throw unreachable(e.stderrLine, e);
    throw e;
  }
  const { dir } = cache;
  const label = shown;

  let commit: string | undefined;
  let refLabel: string;
  if (env !== undefined) {
    commit = await resolveCommit(dir, `refs/heads/${env}`, { label });
    if (!commit) {
      throw new UsageError(`branch "${env}" does not exist in ${shown} (branches: ${await branchList(dir)})`);
    }
    refLabel = env;
  } else if (ref !== undefined) {
    commit = await resolveCommit(dir, ref, { label });
    if (!commit && /^[0-9a-f]{40}$/i.test(ref)) {
      // A commit on no branch or tag (a pull request's head, say) is only fetched on request;
      // servers that refuse such requests just leave it missing.
      await fetch(dir, url, [ref], { prune: false, label }).catch(() => undefined);
      commit = await resolveCommit(dir, ref, { label });
    }
    if (!commit) throw new UsageError(`ref "${ref}" does not name a commit in ${shown}`);
    refLabel = ref;
  } else {
    // Right after a clone the bare repo's HEAD is the remote's; later it only moves by fetch.
    const head = await symbolicRef(dir, 'HEAD', { label });
    commit = await resolveCommit(dir, cache.fetched ? REMOTE_HEAD : 'HEAD', { label });
    if (!commit) {
      throw new UsageError(
        `${shown} has no default branch (its HEAD names no branch); choose one with --env (branches: ${await branchList(dir)})`,
      );
    }
    const name = head?.replace(/^refs\/heads\//, '');
    const same =
      !cache.fetched || (head !== undefined && (await resolveCommit(dir, head, { label })) === commit);
    refLabel = name && same ? name : 'HEAD';
  }

  return { ...(await readCommit(dir, commit, label)), commit, ref: refLabel };
}

/** Whether `dir` holds a finished clone (a bare repository has HEAD at its top). */
function hasHead(dir: string): Promise<boolean> {
  return fsp.stat(path.join(dir, 'HEAD')).then(
    () => true,
    () => false,
  );
}

class NoDefaultBranch extends Error {
  constructor(public readonly dir: string) {
    super('no default branch');
  }
}

async function branchList(dir: string): Promise<string> {
  const branches = await listBranches(dir).catch(() => []);
  return branches.length ? branches.join(', ') : 'none';
}

/**
 * Make sure an up-to-date bare clone of `url` exists and return where. `fetched` says whether
 * this run fetched (so REMOTE_HEAD is current) or cloned (so the repo's own HEAD is).
 */
async function ensureCache(
  url: string,
  cacheDir: string,
  wantHead: boolean,
  timeoutMs: number,
  refresh: boolean,
): Promise<{ dir: string; fetched: boolean }> {
  const dir = path.join(cacheDir, await cacheName(url));
  try {
    await fsp.mkdir(cacheDir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new ExternalError('fs', `cannot create the repo cache ${cacheDir}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const label = redact(url);
  if (!(await hasHead(dir))) {
    const tmp = path.join(cacheDir, `.tmp-${path.basename(dir)}-${randomBytes(6).toString('hex')}`);
    try {
      await cloneBare(url, tmp, { cwd: cacheDir, label, timeoutMs });
      if (label !== url) {
        // The URL had credentials; keep them out of the cache on disk (we fetch by URL anyway).
        await setConfig(tmp, 'remote.origin.url', label);
      }
    } catch (e) {
      await fsp.rm(tmp, { recursive: true, force: true });
      throw e;
    }
    // Only a finished clone is ever renamed into place. The folder is never deleted before the
    // clone: between looking for HEAD and deleting, another run may have renamed its fresh clone
    // there, and would then read a folder that vanished under it.
    for (let attempt = 0; ; attempt++) {
      try {
        await fsp.rename(tmp, dir);
        return { dir, fetched: false };
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        const taken = code === 'ENOTEMPTY' || code === 'EEXIST';
        // Another run renamed its clone into place first: theirs is as fresh as ours.
        if (taken && (await hasHead(dir))) {
          await fsp.rm(tmp, { recursive: true, force: true });
          return { dir, fetched: false };
        }
        if (!taken || attempt >= 2) {
          await fsp.rm(tmp, { recursive: true, force: true });
          throw e;
        }
        // A folder without HEAD is debris (hand-made, a disk-full accident): move it aside.
        const trash = path.join(cacheDir, `.trash-${path.basename(dir)}-${randomBytes(6).toString('hex')}`);
        await fsp.rename(dir, trash).then(
          () => fsp.rm(trash, { recursive: true, force: true }),
          () => undefined,
        );
      }
    }
  }

  if (!refresh) return { dir, fetched: false };
  const refspecs = wantHead ? [HEADS, TAGS, `+HEAD:${REMOTE_HEAD}`] : [HEADS, TAGS];
  for (let attempt = 1; ; attempt++) {
    try {
      await fetch(dir, url, refspecs, { label, timeoutMs });
      return { dir, fetched: true };
    } catch (e) {
      if (!(e instanceof GitError)) throw e;
      if (wantHead && /couldn't find remote ref HEAD/i.test(e.stderrLine)) throw new NoDefaultBranch(dir);
      // Two runs fetching at once contend for ref locks; git leaves the repo intact, so waiting
      // and fetching again is safe, and usually finds nothing left to do.
      if (attempt >= 5 || !/\block\b|\.lock'/i.test(e.stderrLine)) throw e;
      await sleep(50 * attempt + Math.random() * 50);
    }
  }
}

/** The relevant files of one commit: one ls-tree, one cat-file batch (two with symlinks). */
async function readCommit(
  dir: string,
  commit: string,
  label: string,
): Promise<{ files: Map<string, string> }> {
  const entries = await listTree(dir, commit, { label });
  const byPath = new Map(entries.map((e) => [e.path, e]));
  const links = entries.filter((e) => e.mode === '120000');
  // Link targets are tiny; when there are links, read them all with the first batch so that
  // links through linked folders resolve without another round trip.
  const blobs = await readBlobs(
    dir,
    [...entries.filter((e) => e.type === 'blob' && isRelevant(e.path)), ...links].map((e) => e.oid),
    { maxSize: MAX_FILE_SIZE, label },
  );
  const linkText = (oid: string) => {
    const b = blobs.get(oid);
    return b instanceof Buffer ? b.toString('utf8') : undefined;
  };

  // A link to a folder inside the repo shows that folder's files under the link's own path, as
  // a checkout would (`services -> envs/prod/services`); they are never read as "no files".
  const issues: ConfigIssue[] = [];
  const relevant = entries.filter((e) => e.type === 'blob' && isRelevant(e.path) && e.mode !== '120000');
  const linked = new Set<string>();
  for (const l of links) {
    if (isRelevant(l.path)) linked.add(l.path);
    const target = resolveLink(l.path, byPath, linkText);
    // Whether a link that leaves the repo names a folder cannot be told from here; its files
    // would be missing, so it is refused like any escaping link.
    if ('problem' in target && !isRelevant(l.path) && /outside the repo/.test(target.problem))
      issues.push(issue(l.path, target.problem));
    if (!('tree' in target)) continue;
    const prefix = target.tree ? `${target.tree}/` : '';
    if (`${l.path}/`.startsWith(prefix)) continue; // a link to a folder it is in: a loop
    for (const e of entries) {
      if (e.type !== 'blob' || !e.path.startsWith(prefix)) continue;
      const shown = `${l.path}/${e.path.slice(prefix.length)}`;
      if (isRelevant(shown) && !byPath.has(shown)) linked.add(shown);
    }
  }

  const source = new Map<string, string>(); // file → oid of the content it shows
  for (const e of relevant) source.set(e.path, e.oid);
  for (const file of linked) {
    const target = resolveLink(file, byPath, linkText);
    if ('problem' in target) issues.push(issue(file, target.problem));
    else if ('tree' in target) issues.push(issue(file, 'symlink points to a directory'));
    else source.set(file, target.oid);
  }
  const missing = [...source.values()].filter((oid) => !blobs.has(oid));
  if (missing.length) {
    for (const [oid, b] of await readBlobs(dir, missing, { maxSize: MAX_FILE_SIZE, label }))
      blobs.set(oid, b);
  }

  const files = new Map<string, string>();
  for (const [file, oid] of source) {
    const content = decode(file, blobs.get(oid) ?? Buffer.alloc(0), issues);
    if (content !== undefined) files.set(file, content);
  }
  return { files, ...(issues.length ? { unreadable: sortIssues(issues) } : {}) };
}

/**
 * Follow a symlink inside a git tree the way the kernel would in a checkout: each target is
 * relative to the link's folder, `..` is taken after the folders before it are resolved, and
 * leaving the repo root (or an absolute target) is refused — a checkout of such a link would
 * read the host's own files.
 */
function resolveLink(
  file: string,
  byPath: Map<string, TreeEntry>,
  linkText: (oid: string) => string | undefined,
): { oid: string } | { tree: string } | { problem: string } {
  let rest = file.split('/');
  const done: string[] = []; // resolved folders, never containing a link
  let hops = 0;
  let lastTarget = '';
  while (rest.length) {
    const part = rest.shift() as string;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (!done.length) return { problem: `symlink points outside the repo: ${lastTarget}` };
      done.pop();
      continue;
    }
    const here = [...done, part].join('/');
    const entry = byPath.get(here);
    if (!entry) return { problem: `symlink target does not exist: ${here}` };
    if (entry.mode === '120000') {
      if (++hops > MAX_LINK_HOPS) return { problem: `more than ${MAX_LINK_HOPS} symlinks deep` };
      const target = linkText(entry.oid);
      if (target === undefined) return { problem: `cannot read symlink ${here}` };
      lastTarget = target;
      if (target.startsWith('/')) return { problem: `symlink points outside the repo: ${target}` };
      // Walk the target from the link's folder; leaving the root on the way is an escape.
      const escape = walkEscapes(done, target);
      if (escape) return { problem: `symlink points outside the repo: ${target}` };
      rest = [...target.split('/'), ...rest];
      continue;
    }
    if (rest.some((p) => p !== '' && p !== '.') && entry.type !== 'tree') {
      return { problem: `symlink target does not exist: ${[here, ...rest].join('/')}` };
    }
    done.push(part);
  }
  if (done.length === 0) return { tree: '' };
  const final = byPath.get(done.join('/'));
  if (final?.type === 'tree') return { tree: done.join('/') };
  if (!final) return { problem: 'symlink points to a directory' };
  if (final.type !== 'blob') return { problem: 'symlink points to a submodule' };
  return { oid: final.oid };
}

/** Whether walking `target` from folder `from` climbs above the root at any point. */
function walkEscapes(from: string[], target: string): boolean {
  let depth = from.length;
  for (const p of target.split('/')) {
    if (p === '..') depth--;
    else if (p !== '' && p !== '.') depth++;
    if (depth < 0) return true;
  }
  return false;
}

/** A git work tree (or a folder in one): what git would commit, read from disk. */
async function readWorkTree(root: string, repo: string): Promise<RepoFiles> {
  const [list, changed, head] = await Promise.all([
    listWorkTreeFiles(root, { label: repo }),
    changedPaths(root, { label: repo }),
    resolveCommit(root, 'HEAD', { label: repo }),
  ]);
  // Any change at all, not only to YAML: a symlinked target elsewhere may have changed too,
  // and a commit label that does not match the content would be a lie on every container.
  return readFolder(root, list, changed.length === 0 ? head : undefined);
}

/** Relative paths of the files under a folder that is in no git repository. */
async function walk(root: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (rel: string): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await fsp.readdir(path.join(root, rel), { withFileTypes: true });
    } catch (e) {
      throw new ExternalError('fs', `cannot read ${path.join(root, rel)}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    await Promise.all(
      entries.map(async (d) => {
        const p = rel ? `${rel}/${d.name}` : d.name;
        // Like git, list a linked folder as one entry and do not descend into it.
        if (d.isDirectory()) {
          if (d.name !== '.git') await visit(p);
        } else out.push(p);
      }),
    );
  };
  await visit('');
  return out.sort();
}

/** Read the relevant files among `list` from disk under `root`. */
async function readFolder(root: string, list: string[], commit: string | undefined): Promise<RepoFiles> {
  const realRoot = await fsp.realpath(root);
  const issues: ConfigIssue[] = [];
  const files = new Map<string, string>();
  const wanted = await withLinkedFolders(root, realRoot, list, issues);
  await Promise.all(
    wanted.map(async (rel) => {
      const full = path.join(root, rel);
      const lst = await fsp.lstat(full).catch(() => undefined);
      if (!lst) return; // tracked but deleted on disk: not part of what is there now
      if (lst.isSymbolicLink()) {
        const target = await fsp.readlink(full);
        const real = await fsp.realpath(full).catch(() => undefined);
        if (!real) return void issues.push(issue(rel, `symlink target does not exist: ${target}`));
        if (real !== realRoot && !real.startsWith(realRoot + path.sep)) {
          return void issues.push(issue(rel, `symlink points outside the repo: ${target}`));
        }
      }
      const st = await fsp.stat(full);
      if (st.isDirectory()) return; // a folder named *.yaml, or a submodule
      if (!st.isFile()) return void issues.push(issue(rel, 'not a regular file'));
      if (st.size > MAX_FILE_SIZE) return void issues.push(tooLarge(rel, st.size));
      let buf: Buffer;
      try {
        buf = await fsp.readFile(full);
      } catch (e) {
        throw new ExternalError('fs', `cannot read ${full}: ${(e as Error).message}`, { cause: e });
      }
      const content = decode(rel, buf, issues);
      if (content !== undefined) files.set(rel, content);
    }),
  );
  // A stable order, so anything iterating the map (messages, hashes) is reproducible.
  const sorted = new Map([...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return {
    files: sorted,
    commit,
    ref: WORKING_TREE,
    ...(issues.length ? { unreadable: sortIssues(issues) } : {}),
  };
}

/**
 * The relevant files among `list`, plus those inside folders that entries of `list` link to
 * (a symlinked `services` folder), listed under the link's path as a checkout shows them. A
 * link that leaves the repo is refused where its files would be read.
 */
async function withLinkedFolders(
  root: string,
  realRoot: string,
  list: string[],
  issues: ConfigIssue[],
): Promise<string[]> {
  const out = new Set(list.filter(isRelevant));
  const inside = (real: string) => real === realRoot || real.startsWith(realRoot + path.sep);
  const visit = async (rel: string, seen: Set<string>, depth: number): Promise<void> => {
    const full = path.join(root, rel);
    const real = await fsp.realpath(full).catch(() => undefined);
    if (!real || seen.has(real) || depth > MAX_LINK_HOPS) return;
    const st = await fsp.stat(full).catch(() => undefined);
    if (!st?.isDirectory()) return;
    if (!inside(real)) {
      issues.push(
        issue(rel, `symlink points outside the repo: ${await fsp.readlink(full).catch(() => '?')}`),
      );
      return;
    }
    const entries = await fsp.readdir(full, { withFileTypes: true });
    for (const d of entries) {
      const sub = `${rel}/${d.name}`;
      if (d.isDirectory() || d.isSymbolicLink()) await visit(sub, new Set([...seen, real]), depth + 1);
      if (!d.isDirectory() && isRelevant(sub)) out.add(sub);
    }
  };
  for (const rel of list) {
    if (isRelevant(rel)) continue;
    const lst = await fsp.lstat(path.join(root, rel)).catch(() => undefined);
    if (lst?.isSymbolicLink()) await visit(rel, new Set(), 0);
  }
  return [...out];
}

function issue(file: string, message: string): ConfigIssue {
  return { file, message, severity: 'error' };
}

function tooLarge(file: string, size: number): ConfigIssue {
  return issue(file, `file too large (${size} bytes; the limit is ${MAX_FILE_SIZE} bytes)`);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** File content as text, or an issue: a YAML parser fed mojibake reports confusing errors. */
function decode(file: string, content: Buffer | TooLarge, issues: ConfigIssue[]): string | undefined {
  if ('tooLarge' in content) {
    issues.push(tooLarge(file, content.size));
    return undefined;
  }
  try {
    return utf8.decode(content);
  } catch {
    issues.push(
      issue(
        file,
        file.startsWith('secrets/')
          ? 'not UTF-8 text; commit age secrets in armored form (age --armor)'
          : 'not valid UTF-8 text',
      ),
    );
    return undefined;
  }
}

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
}
