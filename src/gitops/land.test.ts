import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import type { PushedRef } from '../adapters/git.js';
import { ExternalError, UsageError } from '../model/errors.js';
import { land, type Attempt } from './land.js';
import { inTurn } from './turns.js';
import type { BranchFiles, Workspace } from './workspace.js';

/**
 * A workspace whose remote is a script: each read returns the next head, each push the next
 * answer. Any call the script did not expect fails the test.
 */
function scripted(script: { heads: string[]; pushes: PushedRef[]; staleHead?: string }) {
  const calls: string[] = [];
  const heads = [...script.heads];
  const pushes = [...script.pushes];
  const files = (commit: string, fresh: boolean): BranchFiles => ({
    files: new Map([['services/api.yaml', `image: reg/api:${commit}\n`]]),
    commit,
    ref: 'staging',
    branch: 'staging',
    fresh,
  });
  const unexpected = (what: string) => () => {
    throw new Error(`unexpected call: ${what}`);
  };
  const ws: Workspace = {
    label: 'remote',
    async read(branch, opts) {
      if (opts?.fetch === false) {
        calls.push(`read-cached ${branch}`);
        if (!script.staleHead) throw new Error('unexpected cached read');
        return files(script.staleHead, false);
      }
      const head = heads.shift();
      if (!head) throw new Error('unexpected read');
      calls.push(`read ${branch} ${head}`);
      return files(head, true);
    },
    async commit(parent, changes, message) {
      calls.push(`commit on ${parent}: ${changes.map((c) => c.path).join(',')} "${message}"`);
      return `c-${parent}`;
    },
    async push(commit, branch) {
      const r = pushes.shift();
      if (!r) throw new Error('unexpected push');
      calls.push(`push ${commit} ${branch} ${r.ok ? 'ok' : r.reason}`);
      return r;
    },
    async remember(commit) {
      calls.push(`remember ${commit}`);
    },
    readCommit: unexpected('readCommit'),
    readDefault: unexpected('readDefault'),
    modes: unexpected('modes'),
    fileLog: unexpected('fileLog'),
    blobs: unexpected('blobs'),
    isAncestor: unexpected('isAncestor'),
    exclusive: unexpected('exclusive'),
    close: unexpected('close'),
  };
  return { ws, calls };
}

const ok: PushedRef = { ref: 'refs/heads/staging', ok: true, summary: 'a..b' };
const raced: PushedRef = {
  ref: 'refs/heads/staging',
  ok: false,
  summary: '[rejected]',
  reason: 'fetch first',
};
const locked: PushedRef = {
  ref: 'refs/heads/staging',
  ok: false,
  summary: '[remote rejected]',
  reason: "cannot lock ref 'refs/heads/staging': is at 1234abcd but expected 5678ef90",
};
const protectedBranch: PushedRef = {
  ref: 'refs/heads/staging',
  ok: false,
  summary: '[remote rejected]',
  reason: 'pre-receive hook declined',
};

function change(files: BranchFiles): Attempt<string> {
  return {
    kind: 'change',
    changes: [{ path: 'services/api.yaml', content: 'image: reg/api:new\n' }],
    message: `api on ${files.commit}`,
    result: files.commit,
  };
}

const noSleep = async () => undefined;

test('a lost race reads the branch again and recomputes the change on the new head', async () => {
  const { ws, calls } = scripted({ heads: ['h1', 'h2', 'h3'], pushes: [raced, locked, ok] });
  const retries: string[] = [];
  const out = await land(ws, {
    branch: 'staging',
    maxTries: 5,
    compute: change,
    sleep: noSleep,
    onRetry: (n, why) => retries.push(`${n}: ${why}`),
  });
  assert.deepEqual(out, { result: 'h3', base: 'h3', commit: 'c-h3', tries: 3 });
  assert.deepEqual(calls, [
    'read staging h1',
    'commit on h1: services/api.yaml "api on h1"',
    'push c-h1 staging fetch first',
    'read staging h2',
    'commit on h2: services/api.yaml "api on h2"',
    `push c-h2 staging ${locked.reason}`,
    'read staging h3',
    'commit on h3: services/api.yaml "api on h3"',
    'push c-h3 staging ok',
    'remember c-h3',
  ]);
  assert.deepEqual(retries, ['1: [rejected] (fetch first)', `2: [remote rejected] (${locked.reason})`]);
});

test('a push refused for good is not retried and says so', async () => {
  const { ws, calls } = scripted({ heads: ['h1'], pushes: [protectedBranch] });
  await assert.rejects(
    land(ws, { branch: 'staging', maxTries: 5, compute: change, sleep: noSleep }),
    (e: Error) =>
      e instanceof ExternalError &&
      /remote refused the push to staging: \[remote rejected\] \(pre-receive hook declined\); nothing was changed/.test(
        e.message,
      ),
  );
  assert.equal(calls.length, 3);
});

test('gives up after maxTries lost races, saying nothing changed', async () => {
  const { ws } = scripted({ heads: ['h1', 'h2', 'h3'], pushes: [raced, raced, raced] });
  await assert.rejects(
    land(ws, { branch: 'staging', maxTries: 3, compute: change, sleep: noSleep }),
    /gave up after 3 tries: other jobs kept pushing to staging in remote first .*nothing was changed by this run/,
  );
});

test('unchanged makes no commit; a refusal from compute pushes nothing', async () => {
  const a = scripted({ heads: ['h1'], pushes: [] });
  const out = await land(a.ws, {
    branch: 'staging',
    maxTries: 3,
    compute: () => ({ kind: 'unchanged', result: 'same' }),
  });
  assert.deepEqual(out, { result: 'same', base: 'h1', tries: 1 });
  const b = scripted({ heads: ['h1'], pushes: [] });
  await assert.rejects(
    land(b.ws, {
      branch: 'staging',
      maxTries: 3,
      compute: () => {
        throw new UsageError('lower build');
      },
    }),
    /lower build/,
  );
  assert.deepEqual(b.calls, ['read staging h1']);
});

test('a stale cached read is only trusted by a push that lands', async () => {
  // Stale cache, the push is refused: read the remote and go again, without counting a lost race.
  const a = scripted({ heads: ['h2'], pushes: [raced, ok], staleHead: 'h1' });
  const retries: number[] = [];
  const out = await land(a.ws, {
    branch: 'staging',
    maxTries: 1,
    trustCache: true,
    compute: change,
    sleep: noSleep,
    onRetry: (n) => retries.push(n),
  });
  assert.equal(out.commit, 'c-h2');
  assert.deepEqual(retries, []);
  assert.deepEqual(a.calls.slice(0, 3), [
    'read-cached staging',
    'commit on h1: services/api.yaml "api on h1"',
    'push c-h1 staging fetch first',
  ]);
  // "Unchanged" or a refusal on a stale read is checked again on a fresh one.
  const b = scripted({ heads: ['h2'], pushes: [ok], staleHead: 'h1' });
  const seen: boolean[] = [];
  await land(b.ws, {
    branch: 'staging',
    maxTries: 1,
    trustCache: true,
    compute: (f) => {
      seen.push(f.fresh);
      if (!f.fresh) throw new UsageError('looks lower on the stale copy');
      return change(f);
    },
  });
  assert.deepEqual(seen, [false, true]);
});

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'berth-turns-'));
  dirs.push(d);
  return d;
}

test('turns: two writers of one repo never overlap; other repos do not wait', async () => {
  const dir = tmp();
  let inside = 0;
  let most = 0;
  const work = async () => {
    inside++;
    most = Math.max(most, inside);
    await new Promise((r) => setTimeout(r, 30));
    inside--;
  };
  await Promise.all(Array.from({ length: 4 }, () => inTurn(dir, 'repo-a', work, { maxWaitMs: 60_000 })));
  assert.equal(most, 1);
  let waited = false;
  await inTurn(
    dir,
    'repo-a',
    async () => {
      await inTurn(dir, 'repo-b', async () => undefined, {
        maxWaitMs: 60_000,
        onWait: () => (waited = true),
      });
    },
    { maxWaitMs: 60_000 },
  );
  assert.equal(waited, false);
});

test("turns: a dead holder's turn is taken over; a long wait goes ahead without one", async () => {
  const dir = tmp();
  // A turn left by a process that no longer exists.
  const { createHash } = await import('node:crypto');
  const lock = path.join(dir, `${createHash('sha256').update('repo').digest('hex').slice(0, 24)}.turn`);
  mkdirSync(lock);
  writeFileSync(path.join(lock, 'pid'), '999999999\n');
  let ran = false;
  await inTurn(dir, 'repo', async () => void (ran = true), { maxWaitMs: 5_000 });
  assert.ok(ran);
  // A live holder (this process) that never lets go: the waiter gives up waiting, not working.
  mkdirSync(lock);
  writeFileSync(path.join(lock, 'pid'), `${process.pid}\n`);
  let clock = 0;
  let told = 0;
  const result = await inTurn(dir, 'repo', async () => 'went ahead', {
    maxWaitMs: 1_000,
    now: () => clock,
    sleep: async () => void (clock += 400),
    onWait: () => told++,
  });
  assert.equal(result, 'went ahead');
  assert.equal(told, 1);
});

test('turns: the holder sees that another job waits for it, and the waiter knows it waited', async () => {
  const dir = tmp();
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  let waiterStarted!: () => void;
  const started = new Promise<void>((r) => (waiterStarted = r));
  let waiter: Promise<boolean> | undefined;
  const seen = await inTurn(
    dir,
    'repo',
    async (turn) => {
      const before = await turn.othersWaiting();
      waiter = inTurn(dir, 'repo', async (t) => t.waited, {
        maxWaitMs: 60_000,
        onWait: () => waiterStarted(),
      });
      await started;
      let now = false;
      for (let i = 0; i < 100 && !now; i++) {
        now = await turn.othersWaiting();
        if (!now) await sleep(20);
      }
      return [before, now, turn.waited];
    },
    { maxWaitMs: 60_000 },
  );
  assert.deepEqual(seen, [false, true, false]);
  assert.equal(await waiter, true);
});
