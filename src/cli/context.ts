import path from 'node:path';
import { loadChecked } from './checked.js';
import { desiredForHost } from '../config/select.js';
import { withSecretDigests } from '../reconcile/secrets.js';
import { ageSecrets } from '../secrets/age.js';
import { chainSources } from '../secrets/chain.js';
import { fileSecrets } from '../secrets/files.js';
import type { SecretAnswer } from '../template/render.js';
import { parseTemplate, looksLikeTemplate } from '../template/parse.js';
import { templateSecrets } from '../template/check.js';
import { ConfigError, formatIssue, UsageError, type ConfigIssue } from '../model/errors.js';
import type { DesiredState, StateRepo } from '../model/service.js';
import { defaultCacheDir, readStateRepo, type RepoFiles } from '../source/read.js';

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
}

export interface LoadedRepo {
  repo: StateRepo;
  files: RepoFiles;
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

export { loadChecked } from './checked.js';

export async function loadRepo(flags: RepoFlags): Promise<LoadedRepo> {
  const files = await readFiles(flags);
  const result = loadChecked(files);
  const errors = result.issues.filter((i) => i.severity === 'error');
  if (errors.length || !result.repo) throw new ConfigError(errors);
  return { repo: result.repo, files, warnings: result.issues.filter((i) => i.severity === 'warning') };
}

/** Every secret any service's env names, so they can be fetched (async) before rendering (sync). */
function secretNames(repo: StateRepo): string[] {
  const names = new Set<string>();
  for (const s of repo.services) {
    for (const v of Object.values(s.env)) {
      if (!looksLikeTemplate(v)) continue;
      const parsed = parseTemplate(v);
      if (parsed.ok) templateSecrets(parsed.template).forEach((n) => names.add(n));
    }
  }
  return [...names].sort();
}

/**
 * What this host should run: the repo rendered for the host, secrets from the host's folder
 * first, then the repo's age files. A secret that cannot be had holds only its service.
 * With a digest key (read only when a service uses a secret), secret-bearing values get
 * their keyed digests for the planner.
 */
export async function loadDesired(
  flags: RepoFlags,
  opts: { digestKey?: () => Promise<Buffer> } = {},
): Promise<{ desired: DesiredState; warnings: ConfigIssue[] }> {
  const { repo, files, warnings } = await loadRepo(flags);
  const source = chainSources([
    fileSecrets(flags.secretsDir ?? repo.settings?.secretsDir),
    ageSecrets(files.files, flags.ageIdentity),
  ]);
  const answers = new Map<string, SecretAnswer>();
  for (const name of secretNames(repo)) {
    try {
      answers.set(name, await source.get(name));
    } catch (e) {
      answers.set(name, { error: (e as Error).message });
    }
  }
  const desired = desiredForHost(repo, flags.host, { env: flags.env, secret: (n) => answers.get(n) });
  if (flags.envDir) {
    if (!path.isAbsolute(flags.envDir))
      throw new UsageError(`--env-dir must be an absolute path, not "${flags.envDir}"`);
    desired.envDir = flags.envDir;
  }
  if (opts.digestKey && desired.services.some((s) => s.secretEnv)) {
    desired.services = withSecretDigests(desired.services, await opts.digestKey());
  }
  return { desired, warnings };
}

export function printWarnings(warnings: ConfigIssue[]): void {
  for (const w of warnings) process.stderr.write(formatIssue(w) + '\n');
}

/** The repo as the user named it, kept readable in the record (absolute for local paths). */
export function repoLabel(repo: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(repo) || /^[^/]+@[^:]+:/.test(repo) ? repo : path.resolve(repo);
}
