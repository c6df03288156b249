import path from 'node:path';
import { desiredForHost } from '../config/select.js';
import { envAndFilesDirProblem, envDirProblem, filesDirProblem } from '../config/schema-parts.js';
import { DEFAULT_FILES_DIR } from '../model/files.js';
import { usesSecret } from '../reconcile/secrets.js';
import { ConfigError, UsageError, type ConfigIssue } from '../model/errors.js';
import type { DesiredState, StateRepo } from '../model/service.js';
import { getInventorySource } from '../providers/inventory/registry.js';
import { loadChecked } from './checked.js';

export { loadChecked };
import { withSecretDigests } from '../reconcile/secrets.js';
import { ageSecrets } from '../secrets/age.js';
import { chainSources } from '../secrets/chain.js';
import { fileSecrets } from '../secrets/files.js';
import type { PrivateFiles } from '../secrets/private.js';
import { readStateRepo, type RepoFiles } from '../source/read.js';
import { templateSecrets } from '../template/check.js';
import { looksLikeTemplate, parseTemplate } from '../template/parse.js';
import type { SecretAnswer } from '../template/render.js';

/** Where the state repo is and what to read of it. */
export interface SourceRequest {
  /** A local path or any git URL. */
  repo: string;
  /** Environment = branch. Excludes `ref`. */
  env?: string;
  /** Any commit-ish. Excludes `env`. */
  ref?: string;
  /** Where cached clones of remote repos live. */
  cacheDir: string;
  /** Longest a clone or fetch may take (default: the git adapter's). */
  networkTimeoutMs?: number;
}

/** What the person or the caller says about this host, over what the repo says. */
export interface HostOverrides {
  /** Where this host's env files go, instead of berth.yaml's env_dir (absolute). */
  envDir?: string;
  /** Where this host's rendered files (`files:`) go, instead of berth.yaml's files_dir (absolute). */
  filesDir?: string;
  /** The host's secrets folder, instead of berth.yaml's secrets_dir. */
  secretsDir?: string;
  /** The host's age identity for `secrets/*.age` in the repo. */
  ageIdentity?: string;
}

export interface LoadedRepo {
  repo: StateRepo;
  files: RepoFiles;
  warnings: ConfigIssue[];
}

/** Read the repo at the source's ref and check it; any error stops here, before a host is asked. */
export async function loadRepo(source: SourceRequest, signal?: AbortSignal): Promise<LoadedRepo> {
  const files = await readStateRepo(source);
  const result = loadChecked(files);
  const errors = result.issues.filter((i) => i.severity === 'error');
  if (errors.length || !result.repo) throw new ConfigError(errors);
  const repo = result.repo;
  // The hosts come from the inventory source berth.yaml names; one that cannot be read stops
  // berth here: never "no inventory", which would run every service everywhere.
  const inventory = await getInventorySource(repo.settings?.inventory).load({
    settings: sourceSettings(repo.settings?.inventory),
    file: repo.inventory,
    signal,
  });
  const withInventory: StateRepo = { ...repo };
  if (inventory.hosts.length || repo.inventory) withInventory.inventory = inventory;
  return { repo: withInventory, files, warnings: result.issues.filter((i) => i.severity === 'warning') };
}

function sourceSettings(block: Record<string, unknown> | undefined): Record<string, unknown> {
  const { source: _source, ...rest } = block ?? {};
  return rest;
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
 * What one host should run: the repo rendered for the host, secrets from the host's folder
 * first, then the repo's age files. A secret that cannot be had holds only its service. With a
 * digest key (asked for only when a service uses a secret), secret-bearing values get their
 * keyed digests for the planner.
 */
export async function desiredFor(
  loaded: LoadedRepo,
  host: string | undefined,
  opts: {
    env?: string;
    overrides?: HostOverrides;
    digestKey?: () => Promise<Buffer>;
    /** Where the host's secrets and age identity are read (default: this machine). */
    privateFiles?: PrivateFiles;
  } = {},
): Promise<DesiredState> {
  const { repo, files } = loaded;
  const o = opts.overrides ?? {};
  const source = chainSources([
    fileSecrets(o.secretsDir ?? repo.settings?.secretsDir, opts.privateFiles),
    ageSecrets(files.files, o.ageIdentity, opts.privateFiles),
  ]);
  const answers = new Map<string, SecretAnswer>();
  for (const name of secretNames(repo)) {
    try {
      answers.set(name, await source.get(name));
    } catch (e) {
      answers.set(name, { error: (e as Error).message });
    }
  }
  if (o.envDir) {
    if (!path.isAbsolute(o.envDir))
      throw new UsageError(`--env-dir must be an absolute path, not "${o.envDir}"`);
    const problem = envDirProblem(o.envDir);
    if (problem) throw new UsageError(`--env-dir: ${problem}`);
  }
  if (o.filesDir) {
    if (!path.isAbsolute(o.filesDir))
      throw new UsageError(`--files-dir must be an absolute path, not "${o.filesDir}"`);
    const problem = filesDirProblem(o.filesDir);
    if (problem) throw new UsageError(`--files-dir: ${problem}`);
  }
  if (o.envDir || o.filesDir) {
    const problem = envAndFilesDirProblem(
      o.envDir ?? repo.envDir,
      o.filesDir ?? repo.filesDir ?? DEFAULT_FILES_DIR,
    );
    if (problem) throw new UsageError(`${o.filesDir ? '--files-dir' : '--env-dir'}: ${problem}`);
  }
  const desired = desiredForHost(repo, host, {
    env: opts.env,
    secret: (n) => answers.get(n),
    filesDir: o.filesDir,
  });
  if (o.envDir) desired.envDir = o.envDir;
  if (opts.digestKey && desired.services.some(usesSecret)) {
    desired.services = withSecretDigests(desired.services, await opts.digestKey());
  }
  return desired;
}
