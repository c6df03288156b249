// @slow: starts real components (test/world); `npm run test:unit` leaves it out.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tar from 'tar-stream';
import { after, before, test } from 'node:test';
import Docker from 'dockerode';
import { startEngine, type EngineHandle } from '../../test/world/index.js';
import { HostBusyError } from '../model/errors.js';
import { dockerConnection } from './docker.js';
import { STATE_IMAGE, STATE_NAMES } from './docker-state.js';
import type { HostState } from './host-state.js';

// Host state against a real engine (test/world): the lock, the drain marker and the digest key
// are containers in the engine, so every caller of one engine meets the same ones.
let engine: EngineHandle;
let api: Docker;
let tmp: string;

before(async () => {
  engine = await startEngine();
  api = new Docker({ socketPath: engine.dockerHost.replace('unix://', '') });
  tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-state-'));
});

after(async () => {
  await engine?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const stateAt = (endpoint = engine.dockerHost, opts = {}): HostState =>
  dockerConnection({ host: endpoint }).state(opts);

/** The same socket spelled another way: one engine, so one lock. */
const otherSpelling = () => engine.dockerHost.replace(/\/d\.sock$/, '//d.sock');

/** Put a lock container in place as another holder would have left it. */
async function plantLock(holder: object, heartbeat?: Date): Promise<string> {
  await stateAt().lockHolder(); // makes sure nothing is held
  const c = await api.createContainer({
    name: STATE_NAMES.lock,
    Image: STATE_IMAGE,
    Cmd: ['/berth-state'],
    Labels: { 'berth.role': 'lock', 'berth.lock.holder': JSON.stringify(holder) },
  });
  if (heartbeat) {
    const pack = tar.pack();
    pack.entry({ name: 'heartbeat' }, `${heartbeat.toISOString()}\n`);
    pack.finalize();
    await c.putArchive(pack as unknown as NodeJS.ReadableStream, { path: '/' });
  }
  return c.id;
}

async function lockIds(): Promise<string[]> {
  const list = await api.listContainers({ all: true, filters: { name: [STATE_NAMES.lock] } });
  return list.map((c) => c.Id);
}

test('one lock per engine, whatever DOCKER_HOST spelling: the second caller is told who holds it', async () => {
  const a = await stateAt().lock({ command: 'berth apply' });
  try {
    await assert.rejects(stateAt(otherSpelling()).lock({ command: 'berth agent' }), (e: unknown) => {
      assert.ok(e instanceof HostBusyError);
      assert.match(
        e.message,
        /is busy: berth apply \(pid \d+ on [^,]+, user [^)]+\) has held it since 20\d\d-/,
      );
      assert.equal(e.holder?.pid, process.pid);
      return true;
    });
    const seen = await stateAt(otherSpelling()).lockHolder();
    assert.equal(seen?.command, 'berth apply');
    assert.equal(seen?.since, (await a.describe()).since);
    assert.match(seen!.since, /^20\d\d-/);
  } finally {
    await a.release();
  }
  assert.equal(await stateAt().lockHolder(), undefined);
  const b = await stateAt(otherSpelling()).lock({ command: 'berth agent' });
  await b.release();
  await b.release(); // twice is fine
  assert.deepEqual(await lockIds(), []);
});

test('five callers at once: exactly one holds the lock', async () => {
  const results = await Promise.allSettled(
    Array.from({ length: 5 }, (_, i) => stateAt().lock({ command: `berth apply #${i}` })),
  );
  const held = results.filter((r) => r.status === 'fulfilled');
  assert.equal(held.length, 1);
  for (const r of results) {
    if (r.status === 'rejected') assert.ok(r.reason instanceof HostBusyError, String(r.reason));
  }
  await (held[0] as PromiseFulfilledResult<{ release(): Promise<void> }>).value.release();
});

test('a holder on this machine whose process is gone is replaced at once', async () => {
  const dead = spawnSync('true').pid!;
  const boot = (await import('node:fs')).readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  const planted = await plantLock({
    command: 'berth apply',
    machine: os.hostname(),
    pid: dead,
    user: 'root',
    since: new Date().toISOString(),
    boot,
  });
  const l = await stateAt().lock({ command: 'berth apply' });
  assert.notDeepEqual(await lockIds(), [planted]);
  await l.release();
});

test('a PID that now belongs to another process is not taken for the holder', async () => {
  const boot = (await import('node:fs')).readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  // Our own PID is alive, but the holder recorded another start time: the PID was reused.
  await plantLock({
    command: 'berth apply',
    machine: os.hostname(),
    pid: process.pid,
    user: 'root',
    since: new Date().toISOString(),
    boot,
    pidStart: '1',
  });
  const l = await stateAt().lock({ command: 'berth apply' });
  await l.release();
});

test('a holder elsewhere is busy while it renews, gone once it stops renewing', async () => {
  const elsewhere = {
    command: 'berth deploy',
    machine: 'laptop.example',
    pid: 4242,
    user: 'ci',
    since: new Date().toISOString(),
  };
  const info = (await api.info()) as { SystemTime: string };
  const engineNow = Date.parse(info.SystemTime);
  const fresh = await plantLock(elsewhere, new Date(engineNow - 1_000));
  await assert.rejects(
    stateAt().lock({ command: 'berth apply' }),
    /berth deploy \(pid 4242 on laptop\.example/,
  );
  await api.getContainer(fresh).remove({ force: true });

  await plantLock(elsewhere, new Date(engineNow - 120_000));
  const l = await stateAt().lock({ command: 'berth apply' });
  await l.release();
});

test('--wait-lock: a live holder is waited for, and the waiter goes on once it lets go', async () => {
  const a = await stateAt().lock({ command: 'berth apply' });
  setTimeout(() => void a.release(), 300);
  const b = await stateAt().lock({ command: 'berth apply' }, { waitMs: 20_000 });
  await b.release();
});

test('the holder renews its heartbeat on the engine clock', async () => {
  const a = await stateAt(engine.dockerHost, { heartbeatMs: 100 }).lock({ command: 'berth agent' });
  try {
    const read = async () => {
      const has = await api
        .getContainer(STATE_NAMES.lock)
        .infoArchive({ path: '/heartbeat' })
        .then(
          () => true,
          () => false,
        );
      if (!has) return '';
      const stream = (await api
        .getContainer(STATE_NAMES.lock)
        .getArchive({ path: '/heartbeat' })) as NodeJS.ReadableStream;
      const chunks: Buffer[] = [];
      for await (const c of stream) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString('latin1');
    };
    let first: string | undefined;
    for (let i = 0; i < 50 && !first; i++) {
      first = /20\d\d-[\d-]+T[\d:.]+Z/.exec(await read())?.[0];
      if (!first) await new Promise((r) => setTimeout(r, 50));
    }
    let later = first;
    for (let i = 0; i < 50 && later === first; i++) {
      await new Promise((r) => setTimeout(r, 100));
      later = /20\d\d-[\d-]+T[\d:.]+Z/.exec(await read())?.[0];
    }
    assert.ok(first && later && Date.parse(later) > Date.parse(first), `${first} → ${later}`);
  } finally {
    await a.release();
  }
});

test('drain marker: set once with the state before, read by any caller, cleared', async () => {
  const m = stateAt().drainMarker;
  assert.equal(await m.read(), undefined);
  await m.write('maint');
  await stateAt(otherSpelling()).drainMarker.write('drain'); // already set: keeps the first state
  assert.equal(await stateAt(otherSpelling()).drainMarker.read(), 'maint');
  await m.clear();
  await m.clear();
  assert.equal(await m.read(), undefined);
});

test('digest key: made once, the same for every caller, an older key file adopted', async () => {
  const legacy = path.join(tmp, 'secret-digest.key');
  const old = Buffer.alloc(32, 7);
  writeFileSync(legacy, old, { mode: 0o600 });
  const keys = await Promise.all([
    stateAt(engine.dockerHost, { legacyKeyFile: legacy }).digestKey(),
    stateAt(otherSpelling(), { legacyKeyFile: legacy }).digestKey(),
    stateAt().digestKey(),
  ]);
  assert.equal(keys[0]!.length, 32);
  assert.ok(
    keys.every((k) => k.equals(keys[0]!)),
    'every caller gets the one key',
  );
  // The first to create it adopted the old file (callers without the file may have won: then a new key).
  await api.getContainer(STATE_NAMES.state).remove({ force: true });
  const adopted = await stateAt(engine.dockerHost, { legacyKeyFile: legacy }).digestKey();
  assert.ok(adopted.equals(old));
  assert.ok((await stateAt().digestKey()).equals(old));
});
