import { Option, type Command } from 'commander';
import { UsageError } from '../../model/errors.js';
import type { Release } from '../../gitops/edit.js';
import { DEFAULT_MAX_TRIES, type Landed } from '../../gitops/land.js';
import { describeRelease } from '../../gitops/release.js';
import { openWorkspace, type Workspace } from '../../gitops/workspace.js';
import { defaultCacheDir } from '../../source/read.js';
import { printJson } from '../output.js';

/** Flags of the commands that read (and write) the state repo through git, never an engine. */
export interface GitopsFlags {
  repo: string;
  cacheDir?: string;
  json?: boolean;
}

/** Flags of the commands that commit and push. */
export interface WriteFlags extends GitopsFlags {
  author?: string;
  committer?: string;
  tries: number;
}

/** --repo and --cache-dir, as every other command spells them. */
export function gitopsOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--repo <path|url>', 'state repo: a local path or any git URL')
        .env('BERTH_REPO')
        .default('.'),
    )
    .option('--cache-dir <dir>', 'where cached clones of remote repos live');
}

/** --env for the commands that change one environment's branch. */
export function changedEnvOption(): Option {
  return new Option('--env <name>', 'environment: the branch to change')
    .env('BERTH_ENV')
    .makeOptionMandatory();
}

function tries(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 1000)
    throw new UsageError(`--tries takes a whole number from 1 to 1000, not "${v}"`);
  return n;
}

/** Who commits, and how often to try again when another job pushed first. */
export function writeOptions(cmd: Command): Command {
  return cmd
    .option('--author <"Name <email>">', 'commit author (default: GIT_AUTHOR_NAME/EMAIL, then git config)')
    .option('--committer <"Name <email>">', 'committer (default: GIT_COMMITTER_NAME/EMAIL, then git config)')
    .option('--tries <n>', 'attempts when other jobs push to the branch first', tries, DEFAULT_MAX_TRIES);
}

/** Run `work` with a workspace for the flags' repo; its private repo is removed afterwards. */
export async function withWorkspace<T>(
  flags: GitopsFlags & Partial<WriteFlags>,
  work: (ws: Workspace) => Promise<T>,
): Promise<T> {
  const ws = await openWorkspace({
    repo: flags.repo,
    cacheDir: flags.cacheDir ?? defaultCacheDir(),
    identity: {
      ...(flags.author !== undefined ? { author: flags.author } : {}),
      ...(flags.committer !== undefined ? { committer: flags.committer } : {}),
    },
    onWait: (pid) => {
      if (flags.json || !process.stderr.isTTY) return;
      process.stderr.write(
        `  waiting for another berth run on this machine${pid ? ` (pid ${pid})` : ''} writing to this repo\n`,
      );
    },
  });
  try {
    return await work(ws);
  } finally {
    await ws.close();
  }
}

/** Progress for a lost push race: on a terminal only (piped output stays one line per run). */
export function retryNotice(json: boolean | undefined, branch: () => string, tries: number) {
  if (json || !process.stderr.isTTY) return undefined;
  return (attempt: number, why: string) =>
    process.stderr.write(
      `  ${branch()}: another job pushed first (${why}); trying again (${attempt + 1}/${tries})\n`,
    );
}

/** How a command that writes to the state repo tells what it did: JSON with --json, else text. */
export function printOutcome<T>(
  flags: { json?: boolean },
  out: T,
  form: { json: (out: T) => unknown; text: (out: T) => string },
): void {
  if (flags.json) printJson(form.json(out));
  else process.stdout.write(form.text(out));
}

/** What set-image and rollback land: one service file's release, before and after. */
export type ServiceLanded = Landed<{ file: string; before: Partial<Release>; after: Partial<Release> }> & {
  branch: string;
};

/**
 * The outcome of set-image and rollback: with --json the service, the branch, the commit (the
 * base when nothing changed), the release before and after and `extra`; else one line, "already
 * has" when nothing was committed and the command's own `changed(commit)` when something was.
 */
export function printServiceChange(
  flags: { json?: boolean; env: string },
  service: string,
  out: ServiceLanded,
  form: { extra?: Record<string, unknown>; changed: (commit: string) => string },
): void {
  const { result, commit } = out;
  printOutcome(flags, out, {
    json: () => ({
      service,
      env: flags.env,
      branch: out.branch,
      changed: commit !== undefined,
      commit: commit ?? out.base,
      base: out.base,
      tries: out.tries,
      file: result.file,
      before: result.before,
      after: result.after,
      ...form.extra,
    }),
    text: () =>
      commit
        ? `${form.changed(commit)}\n`
        : `${service}: ${out.branch} already has ${describeRelease(result.after)}; nothing to commit\n`,
  });
}
