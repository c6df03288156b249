import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { ExternalError } from '../model/errors.js';
import { openSqliteStore, SCHEMA_VERSION } from './sqlite.js';
import type { Store } from './types.js';

const temps: string[] = [];
after(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'berth-sqlite-'));
  temps.push(d);
  return d;
}

const T = (s: number) => new Date(Date.UTC(2024, 4, 1, 14, 0, s)).toISOString();

async function recordOne(store: Store, service: string, s: number): Promise<void> {
  const applyId = await store.beginApply({ host: 'app-1', ref: 'main', repo: '.', startedAt: T(s) });
  const id = await store.beginAction(applyId, { service, action: 'create', cause: 'new', startedAt: T(s) });
  await store.finishAction(id, { result: 'succeeded', finishedAt: T(s + 1) });
  await store.finishApply(applyId, { result: 'succeeded', finishedAt: T(s + 1) });
}

/** Inspect the file as SQLite sees it, behind the store's back. */
function peek<T>(file: string, fn: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

const schemaOf = (file: string) =>
  peek(file, (db) => db.prepare(`SELECT type, name, sql FROM sqlite_master ORDER BY name`).all());

test('creates missing folders 0700 and the file 0600, in WAL mode at the current schema version', async () => {
  const file = path.join(tempDir(), 'state', 'berth', 'berth.db');
  const store = openSqliteStore(file);
  await recordOne(store, 'api', 0);
  assert.equal(statSync(path.dirname(file)).mode & 0o777, 0o700);
  assert.equal(statSync(path.dirname(path.dirname(file))).mode & 0o777, 0o700);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  await store.close();
  peek(file, (db) => {
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  });
});

test('reopening keeps every record, including one whose process never closed the store', async () => {
  const file = path.join(tempDir(), 'berth.db');
  const first = openSqliteStore(file);
  await recordOne(first, 'api', 0);
  await first.close();

  const second = openSqliteStore(file);
  await recordOne(second, 'web', 10);
  // No close: as if the process was killed after its last write returned.
  const third = openSqliteStore(file);
  assert.deepEqual(
    (await third.history()).map((r) => [r.service, r.result]),
    [
      ['web', 'succeeded'],
      ['api', 'succeeded'],
    ],
  );
  assert.equal((await third.applies()).length, 2);
  await third.close();
  await second.close();
});

test('migrations run once: reopening leaves the schema, the version and the data as they were', async () => {
  const file = path.join(tempDir(), 'berth.db');
  const store = openSqliteStore(file);
  await recordOne(store, 'api', 0);
  await store.close();
  const schema = schemaOf(file);
  assert.ok(schema.length > 0);
  for (let i = 0; i < 3; i++) (await openSqliteStore(file)).close();
  for (let i = 0; i < 3; i++) await openSqliteStore(file).close();
  assert.deepEqual(schemaOf(file), schema);
  peek(file, (db) => assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION));
  const again = openSqliteStore(file);
  assert.equal((await again.history()).length, 1);
  await again.close();
});

test('a record written by a newer berth is refused, not written in an older shape', async () => {
  const file = path.join(tempDir(), 'berth.db');
  await openSqliteStore(file).close();
  const db = new Database(file);
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  assert.throws(
    () => openSqliteStore(file),
    (e: unknown) =>
      e instanceof ExternalError &&
      e.system === 'store' &&
      e.message.includes(file) &&
      /newer than this berth understands/.test(e.message),
  );
});

test('separate processes writing at once, on a file none of them created, lose nothing', async () => {
  const file = path.join(tempDir(), 'berth.db');
  const writer = fileURLToPath(new URL('./testdata/writer.ts', import.meta.url));
  const procs = 4;
  const count = 60;
  const children = Array.from({ length: procs }, (_, i) => {
    const child = spawn(process.execPath, ['--import', 'tsx', writer, file, `host-${i}`, String(count)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const ready = new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const done = new Promise<void>((resolve, reject) =>
      child.on('close', (code) =>
        code === 0 ? resolve() : reject(new Error(`writer ${i}: ${code} ${stderr}`)),
      ),
    );
    return { child, ready, done };
  });
  // All opened (and raced to migrate the new file); now release them together.
  await Promise.race([Promise.all(children.map((c) => c.ready)), Promise.all(children.map((c) => c.done))]);
  for (const c of children) c.child.stdin.end('go\n');
  await Promise.all(children.map((c) => c.done));

  const store = openSqliteStore(file);
  const applies = await store.applies({ limit: 10_000 });
  const actions = await store.history({ limit: 10_000 });
  assert.equal(applies.length, procs * count);
  assert.equal(actions.length, procs * count * 3);
  assert.ok(applies.every((a) => a.result === 'succeeded'));
  assert.ok(actions.every((a) => a.result === 'succeeded' && a.durationMs === 1));
  for (let i = 0; i < procs; i++) {
    assert.equal((await store.history({ host: `host-${i}`, limit: 10_000 })).length, count * 3);
  }
  await store.close();
});

test('two connections in one process interleave their writes without loss', async () => {
  const file = path.join(tempDir(), 'berth.db');
  const a = openSqliteStore(file);
  const b = openSqliteStore(file);
  await Promise.all(Array.from({ length: 20 }, (_, i) => recordOne(i % 2 ? a : b, `svc-${i}`, i * 2)));
  assert.equal((await a.history({ limit: 1000 })).length, 20);
  assert.equal((await b.applies({ limit: 1000 })).length, 20);
  await a.close();
  await b.close();
});

function assertStoreError(fn: () => unknown, file: string, why: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ExternalError, `expected ExternalError, got ${String(e)}`);
    assert.equal(e.system, 'store');
    assert.ok(e.message.includes(file), `message names the path: ${e.message}`);
    assert.match(e.message, why);
    return true;
  });
}

test('a path that is a folder is refused with the path and why', () => {
  const dir = tempDir();
  assertStoreError(() => openSqliteStore(dir), dir, /is not a file/);
});

test('a path under a regular file is refused with the path and why', () => {
  const dir = tempDir();
  writeFileSync(path.join(dir, 'plain'), 'x');
  const file = path.join(dir, 'plain', 'berth.db');
  assertStoreError(() => openSqliteStore(file), file, /is a file, not a folder/);
});

test('a file that is not SQLite is refused and left untouched', () => {
  const file = path.join(tempDir(), 'berth.db');
  writeFileSync(file, 'these are my notes, not a database\n'.repeat(100));
  assertStoreError(() => openSqliteStore(file), file, /not a SQLite database/);
  assert.equal(statSync(file).size, 3500);
});

test('an unwritable folder is refused with the path and why, checked as an unprivileged user', async (t) => {
  const asRoot = process.getuid?.() === 0;
  if (
    asRoot &&
    !reachableByNobody(fileURLToPath(new URL('../../node_modules/tsx/package.json', import.meta.url)))
  ) {
    // A checkout under a private folder (mktemp's 0700) cannot be loaded as nobody.
    t.skip('this checkout is not readable by an unprivileged user');
    return;
  }
  const parent = tempDir();
  chmodSync(parent, 0o755); // nobody may reach the folder, just not write in it
  const dir = path.join(parent, 'locked');
  mkdirSync(dir);
  chmodSync(dir, 0o555);
  const file = path.join(dir, 'berth.db');
  const opener = fileURLToPath(new URL('./testdata/open.ts', import.meta.url));
  // Root writes anywhere, so as root the attempt is made as nobody (65534).
  const asNobody = asRoot ? { uid: 65534, gid: 65534 } : {};
  const out = execFileSync(process.execPath, ['--import', 'tsx', opener, file], {
    ...asNobody,
    env: { ...process.env, HOME: tmpdir() },
    encoding: 'utf8',
  });
  const r = JSON.parse(out) as { ok: boolean; name?: string; system?: string; message?: string };
  assert.equal(r.ok, false);
  assert.equal(r.name, 'ExternalError');
  assert.equal(r.system, 'store');
  assert.ok(r.message?.includes(file), r.message);
  assert.match(r.message!, /its folder cannot be written \(permission denied\)/);
});

test('a relative path is resolved, so the message names the real file', async () => {
  const dir = tempDir();
  const rel = path.relative(process.cwd(), path.join(dir, 'x', 'berth.db'));
  const store = openSqliteStore(rel);
  await store.close();
  assert.ok(statSync(path.join(dir, 'x', 'berth.db')).isFile());
});

/** Whether uid 65534 can read a file, asked of the kernel rather than guessed from modes. */
function reachableByNobody(file: string): boolean {
  try {
    execFileSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(file)}, 4)`], {
      uid: 65534,
      gid: 65534,
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}
