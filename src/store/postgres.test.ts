// @slow: starts a real PostgreSQL (test/world/postgres.ts); `npm run test:unit` leaves it out.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { freePort } from '../../test/world/proc.js';
import { startPostgres, type PostgresHandle } from '../../test/world/postgres.js';
import { ExternalError, UsageError } from '../model/errors.js';
import { storeContract } from './contract.js';
import { openPostgresStore, PG_SCHEMA_VERSION, type PostgresStore } from './postgres.js';
import { checkStoreLocation } from './registry.js';
import { StoreUnavailableError } from './types.js';

// The store contract against a real PostgreSQL server, started and stopped (by PID) here; each
// store under test gets a database of its own.
let server: PostgresHandle | undefined;
const opened: PostgresStore[] = [];
let starting: Promise<PostgresHandle> | undefined;
const pgServer = () => (starting ??= startPostgres().then((s) => (server = s)));

before(async () => {
  await pgServer();
});
after(async () => {
  await Promise.all(opened.map((s) => s.close()));
  await server?.stop();
});

storeContract({
  name: 'postgres',
  open: async () => {
    const s = await pgServer();
    const store = await openPostgresStore(await s.createDatabase('contract'));
    opened.push(store);
    return store;
  },
});

/** Run `fn`, expect it to reject, and return the error for closer looks. */
async function failure(fn: () => Promise<unknown>): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    return e as Error;
  }
  assert.fail('expected a failure');
}

function assertNoPassword(text: string, s: PostgresHandle): void {
  assert.ok(!text.includes(s.password), `the password shows in: ${text}`);
  assert.ok(!text.includes(encodeURIComponent(s.password)), `the encoded password shows in: ${text}`);
}

describe('postgres store on its own', () => {
  test('several processes opening a new database at once migrate it once and all write', async () => {
    const s = await pgServer();
    const url = await s.createDatabase('race');
    const script = fileURLToPath(new URL('./testdata/pg-open.ts', import.meta.url));
    const children = Array.from({ length: 4 }, (_, i) => {
      const child = spawn(process.execPath, ['--import', 'tsx', script, url, `h${i}`], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const ready = new Promise<void>((r) => child.stdout.once('data', () => r()));
      const done = new Promise<string>((r) => child.on('close', () => r(out)));
      return { child, ready, done };
    });
    await Promise.race([Promise.all(children.map((c) => c.ready)), Promise.all(children.map((c) => c.done))]);
    for (const c of children) c.child.stdin.end('go\n');
    const outs = await Promise.all(children.map((c) => c.done));
    for (const o of outs) assert.match(o, /\{"ok":true\}/, o);
    const db = new URL(url).pathname.slice(1);
    const [v] = await s.admin<{ version: number }>('SELECT version FROM berth.schema_version', [], db);
    assert.deepEqual(
      (await s.admin<{ n: string }>('SELECT count(*) AS n FROM berth.schema_version', [], db))[0]?.n,
      '1',
    );
    assert.equal(v?.version, PG_SCHEMA_VERSION);
    const [count] = await s.admin<{ n: string }>('SELECT count(*) AS n FROM berth.applies', [], db);
    assert.equal(count?.n, '4');
  });

  test('a database of a newer schema version is refused before anything is written', async () => {
    const s = await pgServer();
    const url = await s.createDatabase('newer');
    await (await openPostgresStore(url)).close();
    const db = new URL(url).pathname.slice(1);
    await s.admin('UPDATE berth.schema_version SET version = $1', [PG_SCHEMA_VERSION + 1], db);
    const e = await failure(() => openPostgresStore(url));
    assert.ok(e instanceof ExternalError && !(e instanceof StoreUnavailableError), String(e));
    assert.match(e.message, /has schema version 2, newer than this berth understands \(1\); upgrade berth/);
    assert.ok(e.message.includes(`postgres://berth:***@127.0.0.1:${s.port}/${db}`), e.message);
    assertNoPassword(e.message, s);
    const [count] = await s.admin<{ n: string }>('SELECT count(*) AS n FROM berth.applies', [], db);
    assert.equal(count?.n, '0');
  });

  test('a wrong password is refused with a hint, and no password is printed', async () => {
    const s = await pgServer();
    const wrong = s.url.replace(encodeURIComponent(s.password), 'not-the-password');
    const e = await failure(() => openPostgresStore(wrong));
    assert.ok(e instanceof ExternalError && !(e instanceof StoreUnavailableError), String(e));
    assert.match(e.message, /password authentication failed for user "berth"/);
    assert.match(e.message, /check the user and the password: in the URL, PGPASSWORD or ~\/\.pgpass/);
    assert.ok(!e.message.includes('not-the-password'), e.message);
    assertNoPassword(e.message, s);
  });

  test('the password may come from PGPASSWORD or a .pgpass file instead of the URL', async (t) => {
    const s = await pgServer();
    const bare = `postgres://berth@127.0.0.1:${s.port}/berth`;
    const saved = { PGPASSWORD: process.env.PGPASSWORD, PGPASSFILE: process.env.PGPASSFILE };
    t.after(() => {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    });
    delete process.env.PGPASSFILE;
    process.env.PGPASSWORD = s.password;
    const viaEnv = await openPostgresStore(bare);
    assert.deepEqual(await viaEnv.applies(), []);
    await viaEnv.close();

    delete process.env.PGPASSWORD;
    const dir = mkdtempSync(path.join(tmpdir(), 'berth-pgpass-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const pgpass = path.join(dir, '.pgpass');
    // .pgpass escapes ":" and "\\" in its fields.
    writeFileSync(pgpass, `127.0.0.1:${s.port}:berth:berth:${s.password.replace(/[:\\]/g, '\\$&')}\n`, {
      mode: 0o600,
    });
    process.env.PGPASSFILE = pgpass;
    const viaFile = await openPostgresStore(bare);
    assert.deepEqual(await viaFile.applies(), []);
    await viaFile.close();
  });

  test('malformed URLs are refused before connecting, naming what is wrong and hiding the password', () => {
    const cases: Array<[string, RegExp]> = [
      ['postgres://berth:sekrit-pw@127.0.0.1:notaport/db', /not a valid PostgreSQL URL/],
      ['postgres://berth:sekrit-pw@127.0.0.1/db/extra', /"db\/extra" is not a database name/],
      [
        'postgres://berth:sekrit-pw@127.0.0.1/db?sslmod=require',
        /unknown parameter sslmod \(known: host, port, sslmode/,
      ],
      [
        'postgres://berth:sekrit-pw@127.0.0.1/db?connect_timeout=soon',
        /connect_timeout must be a whole number/,
      ],
      ['postgresql://berth:sekrit-pw@[::1/db', /not a valid PostgreSQL URL/],
    ];
    for (const [url, why] of cases) {
      assert.throws(
        () => checkStoreLocation(url),
        (e: unknown) => {
          assert.ok(e instanceof UsageError, `${url}: ${String(e)}`);
          assert.match(e.message, why);
          assert.match(e.message, /^--store \(or BERTH_STORE\) postgres(ql)?:\/\/berth:\*\*\*@/);
          assert.ok(!e.message.includes('sekrit-pw'), e.message);
          return true;
        },
      );
    }
  });

  test('a server that cannot be reached: the store opens, and each call is an outage, bounded', async () => {
    const port = await freePort();
    const store = await openPostgresStore(`postgres://berth:sekrit-pw@127.0.0.1:${port}/berth`);
    const e = await failure(() => store.history());
    assert.ok(e instanceof StoreUnavailableError, String(e));
    assert.match(
      e.message,
      new RegExp(
        `(opening the record|reading history) in postgres://berth:\\*\\*\\*@127\\.0\\.0\\.1:${port}/berth failed: .*ECONNREFUSED`,
      ),
    );
    assert.ok(!e.message.includes('sekrit-pw'));
    await store.close();
  });

  test('the server going away and coming back: calls fail as outages meanwhile, then work again', async () => {
    const s = await pgServer();
    const store = await openPostgresStore(await s.createDatabase('restart'));
    opened.push(store);
    const id = await store.beginApply({ ref: 'main', repo: '.', startedAt: new Date().toISOString() });
    await s.down();
    const e = await failure(() =>
      store.finishApply(id, { result: 'succeeded', finishedAt: new Date().toISOString() }),
    );
    assert.ok(e instanceof StoreUnavailableError, String(e));
    await s.up();
    await store.finishApply(id, { result: 'succeeded', finishedAt: new Date().toISOString() });
    assert.equal((await store.applies())[0]?.result, 'succeeded');
  });

  test('every statement has a time limit: a stuck one fails as an outage', async () => {
    const s = await pgServer();
    const store = await openPostgresStore(`${await s.createDatabase('slow')}?statement_timeout=200`);
    opened.push(store);
    const e = await failure(() => store.withClient('sleeping', (c) => c.query('SELECT pg_sleep(5)')));
    assert.ok(e instanceof StoreUnavailableError, String(e));
    assert.match(e.message, /canceling statement due to statement timeout/);
  });

  test('the pool is bounded: many calls at once share a few connections', async () => {
    const s = await pgServer();
    const url = await s.createDatabase('pool');
    const store = await openPostgresStore(url);
    opened.push(store);
    let peak = 0;
    const db = new URL(url).pathname.slice(1);
    const watch = async () => {
      const [r] = await s.admin<{ n: string }>(
        `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'berth'`,
        [db],
      );
      peak = Math.max(peak, Number(r?.n));
    };
    await Promise.all([
      ...Array.from({ length: 30 }, () => store.withClient('x', (c) => c.query('SELECT pg_sleep(0.05)'))),
      watch(),
      new Promise((r) => setTimeout(r, 100)).then(watch),
    ]);
    assert.ok(peak >= 1 && peak <= 4, `peak ${peak} connections`);
  });

  test('a lease outlives a server restart: its holder gets a full lifetime to renew it', async () => {
    const s = await pgServer();
    const store = await openPostgresStore(await s.createDatabase('lease'));
    opened.push(store);
    const req = (holder: string) => ({
      scope: 'x/staging',
      groups: [{ name: 'app', cap: 1 }],
      holder,
      command: 'berth apply',
      ttlMs: 3_000,
    });
    const held = await store.leases.tryAcquire(req('app-1'));
    assert.ok(held.ok);
    await s.down();
    // Down for longer than the lease's lifetime: nobody could renew or take it meanwhile.
    await new Promise((r) => setTimeout(r, 3_500));
    await s.up();
    assert.equal((await store.leases.tryAcquire(req('app-2'))).ok, false, 'still held after the restart');
    assert.equal(await store.leases.renew(req('app-1'), held.token), true, 'and its holder renews it');
  });
});
