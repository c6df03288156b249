import { accessSync, chmodSync, constants, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ExternalError, UsageError } from '../model/errors.js';
import {
  DEFAULT_LIMIT,
  type ApplyRecord,
  type BeginAction,
  type BeginApply,
  type FinishAction,
  type FinishApply,
  type HistoryQuery,
  type HistoryRow,
  type Store,
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
];

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
export function openSqliteStore(file: string): Store {
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
  return new SqliteStore(db, where);
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

  constructor(
    private readonly db: Database.Database,
    private readonly file: string,
  ) {
    this.stmt = {
      beginApply: db.prepare(
        `INSERT INTO applies (host, state_commit, ref, repo, started_at, result)
         VALUES (?, ?, ?, ?, ?, 'running') RETURNING id`,
      ),
      finishApply: db.prepare(`UPDATE applies SET result = ?, message = ?, finished_at = ? WHERE id = ?`),
      beginAction: db.prepare(
        `INSERT INTO actions (apply_id, service, action, cause, from_image, to_image, from_digest, to_digest,
           git_commit, build_number, state_commit, host, result, message, started_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?) RETURNING id`,
      ),
      actionStart: db.prepare(`SELECT started_at FROM actions WHERE id = ?`),
      finishAction: db.prepare(
        `UPDATE actions SET result = ?, message = ?, finished_at = ?, duration_ms = ?,
           to_digest = COALESCE(?, to_digest)
         WHERE id = ?`,
      ),
      applies: db.prepare(`SELECT * FROM applies ORDER BY started_at DESC, id DESC LIMIT ?`),
    };
  }

  async beginApply(a: BeginApply): Promise<number> {
    const row = this.guard('recording the start of an apply', () =>
      this.stmt.beginApply.get(n(a.host), n(a.stateCommit), a.ref, a.repo, iso(a.startedAt, 'startedAt')),
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
      ),
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
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (q.service !== undefined) {
      // A shared pull is stored as "api,web"; match whole names only, with LIKE's own
      // wildcards escaped because `_` is legal in a service name.
      where.push(`(a.service = ? OR (',' || a.service || ',') LIKE ? ESCAPE '\\')`);
      params.push(q.service, `%,${q.service.replace(/[\\%_]/g, '\\$&')},%`);
    }
    if (q.host !== undefined) {
      where.push('a.host = ?');
      params.push(q.host);
    }
    params.push(limit(q.limit));
    const sql = `SELECT a.*, p.ref, p.repo FROM actions a JOIN applies p ON p.id = a.apply_id
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY a.started_at DESC, a.id DESC LIMIT ?`;
    const rows = this.guard('reading history', () => this.db.prepare(sql).all(...params)) as Row[];
    return rows.map(toHistoryRow);
  }

  async applies(q: { limit?: number } = {}): Promise<ApplyRecord[]> {
    const rows = this.guard('reading applies', () => this.stmt.applies.all(limit(q.limit))) as Row[];
    return rows.map(toApply);
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

/** Canonical UTC ISO form, so text order is time order whatever offset the caller wrote. */
function iso(value: string, field: string): string {
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new Error(`store: ${field} is not an ISO timestamp: ${JSON.stringify(value)}`);
  return new Date(t).toISOString();
}

function limit(value: number | undefined): number {
  if (value === undefined) return DEFAULT_LIMIT;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`the number of records to show must be a whole number above 0, not ${value}`);
  }
  return value;
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
  }) as unknown as HistoryRow;
}
