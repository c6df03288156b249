import { randomUUID } from 'node:crypto';
import { accessSync, chmodSync, constants, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ExternalError } from '../model/errors.js';
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
import type {
  ApplyRecord,
  BeginAction,
  BeginApply,
  DeployEntry,
  FinishAction,
  FinishApply,
  HistoryQuery,
  HistoryRow,
  Store,
} from './types.js';

/**
 * Schema steps, applied in order; `PRAGMA user_version` holds how many have run. Steps are only
 * ever appended, never edited, because a released database has already run the old text.
 * The SQL stays plain (no SQLite-only types) so the PostgreSQL store can share its shape.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE applies (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     host TEXT,
     state_commit TEXT,
     ref TEXT NOT NULL,
     repo TEXT NOT NULL,
     started_at TEXT NOT NULL,
     finished_at TEXT,
     result TEXT NOT NULL,
     message TEXT
   );
   CREATE INDEX applies_started ON applies (started_at, id);
   CREATE TABLE actions (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     apply_id INTEGER NOT NULL REFERENCES applies (id),
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
     started_at TEXT NOT NULL,
     finished_at TEXT,
     duration_ms INTEGER
   );
   CREATE INDEX actions_started ON actions (started_at, id);
   CREATE INDEX actions_service ON actions (service, started_at);
   CREATE INDEX actions_host ON actions (host, started_at);
   CREATE INDEX actions_apply ON actions (apply_id);`,
  // The fleet record: who applied, in which environment, as part of which deploy; idempotency
  // keys for outcomes replayed from a spool; leases for rotation.
  `ALTER TABLE applies ADD COLUMN key TEXT;
   ALTER TABLE applies ADD COLUMN deploy_id TEXT;
   ALTER TABLE applies ADD COLUMN env TEXT;
   ALTER TABLE applies ADD COLUMN command TEXT;
   CREATE UNIQUE INDEX applies_key ON applies (key);
   CREATE INDEX applies_deploy ON applies (deploy_id);
   CREATE INDEX applies_host ON applies (host, started_at);
   ALTER TABLE actions ADD COLUMN key TEXT;
   CREATE UNIQUE INDEX actions_key ON actions (key);
   CREATE TABLE leases (
     scope TEXT NOT NULL,
     grp TEXT NOT NULL,
     holder TEXT NOT NULL,
     token TEXT NOT NULL,
     command TEXT NOT NULL,
     acquired_at TEXT NOT NULL,
     expires_ms INTEGER NOT NULL,
     PRIMARY KEY (scope, grp, holder)
   );`,
];

const TABLES: Tables = { applies: 'applies', actions: 'actions' };

/** The schema version this build of berth writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

// Long enough to outwait another berth process's short write (an agent and a manual apply on
// one host), short enough that a wedged lock is reported instead of hanging a deploy.
const BUSY_TIMEOUT_MS = 10_000;

/**
 * Open (creating if needed) the SQLite deployment record at `file`.
 *
 * The parent folder is created 0700 and a new database file 0600: the record names images,
 * commits and failure messages, which are nobody else's business. WAL lets `berth history` read
 * while an apply writes, and the busy timeout lets two writers (agent and CLI) take turns
 * instead of failing. Schema migrations run inside one immediate transaction, so two processes
 * opening a new file at once migrate it exactly once.
 *
 * @throws ExternalError('store') naming the path when it cannot be opened or migrated.
 */
export function openSqliteStore(file: string, opts: { now?: () => number } = {}): Store {
  const where = path.resolve(file);
  const fail = (why: string, cause?: unknown): ExternalError =>
    new ExternalError('store', `cannot open the deployment record ${where}: ${why}`, { cause });

  // SQLite's own word for a directory is "unable to open database file"; say what is wrong.
  const existing = statOrUndefined(where, fail);
  if (existing && !existing.isFile()) throw fail('it is not a file (give a file path such as .../berth.db)');
  const existed = existing !== undefined;
  try {
    mkdirSync(path.dirname(where), { recursive: true, mode: 0o700 });
  } catch (e) {
    throw fail(`its folder cannot be created (${reason(e)})`, e);
  }

  // SQLite reports every refusal as "unable to open database file"; ask first to say which.
  try {
    accessSync(existed ? where : path.dirname(where), constants.R_OK | constants.W_OK);
  } catch (e) {
    throw fail(
      existed ? `it cannot be written (${reason(e)})` : `its folder cannot be written (${reason(e)})`,
      e,
    );
  }

  let db: Database.Database;
  try {
    db = new Database(where);
  } catch (e) {
    throw fail(reason(e), e);
  }
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // Before anything else touches the file, so a file that is not SQLite fails here, at open.
    db.pragma('journal_mode = WAL');
    db.pragma('foreign_keys = ON');
    // synchronous stays at SQLite's default FULL: a record is a handful of rows per apply, and
    // "nothing lost" matters more than write speed, even across a power cut.
    migrate(db);
    if (!existed) chmodSync(where, 0o600);
  } catch (e) {
    db.close();
    throw e instanceof ExternalError ? e : fail(reason(e), e);
  }
  return new SqliteStore(db, where, opts.now ?? Date.now);
}

function statOrUndefined(
  file: string,
  fail: (why: string, cause?: unknown) => ExternalError,
): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fail(reason(e), e);
  }
}

function migrate(db: Database.Database): void {
  // IMMEDIATE takes the write lock before reading the version, so a second process waits and
  // then sees the work done rather than running the same CREATE TABLE twice.
  db.transaction(() => {
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > MIGRATIONS.length) {
      throw new ExternalError(
        'store',
        `the deployment record ${db.name} has schema version ${current}, newer than this berth understands ` +
          `(${MIGRATIONS.length}); upgrade berth rather than risk writing an older shape into it`,
      );
    }
    for (let v = current; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v]!);
    // PRAGMA takes no bound parameters; the value is our own integer.
    if (current !== MIGRATIONS.length) db.pragma(`user_version = ${MIGRATIONS.length}`);
  }).immediate();
}

type Row = Record<string, string | number | null>;

class SqliteStore implements Store {
  private readonly stmt;

  readonly leases: LeaseBackend;

  constructor(
    private readonly db: Database.Database,
    private readonly file: string,
    now: () => number,
  ) {
    this.leases = new SqliteLeases(db, now, (what, fn) => this.guard(what, fn));
    this.stmt = {
      beginApply: db.prepare(
        `INSERT INTO applies (host, state_commit, ref, repo, started_at, result, key, deploy_id, env, command)
         VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING id`,
      ),
      applyByKey: db.prepare(`SELECT id FROM applies WHERE key = ?`),
      actionByKey: db.prepare(`SELECT id FROM actions WHERE key = ?`),
      finishApply: db.prepare(`UPDATE applies SET result = ?, message = ?, finished_at = ? WHERE id = ?`),
      beginAction: db.prepare(
        `INSERT INTO actions (apply_id, service, action, cause, from_image, to_image, from_digest, to_digest,
           git_commit, build_number, state_commit, host, result, message, started_at, key)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING id`,
      ),
      actionStart: db.prepare(`SELECT started_at FROM actions WHERE id = ?`),
      finishAction: db.prepare(
        `UPDATE actions SET result = ?, message = ?, finished_at = ?, duration_ms = ?,
           to_digest = COALESCE(?, to_digest)
         WHERE id = ?`,
      ),
    };
  }

  async beginApply(a: BeginApply): Promise<number> {
    const startedAt = iso(a.startedAt, 'startedAt');
    const row = this.guard('recording the start of an apply', () =>
      this.db
        .transaction(
          () =>
            this.stmt.beginApply.get(
              n(a.host),
              n(a.stateCommit),
              a.ref,
              a.repo,
              startedAt,
              n(a.key),
              n(a.deployId),
              n(a.env),
              n(a.command),
            ) ?? this.stmt.applyByKey.get(a.key),
        )
        .immediate(),
    ) as { id: number };
    return row.id;
  }

  async finishApply(id: number, r: FinishApply): Promise<void> {
    const finishedAt = iso(r.finishedAt, 'finishedAt');
    const { changes } = this.guard('recording the end of an apply', () =>
      this.stmt.finishApply.run(r.result, n(r.message), finishedAt, id),
    );
    if (changes === 0) throw new Error(`store: no apply with id ${id} to finish`);
  }

  async beginAction(applyId: number, a: BeginAction): Promise<number> {
    const startedAt = iso(a.startedAt, 'startedAt');
    const row = this.guard('recording the start of an action', () =>
      this.db
        .transaction(
          () =>
            this.stmt.beginAction.get(
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
              startedAt,
              n(a.key),
            ) ?? this.stmt.actionByKey.get(a.key),
        )
        .immediate(),
    ) as { id: number };
    return row.id;
  }

  async finishAction(id: number, r: FinishAction): Promise<void> {
    const finishedAt = iso(r.finishedAt, 'finishedAt');
    this.guard('recording the end of an action', () =>
      this.db
        .transaction(() => {
          const start = this.stmt.actionStart.get(id) as { started_at: string } | undefined;
          if (!start) throw new Error(`store: no action with id ${id} to finish`);
          const durationMs = Date.parse(finishedAt) - Date.parse(start.started_at);
          this.stmt.finishAction.run(r.result, n(r.message), finishedAt, durationMs, n(r.toDigest), id);
        })
        .immediate(),
    );
  }

  async history(q: HistoryQuery = {}): Promise<HistoryRow[]> {
    const w = actionWhere(q);
    const sql = `SELECT a.*, p.ref, p.repo, p.deploy_id, p.env, p.command
      FROM actions a JOIN applies p ON p.id = a.apply_id ${w.sql}
      ORDER BY a.started_at DESC, a.id DESC LIMIT ?`;
    const rows = this.guard('reading history', () =>
      this.db.prepare(sql).all(...w.params, limit(q.limit)),
    ) as Row[];
    return rows.map(toHistoryRow);
  }

  async applies(q: HistoryQuery = {}): Promise<ApplyRecord[]> {
    const w = applyWhere(q, TABLES);
    const sql = `SELECT p.* FROM applies p ${w.sql} ORDER BY p.started_at DESC, p.id DESC LIMIT ?`;
    const rows = this.guard('reading applies', () =>
      this.db.prepare(sql).all(...w.params, limit(q.limit)),
    ) as Row[];
    return rows.map(toApply);
  }

  async deploys(q: HistoryQuery = {}): Promise<DeployEntry[]> {
    const w = applyWhere(q, TABLES);
    // One read transaction, so an apply written meanwhile cannot show without its steps.
    return this.guard('reading history', () =>
      this.db.transaction(() => {
        const entries = this.db
          .prepare(deploySql.entries(TABLES, w))
          .all(...w.params, limit(q.limit)) as Array<{ entry: string }>;
        const order = entries.map((e) => e.entry);
        if (!order.length) return [];
        const { deployIds, applyIds } = splitEntries(order);
        const applies = (
          this.db
            .prepare(deploySql.applies(TABLES, w, deployIds.length, applyIds.length))
            .all(...deployIds, ...applyIds, ...w.params) as Row[]
        ).map(toApply);
        const actions = chunks(applies.map((a) => a.id)).flatMap((ids) =>
          (this.db.prepare(deploySql.actions(TABLES, ids.length)).all(...ids) as Row[]).map(toHistoryRow),
        );
        return groupEntries(order, applies, actions);
      })(),
    );
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  /**
   * Run a statement, telling a broken disk or a lock held too long (the store's problem, reported
   * with its path) apart from a constraint failure (berth passed an id that does not exist: ours).
   */
  private guard<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (e instanceof Database.SqliteError && !String(code).startsWith('SQLITE_CONSTRAINT')) {
        throw new ExternalError('store', `${what} in ${this.file} failed: ${e.message}`, { cause: e });
      }
      throw e;
    }
  }
}

function n(v: string | undefined): string | null {
  return v ?? null;
}

function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'EACCES' || err.code === 'EPERM') return 'permission denied';
  if (err.code === 'ENOTDIR') return 'a part of the path is a file, not a folder';
  if (err.code === 'SQLITE_NOTADB') return 'the file exists but is not a SQLite database';
  if (err.code === 'SQLITE_CANTOPEN')
    return 'SQLite cannot open it (check the folder exists and is writable)';
  if (err.code === 'SQLITE_READONLY') return 'it is read-only';
  return err.message ?? String(e);
}

/** Columns to fields: NULL becomes absent, so `--json` shows no noise and rows compare cleanly. */
function pick<K extends string>(row: Row, map: Record<K, string>): Partial<Record<K, string | number>> {
  const out: Partial<Record<K, string | number>> = {};
  for (const [field, column] of Object.entries(map) as [K, string][]) {
    const v = row[column];
    if (v !== null && v !== undefined) out[field] = v;
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

/**
 * Leases in the SQLite file: enough for hosts that share one machine's record (simulated hosts,
 * tests), and the same contract as PostgreSQL's. The clock is this machine's, which every
 * holder of one file shares.
 */
class SqliteLeases implements LeaseBackend {
  constructor(
    private readonly db: Database.Database,
    private readonly now: () => number,
    private readonly guard: <T>(what: string, fn: () => T) => T,
  ) {}

  async tryAcquire(req: LeaseRequest): Promise<LeaseAttempt> {
    const token = randomUUID();
    return this.guard('taking a lease', () =>
      this.db
        .transaction((): LeaseAttempt => {
          const now = this.now();
          for (const g of req.groups) {
            const holders = (
              this.db
                .prepare(
                  `SELECT * FROM leases WHERE scope = ? AND grp = ? AND holder <> ? AND expires_ms >= ?
                   ORDER BY acquired_at, holder`,
                )
                .all(req.scope, g.name, req.holder, now) as Row[]
            ).map(toLease);
            if (holders.length >= g.cap) return { ok: false, group: g.name, cap: g.cap, holders };
          }
          const at = new Date(now).toISOString();
          const put = this.db.prepare(
            `INSERT INTO leases (scope, grp, holder, token, command, acquired_at, expires_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (scope, grp, holder) DO UPDATE SET token = excluded.token,
               command = excluded.command, acquired_at = excluded.acquired_at, expires_ms = excluded.expires_ms`,
          );
          this.db.prepare(`DELETE FROM leases WHERE scope = ? AND expires_ms < ?`).run(req.scope, now);
          for (const g of req.groups)
            put.run(req.scope, g.name, req.holder, token, req.command, at, now + req.ttlMs);
          return { ok: true, token };
        })
        .immediate(),
    );
  }

  async renew(req: LeaseRequest, token: string): Promise<boolean> {
    return this.guard('renewing a lease', () => {
      const now = this.now();
      const { changes } = this.db
        .prepare(
          `UPDATE leases SET expires_ms = ? WHERE scope = ? AND holder = ? AND token = ? AND expires_ms >= ?`,
        )
        .run(now + req.ttlMs, req.scope, req.holder, token, now);
      return changes === req.groups.length;
    });
  }

  async release(req: LeaseRequest, token: string): Promise<void> {
    this.guard('giving back a lease', () =>
      this.db
        .prepare(`DELETE FROM leases WHERE scope = ? AND holder = ? AND token = ?`)
        .run(req.scope, req.holder, token),
    );
  }

  async list(scope: string): Promise<LeaseInfo[]> {
    const rows = this.guard('reading leases', () =>
      this.db
        .prepare(`SELECT * FROM leases WHERE scope = ? AND expires_ms >= ? ORDER BY acquired_at, grp, holder`)
        .all(scope, this.now()),
    ) as Row[];
    return rows.map(toLease);
  }
}

function toLease(row: Row): LeaseInfo {
  return {
    scope: String(row.scope),
    group: String(row.grp),
    holder: String(row.holder),
    command: String(row.command),
    acquiredAt: String(row.acquired_at),
    expiresAt: new Date(Number(row.expires_ms)).toISOString(),
  };
}
