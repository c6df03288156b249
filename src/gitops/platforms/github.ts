/**
 * GitHub and GitHub Enterprise Server: the REST API's pulls endpoints.
 * List `GET /repos/{owner}/{repo}/pulls?state=open&head={owner}:{branch}&base={base}`, create
 * `POST /repos/{owner}/{repo}/pulls`, update `PATCH /repos/{owner}/{repo}/pulls/{number}`.
 * Commit statuses: `POST /repos/{owner}/{repo}/statuses/{sha}` (state pending, success, failure).
 */
import { api, fromRepoPull, postCommitStatus, repoPath, type RepoPull } from './http.js';
import type { Platform, PlatformPlugin, PlatformSettings } from './types.js';

function create(s: PlatformSettings): Platform {
  const { owner, path: repo } = repoPath(s.project, 'github');
  const call = api(s, 'github', {
    authorization: `Bearer ${s.token}`,
    accept: 'application/vnd.github+json',
    'x-github-api-version': '2022-11-28',
  });
  const base = `${repo}/pulls`;
  return {
    name: 'github',
    setCommitStatus: (commit, st) => postCommitStatus(call, repo, commit, st),
    async findOpen(head, target) {
      const q = new URLSearchParams({
        state: 'open',
        head: `${owner}:${head}`,
        base: target,
        per_page: '100',
      });
      const list = await call<RepoPull[]>('GET', `${base}?${q}`, 'list pull requests');
      const found = list.find((p) => p.head.ref === head && p.base.ref === target);
      return found && fromRepoPull(found);
    },
    async create(spec) {
      const p = await call<RepoPull>('POST', base, 'open a pull request', {
        title: spec.title,
        head: spec.head,
        base: spec.base,
        body: spec.body,
      });
      return fromRepoPull(p);
    },
    async update(number, change) {
      const p = await call<RepoPull>('PATCH', `${base}/${number}`, `update pull request #${number}`, change);
      return fromRepoPull(p);
    },
  };
}

export const githubPlugin: PlatformPlugin = {
  name: 'github',
  tokenEnv: ['GITHUB_TOKEN', 'GH_TOKEN'],
  apiUrlEnv: ['GITHUB_API_URL'],
  apiUrlFor: (host) => (host === 'github.com' ? 'https://api.github.com' : `https://${host}/api/v3`),
  create,
};
