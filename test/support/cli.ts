import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The built berth executable, for tests that spawn it themselves. */
export const MAIN = path.join(ROOT, 'dist/cli/main.js');

/**
 * The CLI tests run the built berth; a build older than the source would test yesterday's code
 * and pass or fail for the wrong reason. Refuse to run against it.
 */
export function assertFreshBuild(): void {
  const newest = (dir: string, keep: (f: string) => boolean): number => {
    let t = 0;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) t = Math.max(t, newest(full, keep));
      else if (keep(e.name)) t = Math.max(t, statSync(full).mtimeMs);
    }
    return t;
  };
  if (!existsSync(MAIN)) throw new Error(`no build at ${MAIN}: run \`npm run build\` first`);
  const src = newest(path.join(ROOT, 'src'), (f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
  // The build (scripts/build.ts) writes dist/ afresh, main.js included.
  if (src > statSync(MAIN).mtimeMs) {
    throw new Error('dist/ is older than src/: run `npm run build` before the CLI tests');
  }
}
assertFreshBuild();

/**
 * `--repo REPO --env ENV --store WORK/berth.db --cache-dir WORK/cache`: a state repo, and berth's
 * record and clone cache in a test's work folder, as one host would keep them.
 */
export const stateFlags = (repo: string, work: string, env = 'main'): string[] => [
  '--repo',
  repo,
  '--env',
  env,
  '--store',
  `${work}/berth.db`,
  '--cache-dir',
  `${work}/cache`,
];

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Run the built `berth` executable as a user would, in its own process. Bounded in time: a run
 * that hangs is killed and reported, so no test waits forever.
 */
export function berth(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 60_000) {
  return new Promise<CliResult>((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      env: { ...process.env, NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`berth ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}
