import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after } from 'node:test';

/** Run git in a test repo, independent of the user's identity and signing settings. */
export function gitIn(cwd: string, ...args: string[]): string {
  return execFileSync(
    'git',
    [
      '-c',
      'user.name=berth-test',
      '-c',
      'user.email=test@berth.invalid',
      '-c',
      'commit.gpgsign=false',
      '-c',
      'tag.gpgsign=false',
      ...args,
    ],
    { cwd, encoding: 'utf8' },
  ).trim();
}

/** A temp-folder factory whose folders are all removed when the test file ends. */
export function tempDirs(prefix: string): () => string {
  const made: string[] = [];
  after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));
  return () => {
    const d = mkdtempSync(path.join(tmpdir(), prefix));
    made.push(d);
    return d;
  };
}

/**
 * Run `work` with a `git` on PATH that records each invocation (its arguments, one line per
 * process) before handing over to the real git, and return what it ran. Counting processes is
 * how a test checks "one git process, not one per file" without timing anything.
 */
export async function countGitRuns<T>(work: () => Promise<T>): Promise<{ result: T; runs: string[] }> {
  const realGit = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-gitcount-'));
  const log = path.join(dir, 'runs.log');
  writeFileSync(
    path.join(dir, 'git'),
    `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec '${realGit}' "$@"\n`,
    { mode: 0o755 },
  );
  const before = process.env.PATH;
  process.env.PATH = `${dir}${path.delimiter}${before ?? ''}`;
  try {
    const result = await work();
    const runs = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
    return { result, runs };
  } finally {
    process.env.PATH = before;
    rmSync(dir, { recursive: true, force: true });
  }
}
