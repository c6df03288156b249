import { UsageError } from '../model/errors.js';
import {
  DEFAULT_LIMIT,
  type ActionRecord,
  type ApplyRecord,
  type ApplyResult,
  type DeployEntry,
  type HistoryQuery,
  type HostApply,
} from './types.js';

/**
 * The history filters as SQL, written once for both stores: the text is plain enough for SQLite
 * and PostgreSQL alike (`||`, `LIKE … ESCAPE`, `lower`, `COALESCE`), with `?` placeholders that
 * the PostgreSQL store numbers. Values are always bound, never pasted into the text.
 */

/** Table names: SQLite keeps them in its own file, PostgreSQL in the `berth` schema. */
export interface Tables {
  applies: string;
  actions: string;
}

export interface Where {
  sql: string;
  params: Array<string | number>;
}

const RESULTS: readonly ApplyResult[] = ['running', 'succeeded', 'failed', 'cancelled'];

/** Canonical UTC ISO form, so text order is time order whatever offset the caller wrote. */
export function iso(value: string, field: string): string {
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new Error(`store: ${field} is not an ISO timestamp: ${JSON.stringify(value)}`);
  return new Date(t).toISOString();
}

export function limit(value: number | undefined): number {
  if (value === undefined) return DEFAULT_LIMIT;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`the number of records to show must be a whole number above 0, not ${value}`);
  }
  return value;
}

/** A LIKE pattern that matches `text` literally (`_` and `%` are legal in names and commits). */
function literal(text: string): string {
  return text.replace(/[\\%_]/g, '\\$&');
}

function checked(q: HistoryQuery): HistoryQuery {
  if (q.result !== undefined && !RESULTS.includes(q.result)) {
    throw new UsageError(`result must be one of ${RESULTS.join(', ')}, not ${JSON.stringify(q.result)}`);
  }
  if (q.commit !== undefined && !/^[0-9a-zA-Z._-]+$/.test(q.commit)) {
    throw new UsageError(`commit ${JSON.stringify(q.commit)} is not a commit or a prefix of one`);
  }
  return q;
}

/** `a.service` names `service`, alone or in a shared pull's comma-joined list. */
function serviceMatch(column: string, service: string, params: Array<string | number>): string {
  params.push(service, `%,${literal(service)},%`);
  return `(${column} = ? OR (',' || ${column} || ',') LIKE ? ESCAPE '\\')`;
}

/** Filters over actions `a` joined to their applies `p`: the rows of `history`. */
export function actionWhere(q: HistoryQuery): Where {
  checked(q);
  const clauses: string[] = [];
  const params: Array<string | number> = [];
  if (q.service !== undefined) clauses.push(serviceMatch('a.service', q.service, params));
  if (q.host !== undefined) {
    clauses.push('a.host = ?');
    params.push(q.host);
  }
  if (q.env !== undefined) {
    clauses.push('p.env = ?');
    params.push(q.env);
  }
  if (q.commit !== undefined) {
    clauses.push(`(lower(a.state_commit) LIKE ? ESCAPE '\\' OR lower(a.git_commit) LIKE ? ESCAPE '\\')`);
    const pattern = `${literal(q.commit.toLowerCase())}%`;
    params.push(pattern, pattern);
  }
  if (q.result !== undefined) {
    clauses.push('a.result = ?');
    params.push(q.result);
  }
  if (q.since !== undefined) {
    clauses.push('a.started_at >= ?');
    params.push(iso(q.since, 'since'));
  }
  if (q.until !== undefined) {
    clauses.push('a.started_at <= ?');
    params.push(iso(q.until, 'until'));
  }
  if (q.deployId !== undefined) {
    clauses.push('p.deploy_id = ?');
    params.push(q.deployId);
  }
  return { sql: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', params };
}

/** Filters over applies `p`: a service or a gitCommit matches when one of its actions does. */
export function applyWhere(q: HistoryQuery, t: Tables): Where {
  checked(q);
  const clauses: string[] = [];
  const params: Array<string | number> = [];
  if (q.service !== undefined) {
    const params2: Array<string | number> = [];
    const match = serviceMatch('a.service', q.service, params2);
    clauses.push(`EXISTS (SELECT 1 FROM ${t.actions} a WHERE a.apply_id = p.id AND ${match})`);
    params.push(...params2);
  }
  if (q.host !== undefined) {
    clauses.push('p.host = ?');
    params.push(q.host);
  }
  if (q.env !== undefined) {
    clauses.push('p.env = ?');
    params.push(q.env);
  }
  if (q.commit !== undefined) {
    const pattern = `${literal(q.commit.toLowerCase())}%`;
    clauses.push(
      `(lower(p.state_commit) LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM ${t.actions} a ` +
        `WHERE a.apply_id = p.id AND lower(a.git_commit) LIKE ? ESCAPE '\\'))`,
    );
    params.push(pattern, pattern);
  }
  if (q.result !== undefined) {
    clauses.push('p.result = ?');
    params.push(q.result);
  }
  if (q.since !== undefined) {
    clauses.push('p.started_at >= ?');
    params.push(iso(q.since, 'since'));
  }
  if (q.until !== undefined) {
    clauses.push('p.started_at <= ?');
    params.push(iso(q.until, 'until'));
  }
  if (q.deployId !== undefined) {
    clauses.push('p.deploy_id = ?');
    params.push(q.deployId);
  }
  return { sql: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', params };
}

/** The SQL steps of `deploys`, the same for both stores. */
export const deploySql = {
  /** The newest entries: a deploy id, or `#<apply id>` for an apply on its own. */
  entries: (t: Tables, w: Where) =>
    `SELECT COALESCE(p.deploy_id, '#' || p.id) AS entry, MAX(p.started_at) AS at, MAX(p.id) AS last
     FROM ${t.applies} p ${w.sql} GROUP BY 1 ORDER BY 2 DESC, 3 DESC LIMIT ?`,
  /** The filtered applies of those entries. */
  applies: (t: Tables, w: Where, deployIds: number, applyIds: number) => {
    const inList = (n: number) => Array.from({ length: n }, () => '?').join(', ');
    const of = [
      deployIds ? `p.deploy_id IN (${inList(deployIds)})` : '',
      applyIds ? `p.id IN (${inList(applyIds)})` : '',
    ].filter(Boolean);
    const extra = w.sql ? ` AND ${w.sql.replace(/^WHERE /, '')}` : '';
    return `SELECT p.* FROM ${t.applies} p WHERE (${of.join(' OR ')})${extra} ORDER BY p.started_at, p.id`;
  },
  /** Every step of those applies. */
  actions: (t: Tables, n: number) =>
    `SELECT a.* FROM ${t.actions} a WHERE a.apply_id IN (${Array.from({ length: n }, () => '?').join(', ')})
     ORDER BY a.started_at, a.id`,
};

/** Entry keys split into deploy ids and lone apply ids, for `deploySql.applies`. */
export function splitEntries(keys: string[]): { deployIds: string[]; applyIds: number[] } {
  const deployIds: string[] = [];
  const applyIds: number[] = [];
  for (const k of keys) {
    if (k.startsWith('#')) applyIds.push(Number(k.slice(1)));
    else deployIds.push(k);
  }
  return { deployIds, applyIds };
}

/** Big IN lists go in slices: both databases cap the number of bound values. */
export function chunks<T>(items: T[], size = 5_000): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

const WORST: readonly ApplyResult[] = ['failed', 'cancelled', 'running', 'succeeded'];

/**
 * The history entries from their applies and steps: applies sharing a deploy id are one entry,
 * in `order` (newest first); within an entry, hosts in the order they started.
 */
export function groupEntries(
  order: string[],
  applies: ApplyRecord[],
  actions: ActionRecord[],
): DeployEntry[] {
  const steps = new Map<number, ActionRecord[]>();
  for (const a of actions) {
    const list = steps.get(a.applyId) ?? [];
    list.push(a);
    steps.set(a.applyId, list);
  }
  const byEntry = new Map<string, HostApply[]>();
  for (const a of applies) {
    const key = a.deployId ?? `#${a.id}`;
    const list = byEntry.get(key) ?? [];
    list.push({ ...a, steps: steps.get(a.id) ?? [] });
    byEntry.set(key, list);
  }
  const out: DeployEntry[] = [];
  for (const key of order) {
    const hosts = byEntry.get(key);
    if (!hosts?.length) continue;
    const entry: DeployEntry = {
      startedAt: hosts.map((h) => h.startedAt).reduce((a, b) => (a < b ? a : b)),
      result: WORST.find((r) => hosts.some((h) => h.result === r)) ?? 'succeeded',
      hosts,
    };
    if (hosts.every((h) => h.finishedAt !== undefined)) {
      entry.finishedAt = hosts.map((h) => h.finishedAt!).reduce((a, b) => (a > b ? a : b));
    }
    for (const f of ['deployId', 'env', 'stateCommit', 'ref', 'command'] as const) {
      const v: string | undefined = hosts[0]![f];
      if (v !== undefined && hosts.every((h) => h[f] === v)) entry[f] = v;
    }
    out.push(entry);
  }
  return out;
}
