/**
 * The deployment record: what each apply did on which host, kept so `berth history` can answer
 * "what ran where, and when" long after the containers are gone.
 *
 * Every method returns a Promise even where SQLite answers synchronously, so a networked store
 * (PostgreSQL for a fleet) fits the same interface. Timestamps come from the caller as ISO 8601
 * strings: the clock lives at the edge, so the store never reads it and tests stay exact.
 */

/**
 * How an apply ended; `running` means it started and has not finished (or its process died);
 * `cancelled` means it was asked to stop (SIGINT, SIGTERM) and did so at a safe point.
 */
export type ApplyResult = 'running' | 'succeeded' | 'failed' | 'cancelled';

/** How one action ended; `running` means it started and its process died before it finished. */
export type ActionResult = 'running' | 'succeeded' | 'failed';

/** One `berth apply` (or one host's part of a `deploy`) against one state commit. */
export interface ApplyRecord {
  id: number;
  /** Inventory name of the host; absent when berth ran without `--host`. */
  host?: string;
  /** The state repo commit that was applied. */
  stateCommit?: string;
  /** The branch or ref that was read, e.g. `production`. */
  ref: string;
  /** The state repo as the user named it. */
  repo: string;
  startedAt: string;
  finishedAt?: string;
  result: ApplyResult;
  /** Why it failed, in one line for people. */
  message?: string;
}

/** One step of an apply: a pull, or an operation of the plan (`create`, `recreate`, `remove`, ...). */
export interface ActionRecord {
  id: number;
  applyId: number;
  /**
   * The service acted on. A pull shared by several services records their names joined by
   * commas; `history({ service })` finds it under each of them.
   */
  service: string;
  /** An operation kind from the plan, or `pull`. */
  action: string;
  /** Why the plan holds this action, as `berth plan` printed it. */
  cause: string;
  fromImage?: string;
  toImage?: string;
  fromDigest?: string;
  toDigest?: string;
  /** CI metadata of the service at the time (from its service file). */
  gitCommit?: string;
  buildNumber?: string;
  stateCommit?: string;
  host?: string;
  result: ActionResult;
  message?: string;
  startedAt: string;
  finishedAt?: string;
  /** finishedAt − startedAt, kept so reports need not parse timestamps. */
  durationMs?: number;
}

/** What is known when an apply starts. */
export type BeginApply = Pick<ApplyRecord, 'host' | 'stateCommit' | 'ref' | 'repo' | 'startedAt'>;

/** How an apply ended. */
export interface FinishApply {
  result: Exclude<ApplyResult, 'running'>;
  message?: string;
  finishedAt: string;
}

/** What is known when an action starts. */
export type BeginAction = Omit<ActionRecord, 'id' | 'applyId' | 'result' | 'finishedAt' | 'durationMs'>;

/** How an action ended; `toDigest` is often only known after the pull or create. */
export interface FinishAction {
  result: Exclude<ActionResult, 'running'>;
  message?: string;
  finishedAt: string;
  toDigest?: string;
}

/** One line of `berth history`: an action with the apply it belonged to. */
export type HistoryRow = ActionRecord & Pick<ApplyRecord, 'ref' | 'repo'>;

/** Filters for `history`; all optional, combined with AND. */
export interface HistoryQuery {
  service?: string;
  host?: string;
  /** Newest N rows; default {@link DEFAULT_LIMIT}. */
  limit?: number;
}

/** How many rows a query returns when the caller does not say. */
export const DEFAULT_LIMIT = 100;

/** A deployment record. One contract suite (contract.test.ts) holds every implementation to it. */
export interface Store {
  /** Record that an apply started; returns its id. */
  beginApply(a: BeginApply): Promise<number>;
  /** Record how an apply ended. An unknown id is a bug and rejects. */
  finishApply(id: number, r: FinishApply): Promise<void>;
  /** Record that an action of an apply started; returns its id. */
  beginAction(applyId: number, a: BeginAction): Promise<number>;
  /** Record how an action ended, with its duration. An unknown id is a bug and rejects. */
  finishAction(id: number, r: FinishAction): Promise<void>;
  /** Actions, newest first (by start time, then by insertion). */
  history(q?: HistoryQuery): Promise<HistoryRow[]>;
  /** Applies, newest first. */
  applies(q?: { limit?: number }): Promise<ApplyRecord[]>;
  /** Release the connection; later calls reject. */
  close(): Promise<void>;
}
