import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pollUntil } from './poll.js';

/** Looks that answer `answers` in turn (the last one again once they run out), counted. */
function looks<T>(...answers: T[]) {
  let n = 0;
  return {
    look: async () => answers[Math.min(n++, answers.length - 1)]!,
    count: () => n,
  };
}

describe('pollUntil', () => {
  test('looks until done, telling each look that is not done', async () => {
    const l = looks('PENDING', 'PENDING', 'ACTIVE');
    const waits: string[] = [];
    const out = await pollUntil({
      deadline: Date.now() + 60_000,
      intervalMs: 1,
      look: l.look,
      done: (s) => s === 'ACTIVE',
      onWait: (s) => waits.push(s),
    });
    assert.deepEqual(out, { last: 'ACTIVE', done: true });
    assert.equal(l.count(), 3);
    assert.deepEqual(waits, ['PENDING', 'PENDING']);
  });

  test('a passed deadline still gets one look, and no wait', async () => {
    const l = looks(5);
    const waits: number[] = [];
    const out = await pollUntil({
      deadline: Date.now() - 1,
      intervalMs: 1_000,
      look: l.look,
      done: (n) => n === 0,
      onWait: (n) => waits.push(n),
    });
    assert.deepEqual(out, { last: 5, done: false });
    assert.equal(l.count(), 1);
    assert.deepEqual(waits, []);
  });

  test('gives up at the deadline with the last look', async () => {
    const l = looks(3, 2, 1);
    const started = Date.now();
    const out = await pollUntil({
      deadline: started + 150,
      intervalMs: 20,
      look: l.look,
      done: (n) => n === 0,
    });
    assert.equal(out.done, false);
    assert.equal(out.last, 1);
    assert.ok(Date.now() - started >= 150);
    assert.ok(Date.now() - started < 10_000);
  });

  test('bounded in tries too: deadline/interval + 2 looks at most', async () => {
    const l = looks(1);
    // A clock that stands still would never reach the deadline: the tries end the wait.
    const realNow = Date.now;
    const frozen = realNow();
    Date.now = () => frozen;
    try {
      const out = await pollUntil({ deadline: frozen + 30, intervalMs: 10, look: l.look, done: () => false });
      assert.equal(out.done, false);
    } finally {
      Date.now = realNow;
    }
    assert.equal(l.count(), 5);
  });

  test('a throwing look ends the wait with its error', async () => {
    await assert.rejects(
      pollUntil({
        deadline: Date.now() + 60_000,
        intervalMs: 1,
        look: async () => {
          throw new Error('load balancer is ERROR');
        },
        done: () => false,
      }),
      /load balancer is ERROR/,
    );
  });

  test('an aborted signal rejects the wait with its reason', async () => {
    const ac = new AbortController();
    const l = looks('draining');
    const wait = pollUntil({
      deadline: Date.now() + 60_000,
      intervalMs: 60_000,
      look: l.look,
      done: () => false,
      onWait: () => ac.abort(new Error('stopped by the operator')),
      signal: ac.signal,
    });
    await assert.rejects(wait, /stopped by the operator/);
    assert.equal(l.count(), 1);
  });
});
