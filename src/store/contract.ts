/**
 * The contract every Store implementation keeps, run against each one: SQLite in
 * contract.test.ts, a real PostgreSQL in postgres.test.ts. `open` gives a new, empty store
 * each time.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { UsageError } from '../model/errors.js';
import { takeLease, type LeaseBackend, type LeaseRequest } from './leases.js';
import type { BeginAction, Store } from './types.js';

/** One Store implementation under test: `open` returns a new, empty store. */
export interface StoreImplementation {
  name: string;
  open: () => Promise<Store>;
}

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

/** Register the contract's tests for one implementation. */
export function storeContract(impl: StoreImplementation): void {
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

  describe(`Store contract (fleet record): ${impl.name}`, () => {
    test('who applied it, where and as part of which deploy come back with the apply and its steps', async () => {
      const store = await impl.open();
      const applyId = await store.beginApply({
        host: 'app-1',
        stateCommit: 'c0ffee12',
        ref: 'staging',
        repo: '/srv/state',
        startedAt: T(1),
        deployId: 'd-42',
        env: 'staging',
        command: 'berth deploy',
        key: 'k-apply-1',
      });
      const id = await store.beginAction(
        applyId,
        action({ host: 'app-1', key: 'k-action-1', startedAt: T(1) }),
      );
      await store.finishAction(id, { result: 'succeeded', finishedAt: T(2) });
      await store.finishApply(applyId, { result: 'succeeded', finishedAt: T(2) });
      const [apply] = await store.applies();
      assert.deepEqual(apply, {
        id: applyId,
        deployId: 'd-42',
        env: 'staging',
        command: 'berth deploy',
        host: 'app-1',
        stateCommit: 'c0ffee12',
        ref: 'staging',
        repo: '/srv/state',
        startedAt: T(1),
        finishedAt: T(2),
        result: 'succeeded',
      });
      const [row] = await store.history();
      assert.equal(row?.deployId, 'd-42');
      assert.equal(row?.env, 'staging');
      assert.equal(row?.command, 'berth deploy');
      assert.equal(row?.durationMs, 60_000);
      assert.ok(!('key' in row!), "idempotency keys are the store's business, not history's");
      await store.close();
    });

    test('the same idempotency key twice is one apply and one action: a replay writes nothing new', async () => {
      const store = await impl.open();
      const begin = { host: 'app-1', ref: 'main', repo: '.', startedAt: T(0), key: 'apply-key' };
      const first = await store.beginApply(begin);
      const again = await store.beginApply(begin);
      assert.equal(again, first);
      const a1 = await store.beginAction(first, action({ key: 'action-key' }));
      const a2 = await store.beginAction(first, action({ key: 'action-key' }));
      assert.equal(a2, a1);
      await store.finishAction(a1, { result: 'succeeded', finishedAt: T(1) });
      await store.finishAction(a1, { result: 'succeeded', finishedAt: T(1) });
      await store.finishApply(first, { result: 'succeeded', finishedAt: T(1) });
      await store.finishApply(first, { result: 'succeeded', finishedAt: T(1) });
      // Without keys, every call is a new row, as before.
      await store.beginApply({ host: 'app-1', ref: 'main', repo: '.', startedAt: T(2) });
      await store.beginApply({ host: 'app-1', ref: 'main', repo: '.', startedAt: T(2) });
      assert.equal((await store.applies()).length, 3);
      assert.equal((await store.history()).length, 1);
      await store.close();
    });

    /** Two deploys over two hosts and an apply on its own, with services, commits and results. */
    async function fleet(store: Store) {
      const one = async (
        host: string,
        at: number,
        opts: {
          deployId?: string;
          env: string;
          commit: string;
          result: 'succeeded' | 'failed';
          services: string[];
        },
      ) => {
        const id = await store.beginApply({
          host,
          ref: opts.env,
          repo: '/srv/state',
          startedAt: T(at),
          stateCommit: opts.commit,
          env: opts.env,
          command: opts.deployId ? 'berth deploy' : 'berth apply',
          ...(opts.deployId ? { deployId: opts.deployId } : {}),
        });
        for (const [i, service] of opts.services.entries()) {
          const a = await store.beginAction(
            id,
            action({
              service,
              host,
              startedAt: T(at, i + 1),
              stateCommit: opts.commit,
              gitCommit: `${service}0a1b2c`,
            }),
          );
          await store.finishAction(a, { result: opts.result, finishedAt: T(at, i + 2) });
        }
        await store.finishApply(id, { result: opts.result, finishedAt: T(at, 30) });
        return id;
      };
      return {
        d1a: await one('app-1', 1, {
          deployId: 'd1',
          env: 'staging',
          commit: 'aaaa1111',
          result: 'succeeded',
          services: ['api', 'web'],
        }),
        d1b: await one('app-2', 2, {
          deployId: 'd1',
          env: 'staging',
          commit: 'aaaa1111',
          result: 'succeeded',
          services: ['api'],
        }),
        lone: await one('app-3', 3, {
          env: 'production',
          commit: 'bbbb2222',
          result: 'failed',
          services: ['web'],
        }),
        d2a: await one('app-1', 4, {
          deployId: 'd2',
          env: 'staging',
          commit: 'cccc3333',
          result: 'succeeded',
          services: ['web'],
        }),
        d2b: await one('app-2', 5, {
          deployId: 'd2',
          env: 'staging',
          commit: 'cccc3333',
          result: 'failed',
          services: ['web'],
        }),
      };
    }

    test('filters by environment, commit (state or gitCommit prefix), result, time and deploy', async () => {
      const store = await impl.open();
      const ids = await fleet(store);
      const applyIds = async (q: Parameters<Store['applies']>[0]) =>
        (await store.applies(q)).map((a) => a.id);
      assert.deepEqual(await applyIds({ env: 'production' }), [ids.lone]);
      assert.deepEqual(await applyIds({ commit: 'AAAA' }), [ids.d1b, ids.d1a], 'a prefix, in any case');
      assert.deepEqual(await applyIds({ commit: 'api0a' }), [ids.d1b, ids.d1a], "a service's gitCommit");
      assert.deepEqual(await applyIds({ commit: 'aaaa1112' }), []);
      assert.deepEqual(await applyIds({ result: 'failed' }), [ids.d2b, ids.lone]);
      assert.deepEqual(await applyIds({ since: T(3), until: T(4) }), [ids.d2a, ids.lone]);
      assert.deepEqual(await applyIds({ deployId: 'd2' }), [ids.d2b, ids.d2a]);
      assert.deepEqual(await applyIds({ service: 'api' }), [ids.d1b, ids.d1a]);
      assert.deepEqual(await applyIds({ host: 'app-2', env: 'staging', result: 'succeeded' }), [ids.d1b]);

      const rows = async (q: Parameters<Store['history']>[0]) =>
        (await store.history(q)).map((r) => `${r.host}/${r.service}`);
      assert.deepEqual(await rows({ env: 'production' }), ['app-3/web']);
      assert.deepEqual(await rows({ commit: 'web0a', env: 'staging', host: 'app-1' }), [
        'app-1/web',
        'app-1/web',
      ]);
      assert.deepEqual(await rows({ result: 'failed', since: T(4) }), ['app-2/web']);
      assert.deepEqual(await rows({ deployId: 'd1', service: 'api' }), ['app-2/api', 'app-1/api']);
      assert.deepEqual(await rows({ until: T(1, 59) }), ['app-1/web', 'app-1/api']);
      await store.close();
    });

    test('deploys: one entry per deploy with its hosts beneath, an apply on its own as its own entry', async () => {
      const store = await impl.open();
      const ids = await fleet(store);
      const entries = await store.deploys();
      assert.deepEqual(
        entries.map((e) => [e.deployId ?? '-', e.hosts.map((h) => h.id), e.result]),
        [
          ['d2', [ids.d2a, ids.d2b], 'failed'],
          ['-', [ids.lone], 'failed'],
          ['d1', [ids.d1a, ids.d1b], 'succeeded'],
        ],
      );
      const d1 = entries[2]!;
      assert.equal(d1.env, 'staging');
      assert.equal(d1.stateCommit, 'aaaa1111');
      assert.equal(d1.command, 'berth deploy');
      assert.equal(d1.startedAt, T(1));
      assert.equal(d1.finishedAt, T(2, 30));
      assert.deepEqual(
        d1.hosts.map((h) => [h.host, h.steps.map((s) => `${s.service} ${s.durationMs}`)]),
        [
          ['app-1', ['api 1000', 'web 1000']],
          ['app-2', ['api 1000']],
        ],
      );
      // The newest N entries, not N applies.
      assert.deepEqual(
        (await store.deploys({ limit: 2 })).map((e) => e.hosts.length),
        [2, 1],
      );
      // Filters pick the entries and the hosts shown beneath them.
      const failed = await store.deploys({ result: 'failed', env: 'staging' });
      assert.deepEqual(
        failed.map((e) => [e.deployId, e.hosts.map((h) => h.host)]),
        [['d2', ['app-2']]],
      );
      assert.deepEqual(await store.deploys({ host: 'nowhere' }), []);
      await store.close();
    });

    test('a deploy still running has no finish, and says so', async () => {
      const store = await impl.open();
      const a = await store.beginApply({
        host: 'h1',
        ref: 'main',
        repo: '.',
        startedAt: T(0),
        deployId: 'x',
      });
      await store.finishApply(a, { result: 'succeeded', finishedAt: T(1) });
      await store.beginApply({ host: 'h2', ref: 'main', repo: '.', startedAt: T(2), deployId: 'x' });
      const [entry] = await store.deploys();
      assert.equal(entry?.result, 'running');
      assert.equal(entry?.finishedAt, undefined);
      assert.deepEqual(
        entry?.hosts.map((h) => h.steps),
        [[], []],
      );
      await store.close();
    });

    test('bad filters are refused with what is wrong', async () => {
      const store = await impl.open();
      await assert.rejects(store.applies({ result: 'nope' as never }), UsageError);
      await assert.rejects(store.history({ since: 'last tuesday' }), /since is not an ISO timestamp/);
      await assert.rejects(store.deploys({ commit: "x' OR 1=1" }), UsageError);
      await assert.rejects(store.deploys({ limit: -1 }), UsageError);
      await store.close();
    });
  });

  describe(`Lease contract: ${impl.name}`, () => {
    const req = (holder: string, over: Partial<LeaseRequest> = {}): LeaseRequest => ({
      scope: 'shop/staging',
      groups: [{ name: 'app_server', cap: 1 }],
      holder,
      command: 'berth apply',
      ttlMs: 60_000,
      ...over,
    });

    async function leasesOf(store: Store): Promise<LeaseBackend> {
      assert.ok(store.leases, `${impl.name} keeps leases`);
      return store.leases;
    }

    test('at most cap holders per group; a full group names who fills it; a release makes room', async () => {
      const store = await impl.open();
      const leases = await leasesOf(store);
      const a = await leases.tryAcquire(req('app-1'));
      assert.ok(a.ok);
      const b = await leases.tryAcquire(req('app-2'));
      assert.equal(b.ok, false);
      if (!b.ok) {
        assert.equal(b.group, 'app_server');
        assert.equal(b.cap, 1);
        assert.deepEqual(
          b.holders.map((h) => [h.holder, h.command, h.group, h.scope]),
          [['app-1', 'berth apply', 'app_server', 'shop/staging']],
        );
      }
      await leases.release(req('app-1'), a.token);
      await leases.release(req('app-1'), a.token);
      assert.ok((await leases.tryAcquire(req('app-2'))).ok);
      await store.close();
    });

    test("a holder's own lease does not count against it: asking again takes it back", async () => {
      const store = await impl.open();
      const leases = await leasesOf(store);
      const first = await leases.tryAcquire(req('app-1'));
      const again = await leases.tryAcquire(req('app-1'));
      assert.ok(first.ok && again.ok);
      assert.equal(
        await leases.renew(req('app-1'), first.token),
        false,
        'the old token is no longer the lease',
      );
      assert.equal(await leases.renew(req('app-1'), again.token), true);
      assert.deepEqual(
        (await leases.list('shop/staging')).map((l) => l.holder),
        ['app-1'],
      );
      await store.close();
    });

    test('every group of the host at once, or none; scopes and caps are separate', async () => {
      const store = await impl.open();
      const leases = await leasesOf(store);
      const two = [
        { name: 'app_server', cap: 2 },
        { name: 'eu', cap: 1 },
      ];
      assert.ok((await leases.tryAcquire(req('app-1', { groups: [{ name: 'eu', cap: 1 }] }))).ok);
      const refused = await leases.tryAcquire(req('app-2', { groups: two }));
      assert.equal(refused.ok, false);
      if (!refused.ok) assert.equal(refused.group, 'eu');
      assert.deepEqual(
        (await leases.list('shop/staging')).map((l) => `${l.holder}@${l.group}`),
        ['app-1@eu'],
        'nothing taken in app_server either',
      );
      assert.ok((await leases.tryAcquire(req('app-3', { groups: [{ name: 'app_server', cap: 2 }] }))).ok);
      assert.ok((await leases.tryAcquire(req('app-2', { scope: 'shop/production', groups: two }))).ok);
      assert.equal((await leases.list('shop/production')).length, 2);
      await store.close();
    });

    test('many hosts asking at once: exactly cap of them get it', async () => {
      const store = await impl.open();
      const leases = await leasesOf(store);
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          leases.tryAcquire(req(`app-${i}`, { groups: [{ name: 'app_server', cap: 3 }] })),
        ),
      );
      assert.equal(results.filter((r) => r.ok).length, 3);
      assert.equal((await leases.list('shop/staging')).length, 3);
      await store.close();
    });

    test('a lease that is not renewed lapses after its expiry; one that is renewed does not', async () => {
      const store = await impl.open();
      const leases = await leasesOf(store);
      const ttlMs = 1_500;
      const dead = await leases.tryAcquire(req('app-1', { ttlMs }));
      assert.ok(dead.ok);
      const alive = await takeLease(leases, req('app-2', { ttlMs, scope: 'shop/other' }), { waitMs: 0 });
      assert.equal((await leases.tryAcquire(req('app-3', { ttlMs }))).ok, false, 'not before the expiry');
      await sleep(ttlMs * 2);
      assert.equal(await leases.renew(req('app-1', { ttlMs }), dead.token), false, 'lapsed');
      assert.ok((await leases.tryAcquire(req('app-3', { ttlMs }))).ok, 'taken after the expiry');
      const other = await leases.tryAcquire(req('app-4', { ttlMs, scope: 'shop/other' }));
      assert.equal(other.ok, false, 'a holder that renews keeps its lease past the expiry');
      assert.equal(alive.lost(), false);
      await alive.release();
      assert.ok((await leases.tryAcquire(req('app-4', { ttlMs, scope: 'shop/other' }))).ok);
      await store.close();
    });
  });
}
