/**
 * The contract every Store implementation keeps, run against each one. The PostgreSQL store
 * adds itself to `implementations`; nothing else here should need to change.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../model/errors.js';
import { openSqliteStore } from './sqlite.js';
import type { BeginAction, Store } from './types.js';

const temps: string[] = [];
after(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));

const implementations: Array<{ name: string; open: () => Promise<Store> }> = [
  {
    name: 'sqlite',
    open: async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'berth-store-'));
      temps.push(dir);
      return openSqliteStore(path.join(dir, 'berth.db'));
    },
  },
];

const T = (minute: number, second = 0) => new Date(Date.UTC(2024, 4, 1, 14, minute, second)).toISOString();

function action(over: Partial<BeginAction> = {}): BeginAction {
  return { service: 'api', action: 'create', cause: 'new service', startedAt: T(0), ...over };
}

/** One finished apply on `host` with the given actions, all succeeded. */
async function applyWith(
  store: Store,
  host: string,
  startedAt: string,
  actions: BeginAction[],
): Promise<number> {
  const applyId = await store.beginApply({ host, ref: 'production', repo: '/srv/state', startedAt });
  for (const a of actions) {
    const id = await store.beginAction(applyId, { ...a, host });
    await store.finishAction(id, { result: 'succeeded', finishedAt: a.startedAt });
  }
  await store.finishApply(applyId, { result: 'succeeded', finishedAt: startedAt });
  return applyId;
}

for (const impl of implementations) {
  describe(`Store contract: ${impl.name}`, () => {
    test('an apply and its actions come back exactly as recorded, with the duration worked out', async () => {
      const store = await impl.open();
      const applyId = await store.beginApply({
        host: 'app-1',
        stateCommit: 'c0ffee12',
        ref: 'production',
        repo: 'ssh://git@example.com/state.git',
        startedAt: T(3),
      });
      const actionId = await store.beginAction(applyId, {
        service: 'api',
        action: 'recreate',
        cause: 'tag :1.4 now sha256:ab12…',
        fromImage: '127.0.0.1:5000/team/api:1.4.2',
        toImage: '127.0.0.1:5000/team/api:1.4.3',
        fromDigest: 'sha256:aaaa',
        gitCommit: '3f2a1c9d',
        buildNumber: '123',
        stateCommit: 'c0ffee12',
        host: 'app-1',
        startedAt: T(3, 1),
      });

      const [running] = await store.history();
      assert.equal(running?.result, 'running');
      assert.equal(running?.finishedAt, undefined);

      await store.finishAction(actionId, {
        result: 'failed',
        message: 'health check timed out',
        finishedAt: T(3, 43),
        toDigest: 'sha256:bbbb',
      });
      await store.finishApply(applyId, { result: 'failed', message: 'failed: api', finishedAt: T(4) });

      assert.deepEqual(await store.history(), [
        {
          id: actionId,
          applyId,
          service: 'api',
          action: 'recreate',
          cause: 'tag :1.4 now sha256:ab12…',
          fromImage: '127.0.0.1:5000/team/api:1.4.2',
          toImage: '127.0.0.1:5000/team/api:1.4.3',
          fromDigest: 'sha256:aaaa',
          toDigest: 'sha256:bbbb',
          gitCommit: '3f2a1c9d',
          buildNumber: '123',
          stateCommit: 'c0ffee12',
          host: 'app-1',
          result: 'failed',
          message: 'health check timed out',
          startedAt: T(3, 1),
          finishedAt: T(3, 43),
          durationMs: 42_000,
          ref: 'production',
          repo: 'ssh://git@example.com/state.git',
        },
      ]);
      assert.deepEqual(await store.applies(), [
        {
          id: applyId,
          host: 'app-1',
          stateCommit: 'c0ffee12',
          ref: 'production',
          repo: 'ssh://git@example.com/state.git',
          startedAt: T(3),
          finishedAt: T(4),
          result: 'failed',
          message: 'failed: api',
        },
      ]);
      await store.close();
    });

    test('absent optional fields stay absent, so --json output has no nulls', async () => {
      const store = await impl.open();
      const applyId = await store.beginApply({ ref: 'main', repo: '.', startedAt: T(0) });
      await store.beginAction(applyId, action());
      const rows = await store.history();
      assert.deepEqual(Object.keys(rows[0]!).sort(), [
        'action',
        'applyId',
        'cause',
        'id',
        'ref',
        'repo',
        'result',
        'service',
        'startedAt',
      ]);
      assert.deepEqual(JSON.parse(JSON.stringify(rows)), rows);
      assert.deepEqual(await store.applies(), [
        { id: applyId, ref: 'main', repo: '.', startedAt: T(0), result: 'running' },
      ]);
      await store.close();
    });

    test('a digest known at the start is kept when the finish does not name one', async () => {
      const store = await impl.open();
      const applyId = await store.beginApply({ ref: 'main', repo: '.', startedAt: T(0) });
      const id = await store.beginAction(applyId, action({ toDigest: 'sha256:cccc' }));
      await store.finishAction(id, { result: 'succeeded', finishedAt: T(1) });
      assert.equal((await store.history())[0]?.toDigest, 'sha256:cccc');
      await store.close();
    });

    test('newest first by start time, whatever the insertion order or UTC offset', async () => {
      const store = await impl.open();
      await applyWith(store, 'h', T(10), [action({ service: 'b', startedAt: T(10) })]);
      await applyWith(store, 'h', T(5), [action({ service: 'a', startedAt: T(5) })]);
      // 16:20+02:00 is 14:20Z: the newest, though written with another offset.
      await applyWith(store, 'h', '2024-05-01T16:20:00+02:00', [
        action({ service: 'c', startedAt: '2024-05-01T16:20:00+02:00' }),
        // Same instant: insertion order breaks the tie, later first.
        action({ service: 'd', startedAt: '2024-05-01T16:20:00+02:00' }),
      ]);
      const rows = await store.history();
      assert.deepEqual(
        rows.map((r) => r.service),
        ['d', 'c', 'b', 'a'],
      );
      assert.equal(rows[0]?.startedAt, T(20), 'stored in canonical UTC form');
      assert.deepEqual(
        (await store.applies()).map((a) => a.startedAt),
        [T(20), T(10), T(5)],
      );
      await store.close();
    });

    test('filters by service and host, together, and limits to the newest N', async () => {
      const store = await impl.open();
      await applyWith(store, 'app-1', T(1), [
        action({ service: 'api,web', action: 'pull', startedAt: T(1) }),
        action({ service: 'api', startedAt: T(2) }),
        action({ service: 'web', startedAt: T(3) }),
      ]);
      await applyWith(store, 'app-2', T(4), [action({ service: 'web', startedAt: T(4) })]);
      await applyWith(store, 'app-2', T(5), [
        action({ service: 'my_svc', startedAt: T(5) }),
        action({ service: 'myXsvc', startedAt: T(6) }),
      ]);
      const ids = (rows: Array<{ service: string; host?: string; startedAt: string }>) =>
        rows.map((r) => `${r.host}/${r.service}@${r.startedAt.slice(14, 16)}`);

      assert.deepEqual(ids(await store.history({ service: 'web' })), [
        'app-2/web@04',
        'app-1/web@03',
        'app-1/api,web@01',
      ]);
      assert.deepEqual(ids(await store.history({ service: 'web', host: 'app-1' })), [
        'app-1/web@03',
        'app-1/api,web@01',
      ]);
      assert.deepEqual(ids(await store.history({ host: 'app-2' })), [
        'app-2/myXsvc@06',
        'app-2/my_svc@05',
        'app-2/web@04',
      ]);
      // Part of a name is not the name; `_` is a letter here, not LIKE's wildcard.
      assert.deepEqual(await store.history({ service: 'we' }), []);
      assert.deepEqual(ids(await store.history({ service: 'my_svc' })), ['app-2/my_svc@05']);
      assert.deepEqual(await store.history({ host: 'nowhere' }), []);
      assert.deepEqual(ids(await store.history({ limit: 2 })), ['app-2/myXsvc@06', 'app-2/my_svc@05']);
      assert.equal((await store.applies({ limit: 1 })).length, 1);
      await store.close();
    });

    test('berth bugs are refused loudly: unknown ids, non-timestamps, a nonsense limit', async () => {
      const store = await impl.open();
      await assert.rejects(
        store.finishApply(999, { result: 'succeeded', finishedAt: T(0) }),
        /no apply with id 999/,
      );
      await assert.rejects(
        store.finishAction(999, { result: 'succeeded', finishedAt: T(0) }),
        /no action with id 999/,
      );
      await assert.rejects(store.beginAction(999, action()));
      await assert.rejects(
        store.beginApply({ ref: 'main', repo: '.', startedAt: 'yesterday' }),
        /startedAt is not an ISO timestamp: "yesterday"/,
      );
      await assert.rejects(store.history({ limit: Number.NaN }), UsageError);
      await assert.rejects(store.applies({ limit: 0 }), UsageError);
      assert.deepEqual(await store.applies(), [], 'nothing half-written by the refused calls');
      await store.close();
    });

    test('close is idempotent and a closed store refuses work', async () => {
      const store = await impl.open();
      await store.close();
      await store.close();
      await assert.rejects(store.history());
    });
  });
}
