import type { Inventory } from '../../model/service.js';
import type { InventorySourcePlugin } from './types.js';

const NONE: Inventory = { hosts: [], groups: {} };

/**
 * `source: static`, the default: the hosts are the ones `inventory.yaml` lists, as the config
 * loader read and checked them (with file:line:col for every problem). A repo without
 * `inventory.yaml` has no inventory: every service runs on whichever host applies it.
 */
export const staticPlugin: InventorySourcePlugin = {
  name: 'static',
  create: () => ({
    name: 'static',
    load: async (ctx) => ctx.file ?? NONE,
  }),
  validate(settings, { base }) {
    return Object.keys(settings).map((k) => ({
      path: `${base}.${k}`,
      message: `the static source takes no settings (its hosts are in inventory.yaml)`,
    }));
  },
};
