import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * A real bare git repository standing for a state repo's remote (what CI pushes to), with the
 * branches given, plus what a test needs to look inside it and to push to it as another person
 * or job would.
 */
export interface TestRemote {
  /** The bare repository's path (usable as --repo, or as file:// + path). */
  bare: string;
  /** `file://` URL of the bare repository. */
  url: string;
  /** Run git in the bare repository. */
  git(...args: string[]): string;
  /** A file's content on a branch (or any revision), or undefined when it is not there. */
  show(rev: string, file: string): string | undefined;
  /** The commit a branch points at. */
  head(branch: string): string;
  /** Subjects of the commits on a branch, newest first. */
  subjects(branch: string, limit?: number): string[];
  /** Commit files (string) or deletions (null) on top of a branch as someone else, and push; returns the commit. */
  commit(branch: string, files: Record<string, string | null>, message?: string): string;
  /** Create `branch` at `from`'s head. */
  branch(branch: string, from: string): void;
  remove(): void;
}

function run(cwd: string, args: string[], env: Record<string, string> = {}): string {
  return execFileSync(
    'git',
    [
      '-c',
      'user.name=someone',
      '-c',
      'user.email=someone@berth.invalid',
      '-c',
      'commit.gpgsign=false',
      ...args,
    ],
    { cwd, encoding: 'utf8', env: { ...process.env, ...env } },
  ).trim();
}

/** A bare repo whose branches all start from one commit holding `files`. */
export function createRemote(files: Record<string, string>, branches: string[] = ['staging']): TestRemote {
  const root = mkdtempSync(path.join(tmpdir(), 'berth-remote-'));
  const work = path.join(root, 'work');
  const bare = path.join(root, 'state.git');
  const first = branches[0] ?? 'main';
  run(root, ['init', '-q', '-b', first, work]);
  for (const [f, c] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(work, f)), { recursive: true });
    writeFileSync(path.join(work, f), c);
  }
  run(work, ['add', '-A']);
  run(work, ['commit', '-q', '--allow-empty', '-m', 'initial state']);
  for (const b of branches.slice(1)) run(work, ['branch', b]);
  run(root, ['clone', '-q', '--bare', work, bare]);
  const git = (...args: string[]) => run(bare, args);
  const remote: TestRemote = {
    bare,
    url: `file://${bare}`,
    git,
    show(rev, file) {
      try {
        return execFileSync('git', ['show', `${rev}:${file}`], {
          cwd: bare,
          encoding: 'utf8',
          stdio: 'pipe',
        });
      } catch {
        return undefined;
      }
    },
    head: (branch) => git('rev-parse', `refs/heads/${branch}`),
    subjects: (branch, limit = 1000) =>
      git('log', `--max-count=${limit}`, '--format=%s', `refs/heads/${branch}`).split('\n').filter(Boolean),
    commit(branch, changes, message = 'hand edit') {
      run(work, ['fetch', '-q', bare, `+refs/heads/${branch}:refs/remotes/origin/${branch}`]);
      run(work, ['checkout', '-q', '-B', branch, `refs/remotes/origin/${branch}`]);
      for (const [f, c] of Object.entries(changes)) {
        const full = path.join(work, f);
        if (c === null) rmSync(full, { force: true });
        else {
          mkdirSync(path.dirname(full), { recursive: true });
          writeFileSync(full, c);
        }
      }
      run(work, ['add', '-A']);
      run(work, ['commit', '-q', '--allow-empty', '-m', message]);
      run(work, ['push', '-q', bare, `HEAD:refs/heads/${branch}`]);
      return run(work, ['rev-parse', 'HEAD']);
    },
    branch(branch, from) {
      git('branch', branch, `refs/heads/${from}`);
    },
    remove() {
      rmSync(root, { recursive: true, force: true });
    },
  };
  return remote;
}
