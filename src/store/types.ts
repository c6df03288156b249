import { ExternalError } from '../model/errors.js';
import type { LeaseBackend } from './leases.js';

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
  /**
   * Shared by the applies of one deploy across hosts (`berth deploy`, or `--deploy-id` for
   * applies that a script runs host by host), so history shows them as one entry. Absent for
   * an apply on its own.
   */
  deployId?: string;
  /** The environment that was applied (`staging`), when berth knew it. */
  env?: string;
  /** Who or what applied it: `berth apply`, `berth agent`, `berth deploy`. */
  command?: string;
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
export type BeginApply = Pick<
  ApplyRecord,
  'host' | 'stateCommit' | 'ref' | 'repo' | 'startedAt' | 'deployId' | 'env' | 'command'
> & {
  /**
   * Idempotency key: a second `beginApply` with the same key returns the first one's id and
   * writes nothing, so an outcome replayed from the spool after an outage is never doubled.
   */
  key?: string;
};

/** How an apply ended. */
export interface FinishApply {
  result: Exclude<ApplyResult, 'running'>;
  message?: string;
  finishedAt: string;
}

/** What is known when an action starts. */
export type BeginAction = Omit<ActionRecord, 'id' | 'applyId' | 'result' | 'finishedAt' | 'durationMs'> & {
  /** Idempotency key, as for {@link BeginApply}: the same key returns the same action's id. */
  key?: string;
};

/** How an action ended; `toDigest` is often only known after the pull or create. */
export interface FinishAction {
  result: Exclude<ActionResult, 'running'>;
  message?: string;
  finishedAt: string;
  toDigest?: string;
}

/** One line of `berth history --steps`: an action with the apply it belonged to. */
export type HistoryRow = ActionRecord &
  Pick<ApplyRecord, 'ref' | 'repo'> &
  Partial<Pick<ApplyRecord, 'deployId' | 'env' | 'command'>>;

/** Filters for `history`, `applies` and `deploys`; all optional, combined with AND. */
export interface HistoryQuery {
  /** A service: its actions (a shared pull under each of its services), or applies that acted on it. */
  service?: string;
  host?: string;
  /** The environment recorded with the apply. */
  env?: string;
  /** A prefix of the state commit or of a service's gitCommit (any case). */
  commit?: string;
  /**
   * How it ended: the action's result for `history`, the apply's for `applies` and `deploys`.
   */
  result?: ApplyResult;
  /** Started at or after this instant (ISO 8601). */
  since?: string;
  /** Started at or before this instant (ISO 8601). */
  until?: string;
  /** Only the applies of this deploy. */
  deployId?: string;
  /** Newest N rows (for `deploys`: entries); default {@link DEFAULT_LIMIT}. */
  limit?: number;
}

/** One host's part of a history entry: its apply and the steps it took, in order. */
export interface HostApply extends ApplyRecord {
  steps: ActionRecord[];
}

/**
 * One entry of the fleet history: a deploy across hosts (the applies sharing a `deployId`), or
 * one apply on its own. Fields shared by every host's apply are lifted to the entry.
 */
export interface DeployEntry {
  deployId?: string;
  env?: string;
  stateCommit?: string;
  ref?: string;
  command?: string;
  /** The first host's start. */
  startedAt: string;
  /** The last host's finish, once every host has finished. */
  finishedAt?: string;
  /** The worst of the hosts' results: failed, then cancelled, then running, then succeeded. */
  result: ApplyResult;
  /** The hosts, in the order they started. */
  hosts: HostApply[];
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
  applies(q?: HistoryQuery): Promise<ApplyRecord[]>;
  /**
   * The newest entries (deploys, or applies on their own), newest first, each with the hosts'
   * applies that match the filters and all of their steps.
   */
  deploys(q?: HistoryQuery): Promise<DeployEntry[]>;
  /** Host leases for rotation, kept in the same database (see leases.ts). */
  readonly leases?: LeaseBackend;
  /** Release the connection; later calls reject. */
  close(): Promise<void>;
}

/**
 * The store could not be reached (refused, timed out, the server shutting down): an outage,
 * not a mistake. An apply keeps its outcome in the local spool and goes on; bad input (a wrong
 * password, a database newer than berth) is a plain ExternalError and stops berth instead.
 */
export class StoreUnavailableError extends ExternalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('store', message, options);
    this.name = 'StoreUnavailableError';
  }
}
