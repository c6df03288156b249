import { formatIssue, type ConfigIssue } from '../model/errors.js';
import type { DesiredState } from '../model/service.js';
import type { SourceRequest } from '../host/desired.js';
import type { HostRequest } from '../host/pipeline.js';
import type { Host } from '../host/target.js';
import { defaultStorePath } from '../store/paths.js';
import { defaultCacheDir, isLocalRepo, readStateRepo, type RepoFiles } from '../source/read.js';
import path from 'node:path';

/** Flags every command that reads the state repo understands. */
export interface RepoFlags {
  repo: string;
  env?: string;
  ref?: string;
  host?: string;
  cacheDir?: string;
  /** The host's secrets folder; berth.yaml `secrets_dir` otherwise. */
  secretsDir?: string;
  /** The host's age identity for `secrets/*.age` in the repo. */
  ageIdentity?: string;
  /** Where this host's env files go, instead of berth.yaml's env_dir. */
  envDir?: string;
  /** Longest a clone or fetch may take, in milliseconds. */
  gitTimeout?: number;
}

/** The flags as the library's source request. */
export function sourceFrom(flags: RepoFlags): SourceRequest {
  return {
    repo: flags.repo,
    env: flags.env,
    ref: flags.ref,
    cacheDir: flags.cacheDir ?? defaultCacheDir(),
    networkTimeoutMs: flags.gitTimeout,
  };
}

/** The flags as the library's host request. */
export function requestFrom(flags: RepoFlags & { adopt?: boolean; allowEmpty?: boolean }): HostRequest {
  return {
    source: sourceFrom(flags),
    overrides: { envDir: flags.envDir, secretsDir: flags.secretsDir, ageIdentity: flags.ageIdentity },
    adopt: flags.adopt,
    allowEmpty: flags.allowEmpty,
  };
}

/**
 * The host the flags and DOCKER_HOST name, as the pipeline opens it. The engine adapter and the
 * record's registry are loaded here, so commands that reach no engine never load them.
 */
export async function hostFrom(flags: RepoFlags & { store?: string; engineTimeout?: number }): Promise<Host> {
  const [{ localTarget, openHost }, { storeDir }] = await Promise.all([
    import('../host/target.js'),
    import('../store/registry.js'),
  ]);
  const target = localTarget(flags.host);
  if (flags.engineTimeout !== undefined) target.engineTimeoutMs = flags.engineTimeout;
  // Before host state moved into the engine, the digest key lived beside the record.
  const dir = storeDir(flags.store ?? defaultStorePath());
  if (dir) target.legacyKeyFile = path.join(dir, 'secret-digest.key');
  return openHost(target);
}

/** The repo's files at the ref the flags name (or the working tree). */
export function readFiles(flags: RepoFlags): Promise<RepoFiles> {
  return readStateRepo(sourceFrom(flags));
}

/** What the host the flags name should run, without asking any engine (for `render`). */
export async function loadDesired(
  flags: RepoFlags,
): Promise<{ desired: DesiredState; warnings: ConfigIssue[] }> {
  const { desiredFor, loadRepo } = await import('../host/desired.js');
  const loaded = await loadRepo(sourceFrom(flags));
  const request = requestFrom(flags);
  const desired = await desiredFor(loaded, flags.host, { env: flags.env, overrides: request.overrides });
  return { desired, warnings: loaded.warnings };
}

export function printWarnings(warnings: ConfigIssue[]): void {
  for (const w of warnings) process.stderr.write(formatIssue(w) + '\n');
}

/** The repo as the user named it, kept readable in the record (absolute for local paths). */
export function repoLabel(repo: string): string {
  return isLocalRepo(repo) ? path.resolve(repo) : repo;
}
