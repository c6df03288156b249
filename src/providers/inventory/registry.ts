import { ConfigError } from '../../model/errors.js';
import { ec2Plugin } from './ec2.js';
import { staticPlugin } from './static.js';
import type { InventorySource, InventorySourcePlugin, SettingIssue } from './types.js';

/** Every inventory source berth has, by the name `inventory.source` gives. */
const ec2 = ec2Plugin();

export const inventorySources: ReadonlyMap<string, InventorySourcePlugin> = new Map([
  [staticPlugin.name, staticPlugin],
  [ec2.name, ec2],
]);

/** Sources berth knows of but does not have yet: named so the error says so, never ignored. */
const NOT_BUILT: ReadonlySet<string> = new Set<string>([]);

function problem(name: unknown): string {
  const known = [...inventorySources.keys()].sort().join(', ');
  if (typeof name === 'string' && NOT_BUILT.has(name))
    return `inventory source "${name}" is not available in this version of berth (available: ${known}); nothing was changed`;
  return `unknown inventory source ${JSON.stringify(name)} (available: ${known})`;
}

/**
 * Check berth.yaml's `inventory` block: the source must be one berth has, with settings it
 * takes. An absent block means `static`.
 */
export function validateInventory(
  block: Record<string, unknown> | undefined,
  { base = 'inventory' }: { base?: string } = {},
): SettingIssue[] {
  if (!block) return [];
  const { source, ...settings } = block;
  const plugin = typeof source === 'string' ? inventorySources.get(source) : undefined;
  if (!plugin) return [{ path: `${base}.source`, message: problem(source) }];
  return plugin.validate(settings, { base });
}

/** The source berth.yaml names (static when it names none); a ConfigError otherwise. */
export function getInventorySource(block: Record<string, unknown> | undefined): InventorySource {
  const issues = validateInventory(block);
  if (issues.length) {
    throw new ConfigError(
      issues.map((i) => ({ file: 'berth.yaml', path: i.path, message: i.message, severity: 'error' })),
    );
  }
  const name = typeof block?.source === 'string' ? block.source : 'static';
  return inventorySources.get(name)!.create();
}
