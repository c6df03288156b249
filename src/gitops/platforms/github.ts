/**
 * GitHub and GitHub Enterprise Server: the REST API's pulls endpoints.
 * List `GET /repos/{owner}/{repo}/pulls?state=open&head={owner}:{branch}&base={base}`, create
 * `POST /repos/{owner}/{repo}/pulls`, update `PATCH /repos/{owner}/{repo}/pulls/{number}`.
 */
import { api, splitProject } from './http.js';
import type { Platform, PlatformPlugin, PlatformSettings, PullRequest } from './types.js';

interface GitHubPull {
  number: number;
  html_url: string;
  title: string;
  head: { ref: string };
  base: { ref: string };
}

function toPull(p: GitHubPull): PullRequest {
  return { number: p.number, url: p.html_url, title: p.title, head: p.head.ref, base: p.base.ref };
}

function create(s: PlatformSettings): Platform {
  const { owner, name } = splitProject(s.project, 'github');
  const call = api(s, 'github', {
    authorization: `Bearer ${s.token}`,
    accept: 'application/vnd.github+json',
    'x-github-api-version': '2022-11-28',
  });
  const base = `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(name)}/pulls`;
  return {
    name: 'github',
    async findOpen(head, target) {
      const q = new URLSearchParams({
        state: 'open',
        head: `${owner}:${head}`,
        base: target,
        per_page: '100',
      });
      const list = await call<GitHubPull[]>('GET', `${base}?${q}`, 'list pull requests');
      const found = list.find((p) => p.head.ref === head && p.base.ref === target);
      return found && toPull(found);
    },
    async create(spec) {
      const p = await call<GitHubPull>('POST', base, 'open a pull request', {
        title: spec.title,
        head: spec.head,
        base: spec.base,
        body: spec.body,
      });
      return toPull(p);
    },
    async update(number, change) {
      const p = await call<GitHubPull>(
        'PATCH',
        `${base}/${number}`,
        `update pull request #${number}`,
        change,
      );
      return toPull(p);
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
