/**
 * berth.yaml `agent`: how `berth agent` reports what it did with each new commit. Tokens and
 * secret URLs are never written here: the repo names the environment variable that holds them.
 */
export interface AgentSettings {
  /** A commit status `berth/<host>` on the git hosting platform, for each new commit. */
  commitStatus?: CommitStatusSettings;
  /** JSON POSTs (a Slack-compatible `text` field and the details) after each new commit. */
  notify: NotifySettings[];
}

/** Where commit statuses go; the token comes from the platform's usual variable or `tokenEnv`. */
export interface CommitStatusSettings {
  /** A git platform plugin: github, gitlab, gitea. */
  platform: string;
  /** `owner/name` (GitLab: the full path); default: from the repo's URL. */
  project?: string;
  /** The platform's API root; default: from the platform's variable or the repo's host. */
  apiUrl?: string;
  /** The variable that holds the token, instead of the platform's usual ones. */
  tokenEnv?: string;
  /** A link each status carries (a dashboard), if any. */
  targetUrl?: string;
}

/** Which outcomes a notifier is told of. */
export type NotifyEvent = 'success' | 'failure';

export interface NotifySettings {
  /** The URL to POST to, when it is not a secret. */
  url?: string;
  /** The variable holding the URL, when the URL itself is a secret (a Slack webhook). */
  urlEnv?: string;
  /** Outcomes that are sent (default: both). */
  on: NotifyEvent[];
}
