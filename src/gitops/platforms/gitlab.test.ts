import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fakeHarness, startFakePlatform, type FakePlatform } from '../../../test/support/platforms.js';
import { freePort } from '../../../test/world/proc.js';
import { platformContract, type PlatformHarness } from './contract.js';
import { openPlatform } from './registry.js';

// gitlab cannot run here: these tests run against test/support/platforms.ts, a local HTTP server on
// 127.0.0.1 that implements the documented gitlab endpoints berth calls (see its header).

let fake: FakePlatform;
let deadPort: number;
before(async () => {
  fake = await startFakePlatform('gitlab');
  deadPort = await freePort();
});
after(() => fake?.stop());

const harness = () => fakeHarness(fake, deadPort, openPlatform) as PlatformHarness;
platformContract('gitlab', harness);

test('gitlab: a project in nested groups is one URL-encoded path segment', async () => {
  const h = harness();
  h.reset();
  fake.requests.length = 0;
  await h.client().create({ head: 'berth/promote', base: 'production', title: 't', body: 'b' });
  assert.deepEqual(fake.requests, ['POST /projects/ops%2Finfra%2Fstate/merge_requests']);
  assert.deepEqual(fake.unexpected, []);
});
