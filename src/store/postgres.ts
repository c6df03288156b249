import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { ExternalError } from '../model/errors.js';
import {
  parsePostgresUrl,
  redactUrlText,
  type PostgresLimits,
  type PostgresLocation,
} from './postgres-url.js';

export { parsePostgresUrl, redactUrlText, type PostgresLimits, type PostgresLocation };
import type { LeaseAttempt, LeaseBackend, LeaseInfo, LeaseRequest } from './leases.js';
import {
  actionWhere,
  applyWhere,
  chunks,
  deploySql,
  groupEntries,
  iso,
  limit,
  splitEntries,
  type Tables,
} from './query.js';
import {
  StoreUnavailableError,
  type ApplyRecord,
  type BeginAction,
  type BeginApply,
  type DeployEntry,
  type FinishAction,
  type FinishApply,
  type HistoryQuery,
  type HistoryRow,
  type Store,
} from './types.js';

/**
 * The fleet's record in PostgreSQL: every agent, `deploy` and `apply` of a fleet writes to one
 * database, and host leases for rotation live beside it. Tables are in a schema of their own
 * (`berth`), so the database can be shared with other things.
 *
 * Connections come from a small pool; every query has a time limit on both sides (the server's
 * statement_timeout, the client's query timeout), so an unreachable or wedged server is an error
 * within seconds, never a hang. The password comes from the URL, PGPASSWORD or a .pgpass file
 * (the client library reads the last two) and never appears in a message.
 */

/** Schema steps; `berth.schema_version` holds how many have run. Only ever appended, never edited. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE berth.applies (
     id BIGSERIAL PRIMARY KEY,
     key TEXT UNIQUE,
     deploy_id TEXT,
     env TEXT,
     command TEXT,
     host TEXT,
     state_commit TEXT,
     ref TEXT NOT NULL,
     repo TEXT NOT NULL,
     started_at TIMESTAMPTZ NOT NULL,
     finished_at TIMESTAMPTZ,
     result TEXT NOT NULL,
     message TEXT
   );
   CREATE INDEX applies_started ON berth.applies (started_at, id);
   CREATE INDEX applies_deploy ON berth.applies (deploy_id);
   CREATE INDEX applies_host ON berth.applies (host, started_at);
   CREATE TABLE berth.actions (
     id BIGSERIAL PRIMARY KEY,
     apply_id BIGINT NOT NULL REFERENCES berth.applies (id),
     key TEXT UNIQUE,
     service TEXT NOT NULL,
     action TEXT NOT NULL,
     cause TEXT NOT NULL,
     from_image TEXT,
     to_image TEXT,
     from_digest TEXT,
     to_digest TEXT,
     git_commit TEXT,
     build_number TEXT,
     state_commit TEXT,
     host TEXT,
     result TEXT NOT NULL,
     message TEXT,
     started_at TIMESTAMPTZ NOT NULL,
     finished_at TIMESTAMPTZ,
     duration_ms INTEGER
   );
   CREATE INDEX actions_started ON berth.actions (started_at, id);
   CREATE INDEX actions_service ON berth.actions (service, started_at);
   CREATE INDEX actions_host ON berth.actions (host, started_at);
   CREATE INDEX actions_apply ON berth.actions (apply_id);
   CREATE TABLE berth.leases (
     scope TEXT NOT NULL,
     grp TEXT NOT NULL,
     holder TEXT NOT NULL,
     token TEXT NOT NULL,
     command TEXT NOT NULL,
     ttl_ms INTEGER NOT NULL,
     acquired_at TIMESTAMPTZ NOT NULL,
     expires_at TIMESTAMPTZ NOT NULL,
     PRIMARY KEY (scope, grp, holder)
   );`,
];

/** The schema version this build of berth writes. */
export const PG_SCHEMA_VERSION = MIGRATIONS.length;

const TABLES: Tables = { applies: 'berth.applies', actions: 'berth.actions' };

/** Key of the session advisory lock that lets exactly one process migrate at a time ("berth"). */
const MIGRATION_LOCK = 0x6265727468;
/** First key of the two-key advisory locks that serialise lease changes per group. */
const LEASE_LOCK_CLASS = 0x62657274;

/** PostgreSQL error codes that mean "try again later", not "you got something wrong". */
const TRANSIENT_CODES = new Set([
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down)
  '53300', // too_many_connections
  '57014', // query_canceled: the statement timeout
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available
]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENOENT', // a unix socket that is not there: the server is down
]);

/** Whether an error from the client means the server could not be reached or answered in time. */
export function isOutage(e: unknown): boolean {
  const err = e as { code?: string; message?: string } | undefined;
  const code = err?.code;
  if (code && (NETWORK_CODES.has(code) || TRANSIENT_CODES.has(code) || code.startsWith('08'))) return true;
  const m = err?.message ?? '';
  return /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connection timeout|Client has encountered a connection error|Connection ended unexpectedly/i.test(
    m,
  );
}

/** What a refusal by the server means for the person who configured berth. */
function hint(e: { code?: string }): string {
  switch (e.code) {
    case '28P01':
    case '28000':
      return ' (check the user and the password: in the URL, PGPASSWORD or ~/.pgpass)';
    case '3D000':
      return ' (create the database first, or name an existing one in the URL)';
    case '42501':
      return ' (the role needs CREATE on the database the first time, to make the schema "berth")';
    default:
      return '';
  }
}

/**
 * Open the record in PostgreSQL. The schema is checked (and migrated) now, so bad input fails
 * here, before anything changes: a wrong password, a missing database, a schema newer than this
 * berth. A server that cannot be reached is not an error here: the store opens, calls fail with
 * StoreUnavailableError until it answers (an apply then keeps its outcome in the spool).
 * @throws UsageError for a malformed URL; ExternalError('store') when the server refuses.
 */
export async function openPostgresStore(
  location: string,
  limits: Partial<PostgresLimits> = {},
): Promise<PostgresStore> {
  const where = parsePostgresUrl(location, limits);
  const store = new PostgresStore(where);
  try {
    await store.ready();
  } catch (e) {
    if (e instanceof StoreUnavailableError) return store;
    await store.close();
    throw e;
  }
  return store;
}

type Row = Record<string, unknown>;
type Client = pg.PoolClient;

export class PostgresStore implements Store {
  readonly leases: LeaseBackend;
  private readonly pool: pg.Pool;
  private migrated?: Promise<void>;
  private closed = false;

  constructor(private readonly where: PostgresLocation) {
    this.pool = new pg.Pool(where.config);
    // A server that goes away drops idle connections; the pool reports that here, and the
    // next query reconnects (or fails as an outage). Without a listener it would crash berth.
    this.pool.on('error', () => undefined);
    this.leases = new PostgresLeases(this);
  }

  /** The URL without the password, for messages. */
  get display(): string {
    return this.where.display;
  }

  /** Connect and bring the schema up to date once; an outage lets a later call try again. */
  ready(): Promise<void> {
    this.migrated ??= this.migrate().catch((e: unknown) => {
      this.migrated = undefined;
      throw e;
    });
    return this.migrated;
  }

  private async migrate(): Promise<void> {
    await this.withClient(
      'opening the record',
      async (c) => {
        const current = await version(c);
        if (current === PG_SCHEMA_VERSION) return;
        this.refuseNewer(current);
        // One process migrates; the others wait here, then find the work done.
        await c.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
        try {
          const now = await version(c);
          this.refuseNewer(now);
          if (now === 0) {
            const schema = await c.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'berth'`);
            if (!schema.rowCount) await c.query('CREATE SCHEMA berth');
            await c.query('CREATE TABLE IF NOT EXISTS berth.schema_version (version INTEGER NOT NULL)');
          }
          for (let v = now; v < MIGRATIONS.length; v++) {
            await c.query('BEGIN');
            try {
              await c.query(MIGRATIONS[v]!);
              await c.query('DELETE FROM berth.schema_version');
              await c.query('INSERT INTO berth.schema_version (version) VALUES ($1)', [v + 1]);
              await c.query('COMMIT');
            } catch (e) {
              await c.query('ROLLBACK').catch(() => undefined);
              throw e;
            }
          }
        } finally {
          await c.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
        }
      },
      { migrated: false },
    );
  }

  private refuseNewer(current: number): void {
    if (current > PG_SCHEMA_VERSION) {
      throw new ExternalError(
        'store',
        `the deployment record ${this.where.display} has schema version ${current}, newer than this berth ` +
          `understands (${PG_SCHEMA_VERSION}); upgrade berth rather than risk writing an older shape into it`,
      );
    }
  }

  /** Run `fn` with a pooled connection, after the schema check; errors are told apart (see `failure`). */
  async withClient<T>(
    what: string,
    fn: (c: Client) => Promise<T>,
    opts: { migrated?: boolean } = {},
  ): Promise<T> {
    if (this.closed) throw new Error(`store: the record ${this.where.display} is closed`);
    if (opts.migrated !== false) await this.ready();
    let client: Client;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw this.failure(what, e);
    }
    let broken: Error | undefined;
    // The server may end the connection between two queries (a shutdown); the client then emits
    // 'error', which would crash berth without a listener. The next query fails as an outage.
    const onError = (e: Error) => (broken = e);
    client.on('error', onError);
    try {
      return await fn(client);
    } catch (e) {
      if (isOutage(e)) broken = e as Error;
      throw this.failure(what, e);
    } finally {
      client.off('error', onError);
      // A connection that failed mid-way is thrown away, not handed to the next query.
      client.release(broken);
    }
  }

  /**
   * An outage becomes StoreUnavailableError; a refusal (password, privileges, missing database)
   * an ExternalError with a hint; a constraint violation (berth passed an id that does not exist)
   * stays as it is: that is our bug. Every message goes through the redactor.
   */
  private failure(what: string, e: unknown): Error {
    if (e instanceof ExternalError || (e instanceof Error && e.message.startsWith('store: no '))) return e;
    const err = e as { code?: string; message?: string };
    const msg = this.where.redact(String(err?.message ?? e));
    if (isOutage(e)) {
      return new StoreUnavailableError(`${what} in ${this.where.display} failed: ${msg}${codeOf(err)}`);
    }
    if (err?.code?.startsWith('23')) return new Error(`store: ${what}: ${msg}`);
    return new ExternalError('store', `${what} in ${this.where.display} failed: ${msg}${hint(err)}`);
  }

  private async query(what: string, sql: string, params: unknown[] = []): Promise<Row[]> {
    return this.withClient(what, async (c) => (await c.query(numbered(sql), params)).rows as Row[]);
  }

  async beginApply(a: BeginApply): Promise<number> {
    const rows = await this.query(
      'recording the start of an apply',
      `INSERT INTO berth.applies (host, state_commit, ref, repo, started_at, result, key, deploy_id, env, command)
       VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key RETURNING id`,
      [
        n(a.host),
        n(a.stateCommit),
        a.ref,
        a.repo,
        iso(a.startedAt, 'startedAt'),
        n(a.key),
        n(a.deployId),
        n(a.env),
        n(a.command),
      ],
    );
    return Number(rows[0]!.id);
  }

  async finishApply(id: number, r: FinishApply): Promise<void> {
    const finishedAt = iso(r.finishedAt, 'finishedAt');
    const rows = await this.query(
      'recording the end of an apply',
      `UPDATE berth.applies SET result = ?, message = ?, finished_at = ? WHERE id = ? RETURNING id`,
      [r.result, n(r.message), finishedAt, id],
    );
    if (!rows.length) throw new Error(`store: no apply with id ${id} to finish`);
  }

  async beginAction(applyId: number, a: BeginAction): Promise<number> {
    const rows = await this.query(
      'recording the start of an action',
      `INSERT INTO berth.actions (apply_id, service, action, cause, from_image, to_image, from_digest, to_digest,
         git_commit, build_number, state_commit, host, result, message, started_at, key)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key RETURNING id`,
      [
        applyId,
        a.service,
        a.action,
        a.cause,
        n(a.fromImage),
        n(a.toImage),
        n(a.fromDigest),
        n(a.toDigest),
        n(a.gitCommit),
        n(a.buildNumber),
        n(a.stateCommit),
        n(a.host),
        n(a.message),
        iso(a.startedAt, 'startedAt'),
        n(a.key),
      ],
    );
    return Number(rows[0]!.id);
  }

  async finishAction(id: number, r: FinishAction): Promise<void> {
    const finishedAt = iso(r.finishedAt, 'finishedAt');
    const rows = await this.query(
      'recording the end of an action',
      `UPDATE berth.actions SET result = ?, message = ?, finished_at = ?::timestamptz,
         duration_ms = round(extract(epoch FROM (?::timestamptz - started_at)) * 1000)::integer,
         to_digest = COALESCE(?, to_digest)
       WHERE id = ? RETURNING id`,
      [r.result, n(r.message), finishedAt, finishedAt, n(r.toDigest), id],
    );
    if (!rows.length) throw new Error(`store: no action with id ${id} to finish`);
  }

  async history(q: HistoryQuery = {}): Promise<HistoryRow[]> {
    const w = actionWhere(q);
    const rows = await this.query(
      'reading history',
      `SELECT a.*, p.ref, p.repo, p.deploy_id, p.env, p.command
       FROM berth.actions a JOIN berth.applies p ON p.id = a.apply_id ${w.sql}
       ORDER BY a.started_at DESC, a.id DESC LIMIT ?`,
      [...w.params, limit(q.limit)],
    );
    return rows.map(toHistoryRow);
  }

  async applies(q: HistoryQuery = {}): Promise<ApplyRecord[]> {
    const w = applyWhere(q, TABLES);
    const rows = await this.query(
      'reading applies',
      `SELECT p.* FROM berth.applies p ${w.sql} ORDER BY p.started_at DESC, p.id DESC LIMIT ?`,
      [...w.params, limit(q.limit)],
    );
    return rows.map(toApply);
  }

  async deploys(q: HistoryQuery = {}): Promise<DeployEntry[]> {
    const w = applyWhere(q, TABLES);
    const max = limit(q.limit);
    return this.withClient('reading history', async (c) => {
      // One snapshot for the three reads, so an apply written meanwhile cannot show without its steps.
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      try {
        const entries = await c.query(numbered(deploySql.entries(TABLES, w)), [...w.params, max]);
        const order = entries.rows.map((r: Row) => String(r.entry));
        if (!order.length) return [];
        const { deployIds, applyIds } = splitEntries(order);
        const applies = (
          await c.query(numbered(deploySql.applies(TABLES, w, deployIds.length, applyIds.length)), [
            ...deployIds,
            ...applyIds,
            ...w.params,
          ])
        ).rows.map(toApply);
        const actions: ReturnType<typeof toHistoryRow>[] = [];
        for (const ids of chunks(applies.map((a) => a.id))) {
          const r = await c.query(numbered(deploySql.actions(TABLES, ids.length)), ids);
          actions.push(...r.rows.map(toHistoryRow));
        }
        return groupEntries(order, applies, actions);
      } finally {
        await c.query('COMMIT').catch(() => undefined);
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end().catch(() => undefined);
  }
}

async function version(c: Client): Promise<number> {
  const exists = await c.query(`SELECT to_regclass('berth.schema_version') AS t`);
  if (!exists.rows[0]?.t) return 0;
  const r = await c.query('SELECT max(version) AS v FROM berth.schema_version');
  return Number(r.rows[0]?.v ?? 0);
}

/**
 * Leases in the `berth.leases` table. Changes to one group are serialised by a transaction
 * advisory lock on that group, so two hosts counting the same group one after the other see each
 * other's lease. Expiry is judged on the server's clock; after a server restart every lease gets
 * a full lifetime again, since its holder could not renew while the server was down.
 */
class PostgresLeases implements LeaseBackend {
  constructor(private readonly store: PostgresStore) {}

  // clock_timestamp(), not now(): now() is when the transaction began, which may be long before
  // this statement when it waited for another host's lease change.
  private static readonly LIVE = `(expires_at >= clock_timestamp() OR pg_postmaster_start_time() + ttl_ms * interval '1 millisecond' >= clock_timestamp())`;

  async tryAcquire(req: LeaseRequest): Promise<LeaseAttempt> {
    const token = randomUUID();
    return this.store.withClient('taking a lease', async (c) => {
      await c.query('BEGIN');
      try {
        const groups = [...req.groups].sort((a, b) => a.name.localeCompare(b.name));
        for (const g of groups) {
          await c.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [
            LEASE_LOCK_CLASS,
            `${req.scope}\n${g.name}`,
          ]);
        }
        for (const g of req.groups) {
          const holders = await c.query(
            `SELECT * FROM berth.leases WHERE scope = $1 AND grp = $2 AND holder <> $3 AND ${PostgresLeases.LIVE}
             ORDER BY acquired_at, holder`,
            [req.scope, g.name, req.holder],
          );
          if (holders.rows.length >= g.cap) {
            await c.query('ROLLBACK');
            return { ok: false, group: g.name, cap: g.cap, holders: holders.rows.map(toLease) };
          }
        }
        await c.query(
          `DELETE FROM berth.leases WHERE scope = $1 AND grp = ANY($2) AND NOT ${PostgresLeases.LIVE}`,
          [req.scope, req.groups.map((g) => g.name)],
        );
        for (const g of req.groups) {
          await c.query(
            `INSERT INTO berth.leases (scope, grp, holder, token, command, ttl_ms, acquired_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6::integer, clock_timestamp(), clock_timestamp() + $6::integer * interval '1 millisecond')
             ON CONFLICT (scope, grp, holder) DO UPDATE SET token = EXCLUDED.token, command = EXCLUDED.command,
               ttl_ms = EXCLUDED.ttl_ms, acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at`,
            [req.scope, g.name, req.holder, token, req.command, req.ttlMs],
          );
        }
        await c.query('COMMIT');
        return { ok: true, token };
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
    });
  }

  async renew(req: LeaseRequest, token: string): Promise<boolean> {
    return this.store.withClient('renewing a lease', async (c) => {
      const r = await c.query(
        `UPDATE berth.leases SET expires_at = clock_timestamp() + ttl_ms * interval '1 millisecond'
         WHERE scope = $1 AND holder = $2 AND token = $3 AND ${PostgresLeases.LIVE}`,
        [req.scope, req.holder, token],
      );
      return r.rowCount === req.groups.length;
    });
  }

  async release(req: LeaseRequest, token: string): Promise<void> {
    await this.store.withClient('giving back a lease', (c) =>
      c.query(`DELETE FROM berth.leases WHERE scope = $1 AND holder = $2 AND token = $3`, [
        req.scope,
        req.holder,
        token,
      ]),
    );
  }

  async list(scope: string): Promise<LeaseInfo[]> {
    return this.store.withClient('reading leases', async (c) => {
      const r = await c.query(
        `SELECT * FROM berth.leases WHERE scope = $1 AND ${PostgresLeases.LIVE} ORDER BY acquired_at, grp, holder`,
        [scope],
      );
      return r.rows.map(toLease);
    });
  }
}

/** `?` placeholders (as query.ts writes them) to PostgreSQL's `$1, $2, …`. */
function numbered(sql: string): string {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
}

function codeOf(err: { code?: string }): string {
  return err?.code && !/^\d/.test(err.code) ? '' : err?.code ? ` [${err.code}]` : '';
}

function n(v: string | undefined): string | null {
  return v ?? null;
}

/** Columns to fields: NULL becomes absent; bigints and times to plain numbers and ISO strings. */
function pick<K extends string>(row: Row, map: Record<K, string>): Partial<Record<K, string | number>> {
  const out: Partial<Record<K, string | number>> = {};
  for (const [field, column] of Object.entries(map) as [K, string][]) {
    const v = row[column];
    if (v === null || v === undefined) continue;
    if (v instanceof Date) out[field] = v.toISOString();
    else if (column === 'id' || column === 'apply_id' || column === 'duration_ms') out[field] = Number(v);
    else out[field] = v as string;
  }
  return out;
}

function toApply(row: Row): ApplyRecord {
  return pick(row, {
    id: 'id',
    deployId: 'deploy_id',
    env: 'env',
    command: 'command',
    host: 'host',
    stateCommit: 'state_commit',
    ref: 'ref',
    repo: 'repo',
    startedAt: 'started_at',
    finishedAt: 'finished_at',
    result: 'result',
    message: 'message',
  }) as unknown as ApplyRecord;
}

function toHistoryRow(row: Row): HistoryRow {
  return pick(row, {
    id: 'id',
    applyId: 'apply_id',
    host: 'host',
    service: 'service',
    action: 'action',
    cause: 'cause',
    fromImage: 'from_image',
    toImage: 'to_image',
    fromDigest: 'from_digest',
    toDigest: 'to_digest',
    gitCommit: 'git_commit',
    buildNumber: 'build_number',
    stateCommit: 'state_commit',
    result: 'result',
    message: 'message',
    startedAt: 'started_at',
    finishedAt: 'finished_at',
    durationMs: 'duration_ms',
    ref: 'ref',
    repo: 'repo',
    deployId: 'deploy_id',
    env: 'env',
    command: 'command',
  }) as unknown as HistoryRow;
}

function toLease(row: Row): LeaseInfo {
  const t = (v: unknown) => (v instanceof Date ? v.toISOString() : String(v));
  return {
    scope: String(row.scope),
    group: String(row.grp),
    holder: String(row.holder),
    command: String(row.command),
    acquiredAt: t(row.acquired_at),
    expiresAt: t(row.expires_at),
  };
}
