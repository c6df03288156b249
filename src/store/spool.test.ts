import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { Spool, SpooledStore } from './spool.js';
import { openSqliteStore } from './sqlite.js';
import { StoreUnavailableError, type Store } from './types.js';

// The spool against a real SQLite store behind a switch that makes it "unreachable" the way the
// PostgreSQL store reports an outage (StoreUnavailableError). The PostgreSQL side of outages is
// in postgres.test.ts and test/cli/fleet.test.ts.

const temps: string[] = [];
after(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'berth-spool-'));
  temps.push(d);
  return d;
}

const T = (s: number) => new Date(Date.UTC(2024, 4, 1, 14, 0, s)).toISOString();

/** A store whose writes fail as an outage while `down` is set, or after `failAfter` more calls. */
function switchable(inner: Store) {
  const state = { down: false, failAfter: Infinity, calls: 0 };
  const gate = () => {
    state.calls++;
    if (state.down || state.failAfter-- <= 0)
      throw new StoreUnavailableError('connect ECONNREFUSED 127.0.0.1:5432');
  };
  const store: Store = {
    beginApply: async (a) => (gate(), inner.beginApply(a)),
    finishApply: async (id, r) => (gate(), inner.finishApply(id, r)),
    beginAction: async (id, a) => (gate(), inner.beginAction(id, a)),
    finishAction: async (id, r) => (gate(), inner.finishAction(id, r)),
    history: (q) => inner.history(q),
    applies: (q) => inner.applies(q),
    deploys: (q) => inner.deploys(q),
    close: async () => undefined,
  };
  return { store, state };
}

function setup() {
  const dir = tempDir();
  const db = openSqliteStore(path.join(dir, 'berth.db'));
  const { store: flaky, state } = switchable(db);
  const spool = new Spool(path.join(dir, 'spool'));
  const notices: string[] = [];
  const spooled = new SpooledStore(flaky, spool, (m) => notices.push(m));
  return { dir, db, flaky, state, spool, spooled, notices };
}

/** An apply as the executor records one: a pull, a recreate, then the end. */
async function anApply(store: Store, onStep: (i: number) => void = () => undefined): Promise<number> {
  onStep(0);
  const applyId = await store.beginApply({
    host: 'app-1',
    ref: 'main',
    repo: '.',
    startedAt: T(0),
    command: 'berth apply',
  });
  onStep(1);
  const pull = await store.beginAction(applyId, {
    service: 'web',
    action: 'pull',
    cause: 'new tag',
    startedAt: T(1),
  });
  onStep(2);
  await store.finishAction(pull, { result: 'succeeded', finishedAt: T(2) });
  onStep(3);
  const rec = await store.beginAction(applyId, {
    service: 'web',
    action: 'recreate',
    cause: 'image',
    startedAt: T(3),
  });
  onStep(4);
  await store.finishAction(rec, { result: 'succeeded', finishedAt: T(5), toDigest: 'sha256:beef' });
  onStep(5);
  await store.finishApply(applyId, { result: 'succeeded', finishedAt: T(6) });
  return applyId;
}

/** What the record holds, without ids (which differ between a direct write and a replay). */
async function recorded(db: Store) {
  const applies = (await db.applies({ limit: 100 })).map(({ id: _id, ...a }) => a);
  const steps = (await db.history({ limit: 100 })).map(({ id: _id, applyId: _a, ...r }) => r);
  return { applies, steps };
}

test('the database going away mid-apply: the rest waits in the spool, then the record is whole, once', async () => {
  const ref = setup();
  await anApply(ref.spooled);
  const expected = await recorded(ref.db);

  for (let at = 0; at <= 5; at++) {
    const s = setup();
    const applyId = await anApply(s.spooled, (i) => (s.state.down = i >= at));
    assert.equal(applyId < 0, at === 0, 'an apply kept from its start has a local id');
    assert.equal(s.spooled.spooledFiles().length, 1);
    assert.match(s.notices[0]!, /ECONNREFUSED.*kept in .*spool.*written to the record when it answers again/);
    assert.deepEqual(s.spool.waiting().length, 1, 'sealed once the apply ended');
    s.state.down = false;
    assert.deepEqual(await s.spool.flush(s.flaky), { written: 1, waiting: 0 });
    assert.deepEqual(await recorded(s.db), expected, `outage from step ${at}`);
    assert.deepEqual(readdirSync(s.spool.dir), []);
    // A second replay of the same outcome (another process had the file too) adds nothing.
    assert.deepEqual(await s.spool.flush(s.flaky), { written: 0, waiting: 0 });
    await s.db.close();
  }
  await ref.db.close();
});

test('a replay cut short by another outage leaves the file, and the next one does not double rows', async () => {
  const ref = setup();
  await anApply(ref.spooled);
  const expected = await recorded(ref.db);
  for (let cut = 0; cut < 6; cut++) {
    const s = setup();
    s.state.down = true;
    await anApply(s.spooled);
    s.state.down = false;
    s.state.failAfter = cut;
    const first = await s.spool.flush(s.flaky);
    assert.equal(first.written, 0);
    assert.equal(first.waiting, 1);
    assert.match(first.error ?? '', /ECONNREFUSED/);
    assert.deepEqual(
      readdirSync(s.spool.dir).map((f) => f.replace(/^[0-9a-f-]{36}/, 'KEY')),
      ['KEY.jsonl'],
      'back as it was, for the next try',
    );
    s.state.failAfter = Infinity;
    assert.deepEqual(await s.spool.flush(s.flaky), { written: 1, waiting: 0 });
    assert.deepEqual(await recorded(s.db), expected, `cut after ${cut} writes`);
    await s.db.close();
  }
  await ref.db.close();
});

test('two flushes at once write each outcome once', async () => {
  const s = setup();
  s.state.down = true;
  for (let i = 0; i < 5; i++) await anApply(s.spooled);
  s.state.down = false;
  const [a, b] = await Promise.all([s.spool.flush(s.flaky), s.spool.flush(s.flaky)]);
  assert.equal(a.written + b.written, 5);
  assert.equal((await s.db.applies()).length, 5);
  assert.equal((await s.db.history()).length, 10);
  await s.db.close();
});

test("a file left by a killed apply is replayed, with its torn last line dropped; a live apply's is not", async () => {
  const s = setup();
  s.state.down = true;
  const id = await s.spooled.beginApply({ host: 'h', ref: 'main', repo: '.', startedAt: T(0) });
  await s.spooled.beginAction(id, { service: 'web', action: 'recreate', cause: 'x', startedAt: T(1) });
  // This process still runs: its open apply is not anyone's to replay yet.
  assert.deepEqual(s.spool.waiting(), []);
  const [part] = readdirSync(s.spool.dir);
  const dead = part!.replace(`.${process.pid}.part`, '.999999999.part');
  renameSync(path.join(s.spool.dir, part!), path.join(s.spool.dir, dead));
  writeFileSync(
    path.join(s.spool.dir, dead),
    readFileSync(path.join(s.spool.dir, dead), 'utf8') + '{"op":"fin',
  );
  assert.deepEqual(s.spool.waiting(), [dead]);
  s.state.down = false;
  assert.deepEqual(await s.spool.flush(s.flaky), { written: 1, waiting: 0 });
  const [apply] = await s.db.applies();
  assert.equal(apply?.result, 'running', 'recorded as far as it got, as a direct write would be');
  assert.equal((await s.db.history())[0]?.action, 'recreate');
  await s.db.close();
});

test('close seals what went to the spool and writes it when the record answers again', async () => {
  const s = setup();
  s.state.down = true;
  const id = await s.spooled.beginApply({ host: 'h', ref: 'main', repo: '.', startedAt: T(0) });
  s.state.down = false;
  // The apply stays in the spool to its end, even though the record is back.
  await s.spooled.finishApply(id, { result: 'failed', message: 'x', finishedAt: T(1) });
  assert.equal((await s.db.applies()).length, 0);
  await s.spooled.close();
  assert.equal((await s.db.applies())[0]?.result, 'failed');
  assert.match(s.notices.at(-1)!, /1 apply outcome\(s\) written from the spool/);
  assert.deepEqual(readdirSync(s.spool.dir), []);
  await s.db.close();
});

test('an error that is not an outage is not hidden in the spool', async () => {
  const s = setup();
  await assert.rejects(
    s.spooled.beginApply({ ref: 'main', repo: '.', startedAt: 'yesterday' }),
    /not an ISO timestamp/,
  );
  await assert.rejects(
    s.spooled.finishApply(424242, { result: 'succeeded', finishedAt: T(0) }),
    /no apply with id 424242/,
  );
  assert.deepEqual(s.spool.waiting(), []);
  await s.db.close();
});

test('a file the record refuses for another reason is set aside and does not block the others', async () => {
  const s = setup();
  s.state.down = true;
  await anApply(s.spooled);
  await anApply(s.spooled);
  const [first] = s.spool.waiting();
  // A file that names a time the record cannot take: not an outage, and no retry will fix it.
  const file = path.join(s.spool.dir, first!);
  writeFileSync(file, readFileSync(file, 'utf8').replace(/"startedAt":"[^"]+"/, '"startedAt":"not a time"'));
  s.state.down = false;
  const r = await s.spool.flush(s.flaky);
  assert.equal(r.written, 1);
  assert.equal(r.waiting, 0);
  assert.equal(r.rejected?.length, 1);
  assert.match(r.rejected![0]!.error, /startedAt is not an ISO timestamp/);
  assert.ok(r.rejected![0]!.file.endsWith('.rejected'));
  assert.equal((await s.db.applies()).length, 1);
  await s.db.close();
});
