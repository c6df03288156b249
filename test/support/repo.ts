import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A real git repository in a temp folder, changed by commits as CI or a person would. */
export interface TestRepo {
  dir: string;
  /** Write (string) or delete (null) files, commit them on the current branch, return the commit. */
  commit(files: Record<string, string | null>, message?: string): string;
  git(...args: string[]): string;
  remove(): void;
}

export function createRepo(files: Record<string, string | null>, branch = 'main'): TestRepo {
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-repo-'));
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=berth-test', '-c', 'user.email=test@berth.invalid', ...args], {
      cwd: dir,
      encoding: 'utf8',
    }).trim();
  git('init', '-q', '-b', branch);
  const repo: TestRepo = {
    dir,
    git,
    commit(changes, message = 'change') {
      for (const [file, content] of Object.entries(changes)) {
        const full = path.join(dir, file);
        if (content === null) rmSync(full, { force: true });
        else {
          mkdirSync(path.dirname(full), { recursive: true });
          writeFileSync(full, content);
        }
      }
      git('add', '-A');
      git('commit', '-q', '--allow-empty', '-m', message);
      return git('rev-parse', 'HEAD');
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
  repo.commit(files, 'initial state');
  return repo;
}
