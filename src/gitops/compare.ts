/** `berth diff`: read two environments at their branch heads and compare them. */
import { UsageError } from '../model/errors.js';
import { diffRepos, type ServiceDiff, type Side } from './diff.js';
import { envLabel, loadOrThrow, resolveEnv, type LoadRepo } from './repo.js';
import type { Workspace } from './workspace.js';

export interface Comparison {
  from: Side;
  to: Side;
  services: ServiceDiff[];
  same: string[];
}

/** Compare `from` (the source) with `to` (default: its `promote_to`). */
export async function compareEnvironments(
  ws: Workspace,
  from: string,
  to: string | undefined,
  load: LoadRepo,
): Promise<Comparison> {
  const a = await resolveEnv(ws, from);
  const aFiles = a.files ?? (await ws.read(a.branch));
  const aRepo = loadOrThrow(aFiles, load);
  const toName = to ?? aRepo.settings?.environments[from]?.promoteTo;
  if (!toName) {
    throw new UsageError(
      `diff --from ${from}: no --to, and berth.yaml on ${envLabel(a)} declares no environments.${from}.promote_to`,
    );
  }
  // Reading `from` fetched every branch; `to` comes from the cache.
  const b = await resolveEnv(ws, toName, aRepo, { fetch: false });
  const bFiles = b.files ?? (await ws.read(b.branch, { fetch: false }));
  const bRepo = loadOrThrow(bFiles, load);
  const d = diffRepos(bRepo, aRepo);
  return {
    from: { env: from, branch: a.branch, commit: aFiles.commit },
    to: { env: toName, branch: b.branch, commit: bFiles.commit },
    ...d,
  };
}
