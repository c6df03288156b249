/**
 * The git CLI, as a flat set of small functions. Every function takes the directory it works in
 * explicitly (never the process's cwd), runs git without a shell, and throws a GitError (an
 * ExternalError) that names the command, the repository and git's own complaint.
 *
 * We drive the CLI rather than a library so that berth honours exactly what the user's git does:
 * credential helpers, ~/.ssh/config, insteadOf rewrites, proxies, safe.directory.
 */
import { execFile, spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ExternalError } from '../model/errors.js';

/** Network operations may be slow on a bad link, but an agent must never hang forever on one. */
export const NETWORK_TIMEOUT_MS = 120_000;
/** Local operations on a repo we own; generous because a cold disk cache can be slow. */
export const LOCAL_TIMEOUT_MS = 30_000;
const MAX_BUFFER = 256 * 1024 * 1024;

/** A git command failed. `stderrLine` is the most telling line git printed, credentials removed. */
export class GitError extends ExternalError {
  constructor(
    /** The git subcommand and its arguments, credentials removed. */
    public readonly command: string,
    /** Where it ran, or the repository it was about. */
    public readonly where: string,
    /** git's most telling stderr line (its first `fatal:`/`error:` line, else its first line). */
    public readonly stderrLine: string,
    options?: { cause?: unknown },
  ) {
    super('git', `git ${command} (in ${where}) failed: ${stderrLine}`, options);
    this.name = 'GitError';
  }
}

/**
 * Hide credentials embedded in URLs (`https://user:token@host/…` → `https://***@host/…`). Applied
 * to every message we build, including git's own stderr, which does not always redact them.
 * A user part alone is kept for ssh (`ssh://git@host`), where it is an identity, not a secret,
 * but removed for http(s), where it is usually a token.
 */
export function redact(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)([^/\s]*)@/gi, (whole, scheme: string, userinfo: string) => {
    const isHttp = /^https?:/i.test(scheme);
    return userinfo.includes(':') || isHttp ? `${scheme}***@` : whole;
  });
}

/**
 * The environment git runs with: never prompt (an agent has no one to answer), English messages
 * (we match a few of them), and no GIT_DIR & co. inherited from a parent git process (a hook),
 * which would silently redirect every command to another repository.
 */
function gitEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_TERMINAL_PROMPT: '0', GCM_INTERACTIVE: 'never' };
  env.LC_ALL = 'C';
  for (const k of [
    'GIT_DIR',
    'GIT_WORK_TREE',
    'GIT_INDEX_FILE',
    'GIT_OBJECT_DIRECTORY',
    'GIT_ALTERNATE_OBJECT_DIRECTORIES',
    'GIT_COMMON_DIR',
    'GIT_NAMESPACE',
    'GIT_PREFIX',
  ]) {
    delete env[k];
  }
  return env;
}

/** The line of git's stderr that says what went wrong. */
export function telling(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  // ssh's own complaint ("Connection refused", "Permission denied") says more than git's
  // generic closing lines, which follow it.
  const generic = /Could not read from remote repository|correct access rights|and the repository exists/i;
  const useful = lines.filter((l) => !generic.test(l));
  const line =
    useful.find((l) => /^(fatal|error|ssh):/.test(l)) ?? useful[0] ?? lines[0] ?? 'no error message';
  return redact(line);
}

/** Options for one git invocation. */
export interface RunOptions {
  /** Directory git runs in; required so no function depends on the process's cwd. */
  cwd: string;
  timeoutMs?: number;
  /** What to name in an error message instead of cwd (the user's repo, not our cache dir). */
  label?: string;
  /**
   * Variables set for this one run on top of git's usual environment (an author's identity, a
   * private index file). Set on purpose, so they win over the ones gitEnv() removes.
   */
  env?: Record<string, string>;
}

/** What a finished git process printed. */
export interface RunResult {
  stdout: Buffer;
  stderr: string;
  /** 0 on success; only returned non-zero when `allowExit` lists it. */
  code: number;
}

/**
 * Run git once. Throws GitError unless it exits 0 or with a code in `allowExit` (some commands
 * answer "no" with exit 1, which is not a failure).
 */
export function runGit(args: string[], opts: RunOptions & { allowExit?: number[] }): Promise<RunResult> {
  const timeout = opts.timeoutMs ?? LOCAL_TIMEOUT_MS;
  const where = redact(opts.label ?? opts.cwd);
  const command = redact(args.join(' '));
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      args,
      {
        cwd: opts.cwd,
        env: opts.env ? { ...gitEnv(), ...opts.env } : gitEnv(),
        timeout,
        maxBuffer: MAX_BUFFER,
        encoding: 'buffer',
        windowsHide: true,
      },
      (err, stdout, stderrBuf) => {
        const stderr = stderrBuf.toString('utf8');
        if (!err) return resolve({ stdout, stderr, code: 0 });
        const e = err as NodeJS.ErrnoException & { code?: unknown; killed?: boolean; signal?: string };
        if (typeof e.code === 'number' && opts.allowExit?.includes(e.code)) {
          return resolve({ stdout, stderr, code: e.code });
        }
        let line: string;
        if (e.code === 'ENOENT' && !stderr) line = `cannot run git (${e.message}); is git installed?`;
        else if (e.killed || e.signal)
          line = `no answer within ${formatSeconds(timeout)} (it was stopped; --git-timeout sets the limit)`;
        else if (e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') line = 'output too large';
        else line = telling(stderr || e.message);
        reject(new GitError(command, where, line, { cause: err }));
      },
    );
  });
}

function formatSeconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 100) / 10} s`;
}

/** Run git and return its stdout as text, trailing newline removed. */
async function text(args: string[], opts: RunOptions): Promise<string> {
  const { stdout } = await runGit(args, opts);
  return stdout.toString('utf8').replace(/\n$/, '');
}

/**
 * Clone `url` as a bare repository into `dest` (which must not exist). A bare clone, not a
 * mirror: a mirror also copies refs/pull/* and the like, which on a busy GitHub repo is most of
 * the transfer and none of what berth reads.
 */
export async function cloneBare(url: string, dest: string, opts: RunOptions): Promise<void> {
  // `--` so a URL that starts with "-" can never be taken for an option.
  await runGit(['clone', '--bare', '--quiet', '--', url, dest], {
    timeoutMs: NETWORK_TIMEOUT_MS,
    label: url,
    ...opts,
  });
}

/**
 * Fetch `refspecs` from `url` into the repository at `gitDir`, deleting local refs the remote no
 * longer has (`--prune`) so a deleted branch is really gone. The URL is passed explicitly rather
 * than read from the remote's config, so credentials never need to be stored in the cache.
 */
export async function fetch(
  gitDir: string,
  url: string,
  refspecs: string[],
  opts: Omit<RunOptions, 'cwd'> & { prune?: boolean } = {},
): Promise<void> {
  const args = ['fetch', '--quiet', '--no-tags'];
  if (opts.prune ?? true) args.push('--prune');
  args.push('--', url, ...refspecs);
  await runGit(args, { timeoutMs: NETWORK_TIMEOUT_MS, label: url, ...opts, cwd: gitDir });
}

/** Set one config value in the repository at `cwd`. */
export async function setConfig(cwd: string, key: string, value: string, opts: Partial<RunOptions> = {}) {
  await runGit(['config', '--', key, value], { ...opts, cwd });
}

/**
 * The full commit id that `rev` names (anything rev-parse understands: sha, tag, branch, ref),
 * peeled to a commit; undefined when it names nothing or names something that is not a commit.
 */
export async function resolveCommit(
  cwd: string,
  rev: string,
  opts: Partial<RunOptions> = {},
): Promise<string | undefined> {
  // A leading "-" would be read as an option; --end-of-options is too new (2.30) to rely on.
  if (rev.startsWith('-')) return undefined;
  const { stdout, code } = await runGit(['rev-parse', '--verify', '--quiet', `${rev}^{commit}`], {
    ...opts,
    cwd,
    allowExit: [1],
  });
  if (code !== 0) return undefined;
  return stdout.toString('utf8').trim() || undefined;
}

/** The ref a symbolic ref (usually HEAD) points at, e.g. `refs/heads/main`; undefined if detached. */
export async function symbolicRef(
  cwd: string,
  name = 'HEAD',
  opts: Partial<RunOptions> = {},
): Promise<string | undefined> {
  const { stdout, code } = await runGit(['symbolic-ref', '--quiet', name], { ...opts, cwd, allowExit: [1] });
  return code === 0 ? stdout.toString('utf8').trim() : undefined;
}

/** Short names of the local branches (refs/heads/*), sorted. */
export async function listBranches(cwd: string, opts: Partial<RunOptions> = {}): Promise<string[]> {
  const out = await text(['for-each-ref', '--format=%(refname:short)', 'refs/heads/'], { ...opts, cwd });
  return out ? out.split('\n').sort() : [];
}

/** One entry of a tree listing. */
export interface TreeEntry {
  /** Octal mode as git prints it: 100644, 100755, 120000 (symlink), 160000 (submodule), 040000 (tree). */
  mode: string;
  type: 'blob' | 'tree' | 'commit';
  oid: string;
  /** Path from the repository root, `/`-separated. */
  path: string;
}

/**
 * Every entry of the tree at `rev`, recursively, with modes; subtrees are listed too (so a
 * symlink can be told to point at a directory).
 */
export async function listTree(
  cwd: string,
  rev: string,
  opts: Partial<RunOptions> = {},
): Promise<TreeEntry[]> {
  if (rev.startsWith('-')) throw new GitError(`ls-tree ${rev}`, redact(opts.label ?? cwd), 'not a revision');
  const { stdout } = await runGit(['ls-tree', '-r', '-t', '-z', '--full-tree', rev], {
    ...opts,
    cwd,
  });
  const entries: TreeEntry[] = [];
  for (const rec of stdout.toString('utf8').split('\0')) {
    if (!rec) continue;
    // "<mode> SP <type> SP <oid> TAB <path>"; the path may itself hold spaces or tabs.
    const tab = rec.indexOf('\t');
    const [mode, type, oid] = rec.slice(0, tab).split(' ');
    if (!mode || !oid || (type !== 'blob' && type !== 'tree' && type !== 'commit')) continue;
    entries.push({ mode, type, oid, path: rec.slice(tab + 1) });
  }
  return entries;
}

/** A blob that was not read because it is bigger than the caller's limit. */
export interface TooLarge {
  tooLarge: true;
  size: number;
}

/**
 * Read many objects in ONE `git cat-file --batch` process: starting a process per file costs
 * milliseconds each, which for a repo of a hundred services is most of a no-op run. Objects
 * larger than `maxSize` are skipped as they stream past, so a stray huge file costs no memory.
 */
export function readBlobs(
  cwd: string,
  oids: string[],
  opts: Partial<RunOptions> & { maxSize?: number } = {},
): Promise<Map<string, Buffer | TooLarge>> {
  const result = new Map<string, Buffer | TooLarge>();
  const wanted = [...new Set(oids)];
  if (wanted.length === 0) return Promise.resolve(result);
  const maxSize = opts.maxSize ?? Infinity;
  const timeout = opts.timeoutMs ?? LOCAL_TIMEOUT_MS;
  const where = redact(opts.label ?? cwd);
  const fail = (line: string, cause?: unknown) => new GitError('cat-file --batch', where, line, { cause });

  return new Promise((resolve, reject) => {
    const child = spawn('git', ['cat-file', '--batch'], {
      cwd,
      env: gitEnv(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        child.kill();
        reject(err);
      } else resolve(result);
    };
    const timer = setTimeout(() => finish(fail(`timed out after ${Math.round(timeout / 1000)}s`)), timeout);

    // Streaming parser: a header line "<oid> <type> <size>\n" (or "<oid> missing\n"), then
    // <size> bytes of content and a "\n".
    let pending: Buffer = Buffer.alloc(0);
    let index = 0; // which requested oid the next header answers
    let body: { oid: string; size: number; chunks: Buffer[] | null; got: number } | null = null;
    let stderr = '';

    const onData = (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      for (;;) {
        if (body) {
          const need = body.size + 1 - body.got; // content plus the trailing newline
          const take = Math.min(need, pending.length);
          if (body.chunks && take > 0) body.chunks.push(pending.subarray(0, take));
          body.got += take;
          pending = pending.subarray(take);
          if (body.got < body.size + 1) return;
          if (body.chunks) result.set(body.oid, Buffer.concat(body.chunks).subarray(0, body.size));
          else result.set(body.oid, { tooLarge: true, size: body.size });
          body = null;
          continue;
        }
        const nl = pending.indexOf(0x0a);
        if (nl < 0) return;
        const header = pending.subarray(0, nl).toString('utf8');
        pending = pending.subarray(nl + 1);
        const oid = wanted[index++];
        const parts = header.split(' ');
        if (oid === undefined || parts[1] === 'missing' || parts.length !== 3) {
          finish(fail(`object ${oid ?? parts[0]} is missing from the repository`));
          return;
        }
        const size = Number(parts[2]);
        body = { oid, size, chunks: size <= maxSize ? [] : null, got: 0 };
      }
    };

    child.stdout.on('data', onData);
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', (e) => finish(fail(`cannot run git (${e.message})`, e)));
    child.on('close', (code) => {
      if (code !== 0) return finish(fail(telling(stderr || `exit code ${code}`)));
      if (index < wanted.length || body)
        return finish(fail('git cat-file stopped before answering every object'));
      finish();
    });
    // An EPIPE here means git died early; 'close' reports why.
    child.stdin.on('error', () => undefined);
    child.stdin.end(wanted.join('\n') + '\n');
  });
}

/** Where a directory stands relative to git. */
export interface WorkTreeInfo {
  /** True in a work tree, false inside a bare repository or a .git directory. */
  inWorkTree: boolean;
  /** The directory's path from the work tree's root, `/`-terminated, or '' at the root. */
  prefix: string;
}

/** How `dir` relates to git; undefined when it is in no repository at all. */
export async function workTreeInfo(
  dir: string,
  opts: Partial<RunOptions> = {},
): Promise<WorkTreeInfo | undefined> {
  const { stdout, stderr, code } = await runGit(['rev-parse', '--is-inside-work-tree', '--show-prefix'], {
    ...opts,
    cwd: dir,
    allowExit: [128],
  });
  if (code !== 0) {
    // Only "not a repository" means "plain directory"; dubious ownership and the like must
    // surface, not silently turn a repo into a folder of files.
    if (/not a git repository/i.test(stderr)) return undefined;
    throw new GitError('rev-parse --is-inside-work-tree', redact(opts.label ?? dir), telling(stderr));
  }
  const [inside, prefix] = stdout.toString('utf8').split('\n');
  return { inWorkTree: inside === 'true', prefix: prefix ?? '' };
}

/**
 * Files in the work tree under `dir` that git would commit: tracked ones plus untracked ones
 * not ignored. Paths are relative to `dir`. Tracked files deleted on disk are still listed.
 */
export async function listWorkTreeFiles(dir: string, opts: Partial<RunOptions> = {}): Promise<string[]> {
  const { stdout } = await runGit(['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    ...opts,
    cwd: dir,
  });
  // A conflicted file is listed once per stage.
  return [...new Set(stdout.toString('utf8').split('\0').filter(Boolean))];
}

/**
 * Paths under `dir` that differ from HEAD (modified, staged, deleted, renamed, untracked and not
 * ignored), relative to the work tree root as git prints them.
 */
export async function changedPaths(dir: string, opts: Partial<RunOptions> = {}): Promise<string[]> {
  const { stdout } = await runGit(['status', '--porcelain=v1', '-z', '--untracked-files=all', '--', '.'], {
    ...opts,
    cwd: dir,
  });
  const recs = stdout.toString('utf8').split('\0');
  const paths: string[] = [];
  for (let i = 0; i < recs.length; i++) {
    const rec = recs[i];
    if (!rec || rec.length < 4) continue;
    paths.push(rec.slice(3));
    // A rename or copy is followed by its source path in a record of its own.
    if (rec[0] === 'R' || rec[0] === 'C') {
      const from = recs[++i];
      if (from) paths.push(from);
    }
  }
  return paths;
}

// ---------------------------------------------------------------------------------------------
// Writing to a state repo (the CI side: set-image, rollback, promote). berth never edits a
// checkout: it builds commits with plumbing in a private bare repository that borrows the cached
// clone's objects, and pushes them. Nothing is shared between runs but content-addressed objects.

/**
 * Create a bare repository at `dir` (absent or empty) that reads objects from the repository at
 * `borrowFrom` (a git dir) as an alternate: a private place to build commits without copying an
 * object, and without an index or work tree any other run could touch.
 */
export async function initBorrowingRepo(
  dir: string,
  borrowFrom: string,
  opts: Partial<RunOptions> = {},
): Promise<void> {
  await runGit(['init', '--bare', '--quiet', '--', dir], { ...opts, cwd: path.dirname(dir) });
  await fsp.writeFile(
    path.join(dir, 'objects', 'info', 'alternates'),
    path.join(borrowFrom, 'objects') + '\n',
  );
}

/** One file to write or delete in a commit. */
export interface FileChange {
  /** Path from the repository root, `/`-separated. */
  path: string;
  /** The new content, byte for byte, or null to delete the file. */
  content: string | null;
  /** Git file mode; default 100644. Pass the file's own mode when editing it. */
  mode?: string;
}

/** What a new commit holds and says. */
export interface NewCommit {
  /** The commit it follows; its tree is where `changes` start from. */
  parent: string;
  changes: FileChange[];
  message: string;
  /**
   * GIT_AUTHOR_* / GIT_COMMITTER_* (and _DATE) for this commit only; whatever is not set comes
   * from the process environment or git's config, as for `git commit`.
   */
  identity?: Record<string, string>;
}

/**
 * Build one commit in the bare repository `gitDir` without a work tree: blobs from the new
 * contents (written unfiltered, so bytes stay exact), a tree from the parent's with the changes
 * applied (in a private index file), and the commit. Returns its id; nothing is pushed.
 */
export async function createCommit(
  gitDir: string,
  c: NewCommit,
  opts: Partial<RunOptions> = {},
): Promise<string> {
  const run = { ...opts, cwd: gitDir };
  for (const ch of c.changes) {
    if (!ch.path || ch.path.startsWith('-') || ch.path.startsWith('/') || ch.path.split('/').includes('..')) {
      throw new GitError(
        'update-index',
        redact(opts.label ?? gitDir),
        `refusing path ${JSON.stringify(ch.path)}`,
      );
    }
  }
  const scratch = await fsp.mkdtemp(path.join(gitDir, 'berth-'));
  try {
    const writes = c.changes.filter((ch) => ch.content !== null);
    const files = await Promise.all(
      writes.map(async (ch, i) => {
        const f = path.join(scratch, String(i));
        await fsp.writeFile(f, ch.content as string);
        return f;
      }),
    );
    const oids = files.length
      ? (await text(['hash-object', '-w', '--no-filters', '--', ...files], run)).split('\n')
      : [];
    const index = { GIT_INDEX_FILE: path.join(scratch, 'index') };
    await runGit(['read-tree', `${c.parent}^{tree}`], { ...run, env: index });
    const args = ['update-index', '--add'];
    writes.forEach((ch, i) => args.push('--cacheinfo', `${ch.mode ?? '100644'},${oids[i]},${ch.path}`));
    const removed = c.changes.filter((ch) => ch.content === null).map((ch) => ch.path);
    if (removed.length) args.push('--force-remove', ...removed);
    // --force-remove wants a work tree, though it never looks at one: give it the empty scratch dir.
    await runGit(args, { ...run, env: { ...index, GIT_DIR: gitDir, GIT_WORK_TREE: scratch } });
    const tree = await text(['write-tree'], { ...run, env: index });
    return await text(['commit-tree', tree, '-p', c.parent, '-m', c.message], {
      ...run,
      ...(c.identity ? { env: c.identity } : {}),
    });
  } finally {
    await fsp.rm(scratch, { recursive: true, force: true });
  }
}

/** How the remote answered for one ref of a push (`git push --porcelain`). */
export interface PushedRef {
  /** The remote ref, e.g. `refs/heads/staging`. */
  ref: string;
  /** True when the remote took it (or already had it). */
  ok: boolean;
  /** git's summary: `[rejected]`, `[remote rejected]`, `abc..def`, `[up to date]`. */
  summary: string;
  /** The reason in parentheses, e.g. `fetch first`, `pre-receive hook declined`. */
  reason?: string;
}

/**
 * Push `refspecs` (`<commit>:refs/heads/<branch>`, `+` to force) from `gitDir` to `url`. A ref
 * the remote refused is an answer, not an exception (the caller decides whether it was a race);
 * a push that could not happen at all (unreachable, no permission) throws GitError.
 */
export async function push(
  gitDir: string,
  url: string,
  refspecs: string[],
  opts: Omit<RunOptions, 'cwd'> = {},
): Promise<PushedRef[]> {
  const { stdout, stderr, code } = await runGit(['push', '--porcelain', '--', url, ...refspecs], {
    timeoutMs: NETWORK_TIMEOUT_MS,
    label: url,
    ...opts,
    cwd: gitDir,
    allowExit: [1],
  });
  const refs: PushedRef[] = [];
  for (const line of stdout.toString('utf8').split('\n')) {
    // "<flag>\t<from>:<to>\t<summary> (<reason>)"
    const m = /^([ +\-*=!])\t[^\t]*:([^\t]+)\t([^(]*?)(?: \((.*)\))?$/.exec(line);
    if (!m) continue;
    const r: PushedRef = { ref: m[2]!, ok: m[1] !== '!', summary: m[3]!.trim() };
    if (m[4] !== undefined) r.reason = redact(m[4]);
    refs.push(r);
  }
  if (code !== 0 && refs.length === 0) {
    throw new GitError(redact(`push ${refspecs.join(' ')}`), redact(opts.label ?? url), telling(stderr));
  }
  return refs;
}

/**
 * Whether a refused ref lost a race with another writer (fetch and try again) rather than being
 * refused for good (a protected branch, a hook, no permission).
 */
export function lostRace(r: PushedRef): boolean {
  if (r.ok) return false;
  const why = `${r.summary} ${r.reason ?? ''}`;
  return /fetch first|non-fast-forward|stale info|cannot lock ref|failed to update ref|incorrect old value|is at [0-9a-f]+ but expected/i.test(
    why,
  );
}

/** Whether commit `a` is `b` or one of its ancestors. */
export async function isAncestor(
  cwd: string,
  a: string,
  b: string,
  opts: Partial<RunOptions> = {},
): Promise<boolean> {
  const { code } = await runGit(['merge-base', '--is-ancestor', a, b], { ...opts, cwd, allowExit: [1] });
  return code === 0;
}

/** One commit that changed a file, from `logFile`. */
export interface FileCommit {
  commit: string;
  authorName: string;
  authorEmail: string;
  /** ISO 8601, as the commit records it. */
  authorDate: string;
  committerName: string;
  committerDate: string;
  subject: string;
  /** The file's blob after this commit; undefined when the commit deleted it. */
  blob?: string;
}

/**
 * The commits on `rev`'s first-parent line that changed `file`, newest first, with the file's
 * blob after each: the story of one file as it entered that branch (a merge counts as the commit
 * that brought its changes in). One git process, however long the history.
 */
export async function logFile(
  cwd: string,
  rev: string,
  file: string,
  opts: Partial<RunOptions> & { limit?: number } = {},
): Promise<FileCommit[]> {
  if (rev.startsWith('-')) throw new GitError(`log ${rev}`, redact(opts.label ?? cwd), 'not a revision');
  const args = ['log', '--first-parent', '-m', '--raw', '--no-abbrev', '--no-renames'];
  args.push('--format=%x1e%H%x1f%an%x1f%ae%x1f%aI%x1f%cn%x1f%cI%x1f%s');
  if (opts.limit !== undefined) args.push(`--max-count=${opts.limit}`);
  args.push(rev, '--', file);
  const out = await text(args, { ...opts, cwd });
  const entries: FileCommit[] = [];
  for (const rec of out.split('\x1e')) {
    if (!rec.trim()) continue;
    const [head, ...rest] = rec.split('\n');
    const [commit, authorName, authorEmail, authorDate, committerName, committerDate, subject] = (
      head ?? ''
    ).split('\x1f');
    if (!commit) continue;
    const e: FileCommit = {
      commit,
      authorName: authorName ?? '',
      authorEmail: authorEmail ?? '',
      authorDate: authorDate ?? '',
      committerName: committerName ?? '',
      committerDate: committerDate ?? '',
      subject: subject ?? '',
    };
    // ":100644 100644 <old> <new> M\t<path>"; the new id is all zeros when the file was deleted.
    const raw = rest.find((l) => l.startsWith(':'));
    const blob = raw?.split('\t')[0]?.split(' ')[3];
    if (blob && !/^0+$/.test(blob)) e.blob = blob;
    entries.push(e);
  }
  return entries;
}
