import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chownSync,
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { alive, freePort, GiveUp, killOnExit, sleep, waitUntil } from './proc.js';

/** A private PostgreSQL server started by `startPostgres`. */
export interface PostgresHandle {
  /** `postgres://berth:PASSWORD@127.0.0.1:PORT/berth`: the test role, which owns database `berth`. */
  url: string;
  host: string;
  port: number;
  /** The test role (not a superuser) and its password; the password has characters a URL must encode. */
  user: string;
  password: string;
  /** The folder holding data, socket and log; the unix socket is `${dir}/.s.PGSQL.${port}`. */
  dir: string;
  /** The postmaster's PID (a new one after `up()`). */
  readonly pid: number;
  /** A new, empty database owned by the test role; its URL (with the password). */
  createDatabase(prefix?: string): Promise<string>;
  /** Run SQL as the superuser (over the unix socket, behind berth's back) in `database`. */
  admin<R extends pg.QueryResultRow = Record<string, unknown>>(
    sql: string,
    params?: unknown[],
    database?: string,
  ): Promise<R[]>;
  /** An outage: stop the server (fast shutdown), keeping its data and port. */
  down(): Promise<void>;
  /** Start it again on the same data, port and socket. */
  up(): Promise<void>;
  /** Stop the server by its PID and delete `dir`; safe to call twice. */
  stop(): Promise<void>;
}

/** Where Debian's `postgresql` package puts the server binaries (the newest version there). */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(path.join(root, v, 'bin', 'postgres')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (!versions.length) {
    throw new Error(
      `no PostgreSQL server under ${root}/*/bin (run scripts/setup.sh: it installs postgresql)`,
    );
  }
  return path.join(root, versions[0]!, 'bin');
}

/**
 * The server may not run as root: as root it runs as the `postgres` user the Debian package
 * creates; as anyone else, as that user.
 */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/**
 * initdb into a fresh /tmp/bw-pg-XXXX, then `postgres` listening on a free 127.0.0.1 port with
 * its unix socket in that folder. Local (socket) connections are trusted, for the test's own
 * superuser queries; TCP connections need a password (scram-sha-256), so a wrong one is refused
 * as in production. Durability is switched off (fsync, synchronous_commit): tests never survive
 * a power cut, and the server starts and writes faster. Resolves once it answers (bounded).
 */
export async function startPostgres(opts: { readyTimeoutMs?: number } = {}): Promise<PostgresHandle> {
  const bin = postgresBinDir();
  const as = serverUser();
  const dir = mkdtempSync('/tmp/bw-pg-');
  const data = path.join(dir, 'data');
  if (as) chownSync(dir, as.uid, as.gid);
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' };
  try {
    execFileSync(
      path.join(bin, 'initdb'),
      ['-D', data, '-U', 'postgres', '-A', 'trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--no-sync'],
      { ...as, cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 },
    );
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`initdb failed: ${err.stderr?.toString() || err.message}`);
  }
  const port = await freePort();
  const user = 'berth';
  // Characters that must be percent-encoded in a URL, so the tests see berth decode and redact them.
  const password = `pw-${randomBytes(6).toString('hex')}@:/%`;
  let pid = 0;
  let forget: () => void = () => undefined;
  let stopped = false;

  const adminClient = () =>
    new pg.Client({
      host: dir,
      port,
      user: 'postgres',
      database: 'postgres',
      connectionTimeoutMillis: 5_000,
    });

  const admin = async <R extends pg.QueryResultRow>(
    sql: string,
    params: unknown[] = [],
    database = 'postgres',
  ) => {
    const c = new pg.Client({ host: dir, port, user: 'postgres', database, connectionTimeoutMillis: 5_000 });
    await c.connect();
    try {
      return (await c.query<R>(sql, params)).rows;
    } finally {
      await c.end();
    }
  };

  const launch = async () => {
    const log = openSync(path.join(dir, 'postgres.log'), 'a');
    if (as) chownSync(path.join(dir, 'postgres.log'), as.uid, as.gid);
    const child = spawn(
      path.join(bin, 'postgres'),
      [
        '-D',
        data,
        '-p',
        String(port),
        '-k',
        dir,
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'fsync=off',
        '-c',
        'synchronous_commit=off',
        '-c',
        'full_page_writes=off',
        '-c',
        'max_connections=60',
        '-c',
        'shared_buffers=32MB',
      ],
      { ...as, cwd: dir, env, detached: true, stdio: ['ignore', log, log] },
    );
    closeSync(log);
    child.unref();
    if (child.pid === undefined) throw new Error('could not start postgres');
    pid = child.pid;
    forget = killOnExit(pid);
    const me = pid;
    try {
      await waitUntil(
        `postgres on 127.0.0.1:${port} to answer`,
        async () => {
          if (!alive(me)) throw new GiveUp('postgres exited');
          const c = adminClient();
          try {
            await c.connect();
            await c.query('SELECT 1');
            return true;
          } finally {
            await c.end().catch(() => undefined);
          }
        },
        { timeoutMs: opts.readyTimeoutMs ?? 30_000, intervalMs: 100 },
      );
    } catch (e) {
      const tail = readTail(path.join(dir, 'postgres.log'));
      await halt();
      throw new Error(`${(e as Error).message}\n${tail}`);
    }
  };

  /** Fast shutdown (SIGINT: clients are disconnected), then immediate, then SIGKILL; by PID. */
  const halt = async () => {
    const me = pid;
    if (!me || !alive(me)) return;
    for (const [sig, ms] of [
      ['SIGINT', 15_000],
      ['SIGQUIT', 5_000],
      ['SIGKILL', 5_000],
    ] as const) {
      try {
        process.kill(me, sig);
      } catch {
        break;
      }
      try {
        await waitUntil(`postgres ${me} to exit after ${sig}`, () => !alive(me), {
          timeoutMs: ms,
          intervalMs: 50,
        });
        break;
      } catch {
        // Try the next, harder signal.
      }
    }
    forget();
    // The postmaster's children notice it is gone; give them a moment to release the port.
    await sleep(50);
  };

  try {
    await launch();
    await admin(`CREATE ROLE ${user} LOGIN PASSWORD '${password.replaceAll("'", "''")}'`);
    await admin(`CREATE DATABASE berth OWNER ${user}`);
  } catch (e) {
    await halt();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  const urlFor = (database: string) =>
    `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
  let dbCount = 0;
  return {
    url: urlFor('berth'),
    host: '127.0.0.1',
    port,
    user,
    password,
    dir,
    get pid() {
      return pid;
    },
    async createDatabase(prefix = 'db') {
      const name = `${prefix.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${++dbCount}_${randomBytes(3).toString('hex')}`;
      await admin(`CREATE DATABASE ${name} OWNER ${user}`);
      return urlFor(name);
    },
    admin,
    down: halt,
    up: launch,
    async stop() {
      if (stopped) return;
      stopped = true;
      await halt();
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}

function readTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '';
  }
}
