import { loadStateRepo, type LoadResult } from '../config/load.js';
import type { ConfigIssue } from '../model/errors.js';
import type { RepoFiles } from '../model/repo-files.js';
import { validateLoadBalancer } from '../providers/drain/registry.js';
import { validateInventory } from '../providers/inventory/registry.js';

/**
 * The repo loaded and checked, including the rules that need a plugin registry (load balancer
 * and inventory source settings), which the pure config layer cannot reach. A module of its own, so the commands that only
 * read and write git (set-image, promote, ...) check exactly what `validate` checks without
 * loading the secrets and engine code the host commands need.
 */
export function loadChecked(files: RepoFiles): LoadResult {
  const result = loadStateRepo(files);
  const settings = result.repo?.settings;
  if (!settings) return result;
  const pluginIssues: ConfigIssue[] = [
    ...(settings.loadBalancer ? validateLoadBalancer(settings.loadBalancer) : []),
    ...validateInventory(settings.inventory),
  ].map((i) => ({ file: 'berth.yaml', path: i.path, message: i.message, severity: 'error' }));
  if (!pluginIssues.length) return result;
  return { issues: [...result.issues, ...pluginIssues] };
}
