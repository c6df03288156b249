import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { InventoryContext, InventorySource } from './types.js';

/** What a source's test gives the contract suite: a world where the fleet below exists. */
export interface InventoryFixture {
  source: () => InventorySource;
  /**
   * A context under which the source finds exactly these hosts: app-1 and app-2 in group
   * app_server, proxy-1 in group proxy_server, each with its address.
   */
  fleet: () => Promise<InventoryContext> | InventoryContext;
  expected: Record<string, { address: string; groups: string[] }>;
  /** A context under which the source cannot be read (unreachable, refused), when it can fail. */
  broken?: () => Promise<InventoryContext> | InventoryContext;
}

/** The rules every inventory source keeps; each source's test calls this once. */
export function inventoryContract(name: string, fx: InventoryFixture): void {
  describe(`inventory source contract: ${name}`, () => {
    test('finds every host with its address and groups', async () => {
      const inv = await fx.source().load(await fx.fleet());
      const got = Object.fromEntries(
        inv.hosts.map((h) => [h.name, { address: h.address, groups: [...h.groups].sort() }]),
      );
      const want = Object.fromEntries(
        Object.entries(fx.expected).map(([n, h]) => [
          n,
          { address: h.address, groups: [...h.groups].sort() },
        ]),
      );
      assert.deepEqual(got, want);
    });

    test('host names are unique and every group a host names is in the groups map', async () => {
      const inv = await fx.source().load(await fx.fleet());
      const names = inv.hosts.map((h) => h.name);
      assert.equal(new Set(names).size, names.length);
      for (const h of inv.hosts) {
        for (const g of h.groups) assert.ok(g in inv.groups, `${h.name}: group ${g} is not in groups`);
      }
    });

    test('two loads of an unchanged world agree', async () => {
      const ctx = await fx.fleet();
      assert.deepEqual(await fx.source().load(ctx), await fx.source().load(ctx));
    });

    if (fx.broken) {
      const broken = fx.broken;
      test('a source that cannot be read rejects; it never answers with no hosts', async () => {
        await assert.rejects(fx.source().load(await broken()));
      });
    }
  });
}
