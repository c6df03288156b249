import path from 'node:path';
import { UsageError } from '../model/errors.js';
import { urlScheme } from '../model/location.js';
import { defaultStorePath } from './paths.js';
import type { Store } from './types.js';

/**
 * The deployment-record family: where `--store` (or BERTH_STORE) points. A plain path is an
 * embedded SQLite file; a URL names its kind by its scheme. A kind berth does not have is an
 * error before anything changes, never a file of that name.
 */
export interface StorePlugin {
  /** URL schemes this store answers to. */
  schemes: string[];
  open(location: string): Promise<Store>;
}

const sqlitePlugin: StorePlugin = {
  schemes: ['sqlite'],
  // SQLite is loaded when a record is opened, which a no-op apply never does.
  open: async (location) =>
    (await import('./sqlite.js')).openSqliteStore(location.replace(/^sqlite:(\/\/)?/i, '')),
};

export const storePlugins: readonly StorePlugin[] = [sqlitePlugin];

/** Schemes berth knows of but does not have yet. */
const NOT_BUILT: Record<string, string> = {
  postgres: 'a PostgreSQL record',
  postgresql: 'a PostgreSQL record',
};

/** Check a store location without opening it: the scheme must be one berth has. */
export function checkStoreLocation(location: string): void {
  const scheme = urlScheme(location);
  if (scheme === undefined) return;
  if (storePlugins.some((p) => p.schemes.includes(scheme))) return;
  const known = ['a file path', ...storePlugins.flatMap((p) => p.schemes.map((s) => `${s}:PATH`))].join(', ');
  if (NOT_BUILT[scheme]) {
    throw new UsageError(
      `--store ${scheme}://…: ${NOT_BUILT[scheme]} is not available in this version of berth; use ${known}`,
    );
  }
  throw new UsageError(`--store: unknown record kind "${scheme}:" (use ${known})`);
}

/** Open the record at `location` (default: the SQLite file for this user). */
export async function openStore(location: string = defaultStorePath()): Promise<Store> {
  checkStoreLocation(location);
  const scheme = urlScheme(location);
  const plugin = storePlugins.find((p) => scheme !== undefined && p.schemes.includes(scheme)) ?? sqlitePlugin;
  return plugin.open(location);
}

/** The folder beside a file-based record (where older berth versions kept host state). */
export function storeDir(location: string = defaultStorePath()): string | undefined {
  const scheme = urlScheme(location);
  if (scheme !== undefined && scheme !== 'sqlite') return undefined;
  return path.dirname(path.resolve(location.replace(/^sqlite:(\/\/)?/i, '')));
}
