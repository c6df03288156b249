/**
 * GitLab (gitlab.com and self-managed): the REST API v4's merge requests endpoints.
 * List `GET /projects/{id}/merge_requests?state=opened&source_branch=&target_branch=`, create
 * `POST /projects/{id}/merge_requests`, update `PUT /projects/{id}/merge_requests/{iid}`; `{id}`
 * is the project's URL-encoded full path. Commit statuses: `POST /projects/{id}/statuses/{sha}`
 * with `name` as the context and the states pending, success, failed.
 */
import { api, postCommitStatus } from './http.js';
import type { Platform, PlatformPlugin, PlatformSettings, PullRequest } from './types.js';

interface GitLabMergeRequest {
  iid: number;
  web_url: string;
  title: string;
  source_branch: string;
  target_branch: string;
}

function toPull(m: GitLabMergeRequest): PullRequest {
  return { number: m.iid, url: m.web_url, title: m.title, head: m.source_branch, base: m.target_branch };
}

function create(s: PlatformSettings): Platform {
  const call = api(s, 'gitlab', { 'private-token': s.token });
  const project = `/projects/${encodeURIComponent(s.project)}`;
  const base = `${project}/merge_requests`;
  return {
    name: 'gitlab',
    setCommitStatus: (commit, st) =>
      postCommitStatus(call, project, commit, st, { context: 'name', failure: 'failed' }),
    async findOpen(head, target) {
      const q = new URLSearchParams({
        state: 'opened',
        source_branch: head,
        target_branch: target,
        per_page: '100',
      });
      const list = await call<GitLabMergeRequest[]>('GET', `${base}?${q}`, 'list merge requests');
      // Some GitLab versions ignore the branch filters; check them here.
      const found = list.find((m) => m.source_branch === head && m.target_branch === target);
      return found && toPull(found);
    },
    async create(spec) {
      const m = await call<GitLabMergeRequest>('POST', base, 'open a merge request', {
        source_branch: spec.head,
        target_branch: spec.base,
        title: spec.title,
        description: spec.body,
      });
      return toPull(m);
    },
    async update(number, change) {
      const m = await call<GitLabMergeRequest>(
        'PUT',
        `${base}/${number}`,
        `update merge request !${number}`,
        {
          title: change.title,
          description: change.body,
        },
      );
      return toPull(m);
    },
  };
}

export const gitlabPlugin: PlatformPlugin = {
  name: 'gitlab',
  tokenEnv: ['GITLAB_TOKEN'],
  apiUrlEnv: ['CI_API_V4_URL'],
  apiUrlFor: (host) => `https://${host}/api/v4`,
  create,
};
