/**
 * The state repo as the CI commands see it: loaded and checked by the one loader every command
 * uses, environments resolved to branches, services found by name.
 */
import { loadStateRepo, type LoadResult } from '../config/load.js';
import { suggest } from '../config/issues.js';
import { ConfigError, UsageError } from '../model/errors.js';
import type { ServiceSpec, StateRepo } from '../model/service.js';
import type { RepoFiles } from '../source/read.js';
import type { BranchFiles, Workspace } from './workspace.js';

/**
 * Loads and checks a state repo. The CLI passes its own (which adds the rules that need plugin
 * registries), so the CI commands refuse exactly what `berth validate` refuses.
 */
export type LoadRepo = (files: RepoFiles) => LoadResult;

/** The repo's model; a ConfigError listing every problem (file:line:col) when it has any error. */
export function loadOrThrow(files: RepoFiles, load: LoadRepo): StateRepo {
  const result = load(files);
  const errors = result.issues.filter((i) => i.severity === 'error');
  if (errors.length || !result.repo) throw new ConfigError(errors);
  return result.repo;
}

/** The service named `name`; a UsageError listing the services (and the likely one) otherwise. */
export function findService(repo: StateRepo, name: string, where: string): ServiceSpec {
  const s = repo.services.find((x) => x.name === name);
  if (s) return s;
  const names = repo.services.map((x) => x.name);
  const hint = suggest(name, names);
  throw new UsageError(
    `no service ${JSON.stringify(name)} on ${where}${hint ? ` (did you mean "${hint}"?)` : ''}; ` +
      `services: ${names.length ? names.join(', ') : 'none'}`,
  );
}

/** An environment's branch, and the branch's files when reading it was how we found out. */
export interface EnvBranch {
  env: string;
  branch: string;
  files?: BranchFiles;
}

/**
 * The branch of environment `env`: the branch of that name when it exists, else the one
 * berth.yaml's `environments.<env>.branch` names (read from `hint`, or from the default branch).
 */
export async function resolveEnv(
  ws: Workspace,
  env: string,
  hint?: StateRepo,
  opts: { fetch?: boolean } = {},
): Promise<EnvBranch> {
  const declared = hint?.settings?.environments[env]?.branch;
  if (declared !== undefined && declared !== env) return { env, branch: declared };
  try {
    return { env, branch: env, files: await ws.read(env, opts) };
  } catch (e) {
    // The cached clone may not know a new branch yet: only the remote can say it does not exist.
    if (opts.fetch === false) return resolveEnv(ws, env, hint);
    if (!(e instanceof UsageError) || !/does not exist/.test(e.message)) throw e;
    const head = hint ? undefined : await ws.readDefault().catch(() => undefined);
    const berth = head?.files.get('berth.yaml');
    if (berth !== undefined) {
      const settings = loadStateRepo({ files: new Map([['berth.yaml', berth]]), ref: head!.ref }).repo
        ?.settings;
      const branch = settings?.environments[env]?.branch;
      if (branch !== undefined && branch !== env) return { env, branch };
    }
    throw e;
  }
}

/** `staging (stage)` when an environment's branch has another name, else just the name. */
export function envLabel(e: { env: string; branch: string }): string {
  return e.env === e.branch ? e.env : `${e.env} (branch ${e.branch})`;
}
