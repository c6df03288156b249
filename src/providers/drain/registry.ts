import { ConfigError } from '../../model/errors.js';
import { commandPlugin } from './command.js';
import { elbv2Plugin } from './elbv2.js';
import { haproxyPlugin } from './haproxy.js';
import { octaviaPlugin } from './octavia.js';
import { SETTINGS_FILE } from './settings.js';
import type { DrainProvider, DrainProviderPlugin, SettingIssue } from './types.js';

export { drainTimeoutMs, DEFAULT_DRAIN_TIMEOUT_MS } from './settings.js';

/** Every drain provider berth knows, by the name `load_balancer.provider` gives. */
export const drainProviders: ReadonlyMap<string, DrainProviderPlugin> = new Map<string, DrainProviderPlugin>([
  [haproxyPlugin.name, haproxyPlugin],
  [commandPlugin.name, commandPlugin],
  [octaviaPlugin.name, octaviaPlugin],
  [elbv2Plugin.name, elbv2Plugin],
]);

function known(): string {
  return [...drainProviders.keys()].sort().join(', ');
}

function unknownProvider(name: unknown): string {
  return `unknown load balancer provider ${JSON.stringify(name)}; known providers: ${known()}`;
}

/** The plugin named `name`; a ConfigError at `load_balancer.provider` listing the known ones otherwise. */
export function getPlugin(name: string): DrainProviderPlugin {
  const plugin = drainProviders.get(name);
  if (!plugin) {
    throw new ConfigError([
      {
        file: SETTINGS_FILE,
        path: 'load_balancer.provider',
        message: unknownProvider(name),
        severity: 'error',
      },
    ]);
  }
  return plugin;
}

/** A provider instance for `name` (see getPlugin for the error). */
export function getProvider(name: string): DrainProvider {
  return getPlugin(name).create();
}

/**
 * Check a whole `load_balancer` block (provider and settings) as written in berth.yaml, for
 * `berth validate`: templates are left for the host they render for. `base` is the block's
 * dotted path (a group or host override has its own).
 */
export function validateLoadBalancer(
  block: Record<string, unknown>,
  { base = 'load_balancer', rendered = false }: { base?: string; rendered?: boolean } = {},
): SettingIssue[] {
  const { provider, ...settings } = block;
  if (typeof provider !== 'string' || !provider) {
    return [{ path: `${base}.provider`, message: `required; known providers: ${known()}` }];
  }
  const plugin = drainProviders.get(provider);
  if (!plugin) return [{ path: `${base}.provider`, message: unknownProvider(provider) }];
  return plugin.validate(settings, { base, rendered });
}
