import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fakeHarness, startFakePlatform, type FakePlatform } from '../../../test/support/platforms.js';
import { freePort } from '../../../test/world/proc.js';
import { platformContract, type PlatformHarness } from './contract.js';
import { openPlatform } from './registry.js';

// github cannot run here: these tests run against test/support/platforms.ts, a local HTTP server on
// 127.0.0.1 that implements the documented github endpoints berth calls (see its header).

let fake: FakePlatform;
let deadPort: number;
before(async () => {
  fake = await startFakePlatform('github');
  deadPort = await freePort();
});
after(() => fake?.stop());

const harness = () => fakeHarness(fake, deadPort, openPlatform) as PlatformHarness;
platformContract('github', harness);

test('github: the list is filtered by owner:branch and base on the server, as documented', async () => {
  const h = harness();
  h.reset();
  fake.requests.length = 0;
  await h.client().findOpen('berth/promote-staging-to-production', 'production');
  assert.deepEqual(fake.requests, [
    'GET /repos/ops/state/pulls?state=open&head=ops%3Aberth%2Fpromote-staging-to-production&base=production&per_page=100',
  ]);
});
