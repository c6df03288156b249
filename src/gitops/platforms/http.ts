/**
 * What the platforms share: one JSON call with the token kept out of every message, the commit
 * status request, and the shapes of GitHub's API that Gitea's follows.
 */
import { httpRequest } from '../../adapters/http.js';
import { ExternalError, UsageError } from '../../model/errors.js';
import type { CommitStatus, PlatformSettings, PullRequest } from './types.js';

/** `owner/name` → its two parts; a UsageError naming --project otherwise. */
export function splitProject(project: string, platform: string): { owner: string; name: string } {
  const m = /^([^/\s]+)\/([^/\s]+)$/.exec(project);
  if (!m) throw new UsageError(`--project ${JSON.stringify(project)}: ${platform} wants owner/name`);
  return { owner: m[1]!, name: m[2]! };
}

/** The platform's own words from an error body: `message` (and GitHub's `errors[].message`). */
function complaint(body: string): string {
  try {
    const j = JSON.parse(body) as {
      message?: unknown;
      error?: unknown;
      errors?: Array<{ message?: string }>;
    };
    const parts = [j.message, j.error, ...(j.errors ?? []).map((e) => e.message)].filter(
      (x): x is string => typeof x === 'string' && x.length > 0,
    );
    if (parts.length) return parts.join('; ');
  } catch {
    // Not JSON: a proxy's HTML page, say.
  }
  return body.replace(/\s+/g, ' ').slice(0, 200) || 'no details';
}

/** One call of a platform's API, `what` saying what berth was doing; the answer's JSON. */
export type ApiCall = <T>(method: string, path: string, what: string, json?: unknown) => Promise<T>;

/** A JSON API client for one platform: `call(method, path, what, body?)`. */
export function api(s: PlatformSettings, system: string, headers: Record<string, string>): ApiCall {
  return async <T>(method: string, path: string, what: string, json?: unknown): Promise<T> => {
    const url = `${s.apiUrl}${path}`;
    const res = await httpRequest(url, {
      method,
      headers,
      ...(json !== undefined ? { json } : {}),
      timeoutMs: s.timeoutMs,
      system,
      what,
      secrets: [s.token],
    });
    const fail = (why: string) =>
      new ExternalError(
        system,
        `cannot ${what}: ${method} ${url} answered ${why}`.split(s.token).join('***'),
      );
    if (res.status < 200 || res.status > 299) {
      const hint =
        res.status === 401 || res.status === 403 ? ' (is the token valid and allowed to do this?)' : '';
      throw fail(`${res.status}: ${complaint(res.body)}${hint}`);
    }
    try {
      return JSON.parse(res.body) as T;
    } catch {
      throw fail(`${res.status} with a body that is not JSON`);
    }
  };
}

/** The most a commit status description may hold on every platform (GitHub's limit). */
export const STATUS_DESCRIPTION_MAX = 140;

/** A status description on one line, cut to fit. */
export function statusDescription(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > STATUS_DESCRIPTION_MAX ? `${line.slice(0, STATUS_DESCRIPTION_MAX - 1)}…` : line;
}

/** A full commit id, checked before it goes into a URL path. */
export function commitId(commit: string): string {
  if (!/^[0-9a-f]{40,64}$/.test(commit))
    throw new UsageError(`not a full commit id: ${JSON.stringify(commit)}`);
  return commit;
}

/**
 * Set a commit status: `POST {project}/statuses/{sha}` with the state, the context, the
 * description and the link on every platform; GitLab calls the context `name` and failure `failed`.
 */
export async function postCommitStatus(
  call: ApiCall,
  project: string,
  commit: string,
  st: CommitStatus,
  words: { context?: 'context' | 'name'; failure?: string } = {},
): Promise<void> {
  await call('POST', `${project}/statuses/${commitId(commit)}`, `set the commit status ${st.context}`, {
    state: st.state === 'failure' ? (words.failure ?? st.state) : st.state,
    [words.context ?? 'context']: st.context,
    description: statusDescription(st.description),
    ...(st.targetUrl ? { target_url: st.targetUrl } : {}),
  });
}

/** How GitHub and Gitea address `owner/name`: its owner, and its API path `/repos/{owner}/{name}`. */
export function repoPath(project: string, platform: string): { owner: string; path: string } {
  const { owner, name } = splitProject(project, platform);
  return { owner, path: `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(name)}` };
}

/** A pull request as GitHub's API shows it, and Gitea's, which follows GitHub's. */
export interface RepoPull {
  number: number;
  html_url: string;
  title: string;
  head: { ref: string };
  base: { ref: string };
}

export function fromRepoPull(p: RepoPull): PullRequest {
  return { number: p.number, url: p.html_url, title: p.title, head: p.head.ref, base: p.base.ref };
}
