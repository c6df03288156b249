/**
 * The contract every git hosting platform keeps, run against each one with a harness that can
 * see the platform's own state without going through the client under test.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';
import { ExternalError } from '../../model/errors.js';
import { openOrUpdate } from './registry.js';
import type { Platform } from './types.js';

export interface PlatformHarness {
  /** A client for the project, with the right token (or the one given). */
  client(token?: string): Platform;
  /** A client whose API address answers nothing (a closed port). */
  unreachable(): Platform;
  /** The token the server accepts: it must never appear in an error. */
  token: string;
  /** Open pull requests as the server holds them. */
  open(): Array<{ number: number; head: string; base: string; title: string; body: string }>;
  /** Forget every pull request (before each case). */
  reset(): void;
  /** Requests the server did not expect (not a documented endpoint). */
  unexpected(): string[];
}

export function platformContract(name: string, harness: () => PlatformHarness): void {
  describe(`git platform contract: ${name}`, () => {
    let h: PlatformHarness;
    beforeEach(() => {
      h = harness();
      h.reset();
    });

    test('findOpen finds nothing on an empty project', async () => {
      assert.equal(await h.client().findOpen('berth/promote-staging-to-production', 'production'), undefined);
      assert.deepEqual(h.unexpected(), []);
    });

    test('create opens one pull request with the given title, body and branches', async () => {
      const body = '| service | build |\n| --- | --- |\n| api | 124 |\n';
      const pr = await h
        .client()
        .create({ head: 'berth/promote', base: 'production', title: 'Promote', body });
      assert.equal(pr.head, 'berth/promote');
      assert.equal(pr.base, 'production');
      assert.equal(pr.title, 'Promote');
      assert.ok(pr.number > 0);
      assert.match(pr.url, /^https?:\/\//);
      assert.deepEqual(
        h.open().map((p) => [p.number, p.head, p.base, p.title, p.body]),
        [[pr.number, 'berth/promote', 'production', 'Promote', body]],
      );
      assert.deepEqual(h.unexpected(), []);
    });

    test('findOpen matches head and base exactly', async () => {
      const c = h.client();
      const pr = await c.create({ head: 'berth/promote', base: 'production', title: 't', body: 'b' });
      await c.create({ head: 'berth/promote', base: 'other', title: 't2', body: 'b2' });
      assert.equal((await c.findOpen('berth/promote', 'production'))?.number, pr.number);
      assert.equal(await c.findOpen('berth/promote-x', 'production'), undefined);
      assert.equal(await c.findOpen('berth', 'production'), undefined);
      assert.deepEqual(h.unexpected(), []);
    });

    test('update replaces title and body, keeps the number', async () => {
      const c = h.client();
      const pr = await c.create({ head: 'h', base: 'production', title: 'old', body: 'old body' });
      const up = await c.update(pr.number, { title: 'new', body: 'new body' });
      assert.equal(up.number, pr.number);
      assert.equal(up.title, 'new');
      assert.deepEqual(
        h.open().map((p) => [p.title, p.body]),
        [['new', 'new body']],
      );
    });

    test('openOrUpdate twice: one pull request, updated the second time', async () => {
      const c = h.client();
      const first = await openOrUpdate(c, { head: 'h', base: 'production', title: 'v1', body: 'one' });
      const second = await openOrUpdate(c, { head: 'h', base: 'production', title: 'v2', body: 'two' });
      assert.equal(first.created, true);
      assert.equal(second.created, false);
      assert.equal(second.pull.number, first.pull.number);
      assert.deepEqual(
        h.open().map((p) => [p.number, p.title, p.body]),
        [[first.pull.number, 'v2', 'two']],
      );
      assert.deepEqual(h.unexpected(), []);
    });

    test('a second create for the same branches is the platform refusing, as an ExternalError', async () => {
      const c = h.client();
      await c.create({ head: 'h', base: 'production', title: 't', body: 'b' });
      await assert.rejects(c.create({ head: 'h', base: 'production', title: 't', body: 'b' }), (e: Error) => {
        assert.ok(e instanceof ExternalError, String(e));
        assert.match(e.message, /answered (409|422)/);
        return true;
      });
      assert.equal(h.open().length, 1);
    });

    test('a wrong token fails clearly and the token is never in the message', async () => {
      const wrong = `${h.token}-wrong`;
      await assert.rejects(h.client(wrong).findOpen('h', 'production'), (e: Error) => {
        assert.ok(e instanceof ExternalError);
        assert.match(e.message, /answered 401/);
        assert.ok(!e.message.includes(h.token), e.message);
        assert.ok(!e.message.includes(wrong), e.message);
        return true;
      });
    });

    test('an unreachable API fails clearly, naming the address', async () => {
      await assert.rejects(h.unreachable().findOpen('h', 'production'), (e: Error) => {
        assert.ok(e instanceof ExternalError);
        assert.match(e.message, /cannot list (pull|merge) requests: GET http:\/\/127\.0\.0\.1:\d+\//);
        assert.ok(!e.message.includes(h.token));
        return true;
      });
    });
  });
}
