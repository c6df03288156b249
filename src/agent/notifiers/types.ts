/**
 * The notifier plugin family: where the agent reports what it did with a new commit. A commit
 * status on the git platform (`commit-status.ts`, through the platform plugins of src/gitops)
 * and a JSON POST to a URL (`webhook.ts`). A notifier that fails is logged and counted; it
 * never fails, delays beyond its deadline, or retries a deploy.
 */

/** What happened to one commit on one host. */
export type ReportState = 'pending' | 'success' | 'failure';

export interface Report {
  state: ReportState;
  /** The state commit (full id). */
  commit: string;
  /** The host's inventory name, or the machine's name for a repo without an inventory. */
  host: string;
  env: string;
  /** The state repo, credentials removed. */
  repo: string;
  /** One line for people: `applied: 1 to recreate; 2 unchanged`, or why it failed. */
  description: string;
}

export interface Notifier {
  /** For logs and metrics: `github`, `webhook`. Never holds a URL or token. */
  readonly name: string;
  /** Which states this notifier is told of. */
  wants(state: ReportState): boolean;
  /** Send one report; throws an Error whose message names no secret. */
  send(report: Report, signal: AbortSignal): Promise<void>;
}

/** How long one notifier may take; a slow chat server never holds the agent up for longer. */
export const NOTIFY_TIMEOUT_MS = 10_000;
