import { loadStateRepo, type LoadResult } from '../config/load.js';
import type { ConfigIssue } from '../model/errors.js';
import { validateLoadBalancer } from '../providers/drain/registry.js';
import type { RepoFiles } from '../source/read.js';

/**
 * The repo loaded and checked, including rules that need a plugin registry (load balancer
 * settings), which the pure config layer cannot reach. A module of its own so the commands that
 * only read and write git (set-image, promote, ...) check exactly what `validate` checks without
 * loading the secrets and engine code the host commands need.
 */
export function loadChecked(files: RepoFiles): LoadResult {
  const result = loadStateRepo(files);
  const lb = result.repo?.settings?.loadBalancer;
  if (!lb) return result;
  const lbIssues: ConfigIssue[] = validateLoadBalancer(lb).map((i) => ({
    file: 'berth.yaml',
    path: i.path,
    message: i.message,
    severity: 'error',
  }));
  if (!lbIssues.length) return result;
  return { issues: [...result.issues, ...lbIssues] };
}
