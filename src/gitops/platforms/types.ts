/**
 * The git hosting platform plugin family: where `berth promote --pr` opens or updates its pull
 * request. One interface (here), one registry (registry.ts), one contract suite (contract.ts)
 * that every platform passes against a local server speaking that platform's documented API.
 */

/** An open pull request (GitLab: merge request) as berth needs to know it. */
export interface PullRequest {
  /** The number people use: GitHub and Gitea `number`, GitLab `iid`. */
  number: number;
  /** The page people open. */
  url: string;
  title: string;
  /** Source branch. */
  head: string;
  /** Target branch. */
  base: string;
}

/** What a pull request should say. */
export interface PullRequestSpec {
  head: string;
  base: string;
  title: string;
  /** Markdown. */
  body: string;
}

export interface Platform {
  readonly name: string;
  /** The open pull request from `head` into `base`, if there is one. */
  findOpen(head: string, base: string): Promise<PullRequest | undefined>;
  create(spec: PullRequestSpec): Promise<PullRequest>;
  /** Replace the title and body of an open pull request. */
  update(number: number, change: { title: string; body: string }): Promise<PullRequest>;
}

/** How to reach one project on one platform. */
export interface PlatformSettings {
  /** API root, no trailing slash: `https://api.github.com`, `https://gitlab.example.com/api/v4`. */
  apiUrl: string;
  /** Never printed, never part of an error message. */
  token: string;
  /** `owner/name` (GitLab: the full path, groups included). */
  project: string;
  /** Deadline of each request. */
  timeoutMs: number;
}

/** What the registry knows of one platform. */
export interface PlatformPlugin {
  name: string;
  /** Environment variables that may hold the token, first set wins. */
  tokenEnv: readonly string[];
  /** Environment variables that may hold the API root (CI systems set some of these). */
  apiUrlEnv: readonly string[];
  /** The API root for a repo hosted at `host` (`github.com`, `gitlab.example.com`). */
  apiUrlFor(host: string): string;
  create(settings: PlatformSettings): Platform;
}
