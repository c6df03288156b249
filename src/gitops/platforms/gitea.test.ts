import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fakeHarness, startFakePlatform, type FakePlatform } from '../../../test/support/platforms.js';
import { freePort } from '../../../test/world/proc.js';
import { platformContract, type PlatformHarness } from './contract.js';
import { openPlatform } from './registry.js';

// gitea cannot run here: these tests run against test/support/platforms.ts, a local HTTP server on
// 127.0.0.1 that implements the documented gitea endpoints berth calls (see its header).

let fake: FakePlatform;
let deadPort: number;
before(async () => {
  fake = await startFakePlatform('gitea');
  deadPort = await freePort();
});
after(() => fake?.stop());

const harness = () => fakeHarness(fake, deadPort, openPlatform) as PlatformHarness;
platformContract('gitea', harness);

test('gitea: the open pull request is found on a later page of the list', async () => {
  const h = harness();
  h.reset();
  for (let i = 1; i <= 55; i++) {
    fake.pulls.push({
      number: i,
      head: `feature-${i}`,
      base: 'main',
      title: `f${i}`,
      body: '',
      state: 'open',
    });
  }
  fake.pulls.push({
    number: 56,
    head: 'berth/promote',
    base: 'production',
    title: 'p',
    body: '',
    state: 'open',
  });
  fake.requests.length = 0;
  assert.equal((await h.client().findOpen('berth/promote', 'production'))?.number, 56);
  assert.deepEqual(fake.requests, [
    'GET /repos/ops/state/pulls?state=open&page=1&limit=50',
    'GET /repos/ops/state/pulls?state=open&page=2&limit=50',
  ]);
});
