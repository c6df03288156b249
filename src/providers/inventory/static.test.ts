import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadStateRepo } from '../../config/load.js';
import { inventoryContract } from './contract.js';
import { getInventorySource, validateInventory } from './registry.js';
import { staticPlugin } from './static.js';

const INVENTORY = `hosts:
  app-1: { address: 10.0.1.11, groups: [app_server] }
  app-2: { address: 10.0.1.12, groups: [app_server] }
  proxy-1: { address: 10.0.2.5, groups: [proxy_server] }
groups:
  app_server: { vars: { tier: app } }
`;

/** inventory.yaml read by the real config loader, as the pipeline gives it to the source. */
function fileInventory() {
  const r = loadStateRepo({
    files: new Map([
      ['inventory.yaml', INVENTORY],
      ['services/web.yaml', 'image: web:1\n'],
    ]),
    ref: 'main',
  });
  assert.ok(r.repo?.inventory, JSON.stringify(r.issues));
  return r.repo.inventory;
}

inventoryContract('static', {
  source: () => staticPlugin.create(),
  fleet: () => ({ settings: {}, file: fileInventory() }),
  expected: {
    'app-1': { address: '10.0.1.11', groups: ['app_server'] },
    'app-2': { address: '10.0.1.12', groups: ['app_server'] },
    'proxy-1': { address: '10.0.2.5', groups: ['proxy_server'] },
  },
});

test('the registry: static by default, unknown sources are errors with their path', () => {
  assert.equal(getInventorySource(undefined).name, 'static');
  assert.equal(getInventorySource({ source: 'static' }).name, 'static');
  assert.match(
    validateInventory({ source: 'consul' })[0]!.message,
    /unknown inventory source "consul" \(available: aws-ec2, static\)/,
  );
  assert.deepEqual(validateInventory({ source: 'static', file: 'x' }), [
    {
      path: 'inventory.file',
      message: 'the static source takes no settings (its hosts are in inventory.yaml)',
    },
  ]);
  assert.throws(
    () => getInventorySource({ source: 'consul' }),
    /berth\.yaml inventory\.source: unknown inventory source "consul"/,
  );
});
