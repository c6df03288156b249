import type { Inventory } from '../../model/service.js';

/**
 * The inventory-source plugin family: where the list of hosts comes from. One interface, one
 * registry (registry.ts), one contract suite (contract.ts) that every source passes.
 */

/** What a source is given to find the hosts. */
export interface InventoryContext {
  /** The `inventory` block of berth.yaml without `source`: the source's own settings. */
  settings: Record<string, unknown>;
  /**
   * `inventory.yaml` as the config loader read and checked it (hosts, groups, group and host
   * vars, ssh), when the repo has one. A discovering source takes groups, vars and ssh from it.
   */
  file?: Inventory;
  signal?: AbortSignal;
}

export interface InventorySource {
  readonly name: string;
  /**
   * Every host with its address, groups and vars, and the groups' vars. A source that cannot be
   * read rejects (ExternalError: whose fault, and what did not answer): it never answers "no
   * hosts", which would mean "remove everything".
   */
  load(ctx: InventoryContext): Promise<Inventory>;
}

/** A problem with one source setting; `path` is dotted from the top of berth.yaml. */
export interface SettingIssue {
  path: string;
  message: string;
}

/** What the registry knows of one source. */
export interface InventorySourcePlugin {
  name: string;
  create(): InventorySource;
  /** Check the source's settings (the `inventory` block without `source`). */
  validate(settings: Record<string, unknown>, opts: { base: string }): SettingIssue[];
}
