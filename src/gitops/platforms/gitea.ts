/**
 * Gitea (and Forgejo): the API v1's pulls endpoints.
 * List `GET /repos/{owner}/{repo}/pulls?state=open&page=&limit=` (paged; filtered here), create
 * `POST /repos/{owner}/{repo}/pulls`, update `PATCH /repos/{owner}/{repo}/pulls/{index}`.
 * Commit statuses: `POST /repos/{owner}/{repo}/statuses/{sha}` (state pending, success, failure).
 */
import { api, fromRepoPull, postCommitStatus, repoPath, type RepoPull } from './http.js';
import type { Platform, PlatformPlugin, PlatformSettings } from './types.js';

/** Pages of open pull requests read at most; a state repo with more open ones has other problems. */
const MAX_PAGES = 20;
const PAGE = 50;

function create(s: PlatformSettings): Platform {
  const repo = repoPath(s.project, 'gitea').path;
  const call = api(s, 'gitea', { authorization: `token ${s.token}` });
  const base = `${repo}/pulls`;
  return {
    name: 'gitea',
    setCommitStatus: (commit, st) => postCommitStatus(call, repo, commit, st),
    async findOpen(head, target) {
      for (let page = 1; page <= MAX_PAGES; page++) {
        const q = new URLSearchParams({ state: 'open', page: String(page), limit: String(PAGE) });
        const list = await call<RepoPull[]>('GET', `${base}?${q}`, 'list pull requests');
        const found = list.find((p) => p.head.ref === head && p.base.ref === target);
        if (found) return fromRepoPull(found);
        if (list.length < PAGE) return undefined;
      }
      return undefined;
    },
    async create(spec) {
      const p = await call<RepoPull>('POST', base, 'open a pull request', {
        head: spec.head,
        base: spec.base,
        title: spec.title,
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

export const giteaPlugin: PlatformPlugin = {
  name: 'gitea',
  tokenEnv: ['GITEA_TOKEN'],
  apiUrlEnv: ['GITEA_API_URL'],
  apiUrlFor: (host) => `https://${host}/api/v1`,
  create,
};
