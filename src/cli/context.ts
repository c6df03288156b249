import path from 'node:path';
import { loadStateRepo } from '../config/load.js';
import { desiredForHost } from '../config/select.js';
import { ConfigError, formatIssue, type ConfigIssue } from '../model/errors.js';
import type { DesiredState, StateRepo } from '../model/service.js';
import { defaultCacheDir, readStateRepo, type RepoFiles } from '../source/read.js';

/** Flags every command that reads the state repo understands. */
export interface RepoFlags {
  repo: string;
  env?: string;
  ref?: string;
  host?: string;
  cacheDir?: string;
}

export interface LoadedRepo {
  repo: StateRepo;
  warnings: ConfigIssue[];
}

/** The repo's files at the ref the flags name (or the working tree). */
export function readFiles(flags: RepoFlags): Promise<RepoFiles> {
  return readStateRepo({
    repo: flags.repo,
    env: flags.env,
    ref: flags.ref,
    cacheDir: flags.cacheDir ?? defaultCacheDir(),
  });
}

/** Read and validate the state repo; any error-level issue stops here, before the engine is asked. */
export async function loadRepo(flags: RepoFlags): Promise<LoadedRepo> {
  const result = loadStateRepo(await readFiles(flags));
  const errors = result.issues.filter((i) => i.severity === 'error');
  if (errors.length || !result.repo) throw new ConfigError(errors);
  return { repo: result.repo, warnings: result.issues.filter((i) => i.severity === 'warning') };
}

export async function loadDesired(
  flags: RepoFlags,
): Promise<{ desired: DesiredState; warnings: ConfigIssue[] }> {
  const { repo, warnings } = await loadRepo(flags);
  return { desired: desiredForHost(repo, flags.host), warnings };
}

export function printWarnings(warnings: ConfigIssue[]): void {
  for (const w of warnings) process.stderr.write(formatIssue(w) + '\n');
}

/** The repo as the user named it, kept readable in the record (absolute for local paths). */
export function repoLabel(repo: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(repo) || /^[^/]+@[^:]+:/.test(repo) ? repo : path.resolve(repo);
}
