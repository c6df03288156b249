/**
 * Gitea (and Forgejo): the API v1's pulls endpoints.
 * List `GET /repos/{owner}/{repo}/pulls?state=open&page=&limit=` (paged; filtered here), create
 * `POST /repos/{owner}/{repo}/pulls`, update `PATCH /repos/{owner}/{repo}/pulls/{index}`.
 */
import { api, splitProject } from './http.js';
import type { Platform, PlatformPlugin, PlatformSettings, PullRequest } from './types.js';

interface GiteaPull {
  number: number;
  html_url: string;
  title: string;
  head: { ref: string };
  base: { ref: string };
}

function toPull(p: GiteaPull): PullRequest {
  return { number: p.number, url: p.html_url, title: p.title, head: p.head.ref, base: p.base.ref };
}

/** Pages of open pull requests read at most; a state repo with more open ones has other problems. */
const MAX_PAGES = 20;
const PAGE = 50;

function create(s: PlatformSettings): Platform {
  const { owner, name } = splitProject(s.project, 'gitea');
  const call = api(s, 'gitea', { authorization: `token ${s.token}` });
  const base = `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(name)}/pulls`;
  return {
    name: 'gitea',
    async findOpen(head, target) {
      for (let page = 1; page <= MAX_PAGES; page++) {
        const q = new URLSearchParams({ state: 'open', page: String(page), limit: String(PAGE) });
        const list = await call<GiteaPull[]>('GET', `${base}?${q}`, 'list pull requests');
        const found = list.find((p) => p.head.ref === head && p.base.ref === target);
        if (found) return toPull(found);
        if (list.length < PAGE) return undefined;
      }
      return undefined;
    },
    async create(spec) {
      const p = await call<GiteaPull>('POST', base, 'open a pull request', {
        head: spec.head,
        base: spec.base,
        title: spec.title,
        body: spec.body,
      });
      return toPull(p);
    },
    async update(number, change) {
      const p = await call<GiteaPull>('PATCH', `${base}/${number}`, `update pull request #${number}`, change);
      return toPull(p);
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
