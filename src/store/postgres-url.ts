/**
 * A PostgreSQL record's location: parsed and checked without loading the client library, so
 * `--store postgres://…` is refused or accepted before anything is done, and messages never show
 * the password.
 */
import type pg from 'pg';
import { UsageError } from '../model/errors.js';

/** Limits that keep a dead or wedged server from hanging berth. */
export interface PostgresLimits {
  /** Connections at most (default 4: a host's apply needs one or two). */
  maxConnections: number;
  /** Time to connect, in ms (URL `connect_timeout` in seconds overrides). */
  connectMs: number;
  /** Server-side limit per statement, in ms (URL `statement_timeout` overrides). */
  statementMs: number;
  /** Client-side limit per query, in ms: covers a server that stopped answering altogether. */
  queryMs: number;
}

export const DEFAULT_LIMITS: PostgresLimits = {
  maxConnections: 4,
  connectMs: 5_000,
  statementMs: 10_000,
  queryMs: 15_000,
};

/** URL query parameters berth passes on; any other is refused rather than silently ignored. */
const KNOWN_PARAMS = [
  'host',
  'port',
  'sslmode',
  'sslrootcert',
  'sslcert',
  'sslkey',
  'application_name',
  'options',
  'connect_timeout',
  'statement_timeout',
];

/** A PostgreSQL location, checked, with its password hidden for messages. */
export interface PostgresLocation {
  /** The URL with the password shown as `***`: safe for any message or log. */
  display: string;
  /** Replace every appearance of the password (as written, decoded, or from PGPASSWORD) by `***`. */
  redact(text: string): string;
  config: pg.PoolConfig;
}

/**
 * Check a `postgres://` URL and make the client's settings from it; the password may be in the
 * URL, in PGPASSWORD or in ~/.pgpass (PGPASSFILE), as for psql.
 * @throws UsageError naming what is wrong, without the password.
 */
export function parsePostgresUrl(location: string, limits: Partial<PostgresLimits> = {}): PostgresLocation {
  const lim = { ...DEFAULT_LIMITS, ...limits };
  const bad = (why: string) => new UsageError(`--store (or BERTH_STORE) ${redactUrlText(location)}: ${why}`);
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    throw bad(
      'not a valid PostgreSQL URL; write postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE ' +
        '(percent-encode special characters in the password)',
    );
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw bad('a PostgreSQL URL starts with postgres:// or postgresql://');
  }
  const db = url.pathname.replace(/^\//, '');
  if (db.includes('/')) throw bad(`"${db}" is not a database name (one path segment: /DATABASE)`);
  const unknown = [...url.searchParams.keys()].filter((k) => !KNOWN_PARAMS.includes(k));
  if (unknown.length) {
    throw bad(
      `unknown parameter${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (known: ${KNOWN_PARAMS.join(', ')})`,
    );
  }
  const numeric = (name: string) => {
    const v = url.searchParams.get(name);
    if (v === null) return undefined;
    if (!/^\d+$/.test(v)) throw bad(`${name} must be a whole number, not "${v}"`);
    return Number(v);
  };
  const connectS = numeric('connect_timeout');
  const statementMs = numeric('statement_timeout');
  // The client reads the rest of the URL itself (user, password, host, port, database, ssl);
  // these two become its own settings, which the URL's text would otherwise override.
  const forClient = new URL(location);
  forClient.searchParams.delete('connect_timeout');
  forClient.searchParams.delete('statement_timeout');
  const config: pg.PoolConfig = {
    connectionString: forClient.toString(),
    max: lim.maxConnections,
    connectionTimeoutMillis: connectS !== undefined ? connectS * 1000 : lim.connectMs,
    statement_timeout: statementMs ?? lim.statementMs,
    query_timeout: lim.queryMs,
    idle_in_transaction_session_timeout: lim.statementMs * 2,
    idleTimeoutMillis: 10_000,
    keepAlive: true,
    application_name: 'berth',
  };
  const secrets = [url.password, safeDecode(url.password), process.env.PGPASSWORD ?? '']
    // A very short secret would blank out ordinary words; it is not worth hiding at that cost.
    .filter((s) => s.length >= 4)
    .sort((a, b) => b.length - a.length);
  const redact = (text: string) => {
    let out = redactUrlText(text);
    for (const s of secrets) out = out.split(s).join('***');
    return out;
  };
  return { display: redact(location), redact, config };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** `scheme://user:secret@` → `scheme://user:***@`, and `password=` parameters, in any text. */
export function redactUrlText(text: string): string {
  return text
    .replace(/([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):[^@\s/]*@/gi, '$1:***@')
    .replace(/([?&]password=)[^&\s]*/gi, '$1***');
}
