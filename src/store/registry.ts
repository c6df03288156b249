import { createHash } from 'node:crypto';
import path from 'node:path';
import { UsageError } from '../model/errors.js';
import { urlScheme } from '../model/location.js';
import { defaultStorePath } from './paths.js';
import { parsePostgresUrl, redactUrlText } from './postgres-url.js';
import type { Store } from './types.js';

/**
 * The deployment-record family: where `--store` (or BERTH_STORE) points. A plain path is an
 * embedded SQLite file; a URL names its kind by its scheme. A kind berth does not have is an
 * error before anything changes, never a file of that name.
 */
export interface StorePlugin {
  /** URL schemes this store answers to. */
  schemes: string[];
  /** Check the location without connecting; @throws UsageError saying what is wrong. */
  check?(location: string): void;
  open(location: string, opts: OpenStoreOptions): Promise<Store>;
}

export interface OpenStoreOptions {
  /**
   * Where a networked record keeps outcomes while it cannot be reached; a folder per database
   * is made inside. Default: `spool/` beside the default SQLite record (the state dir).
   */
  spoolDir?: string;
  /** What the store has to say along the way: an outage, outcomes kept or written later. */
  onNotice?: (message: string) => void;
}

const sqlitePlugin: StorePlugin = {
  schemes: ['sqlite'],
  // SQLite is loaded when a record is opened, which a no-op apply never does.
  open: async (location) =>
    (await import('./sqlite.js')).openSqliteStore(location.replace(/^sqlite:(\/\/)?/i, '')),
};

/**
 * PostgreSQL, for a fleet: one database every host writes to. While it cannot be reached, an
 * apply's outcome waits in the local spool and is written when it answers again; each open
 * first writes what waits there.
 */
const postgresPlugin: StorePlugin = {
  schemes: ['postgres', 'postgresql'],
  check: (location) => void parsePostgresUrl(location),
  open: async (location, opts) => {
    const [{ openPostgresStore }, { Spool, SpooledStore }] = await Promise.all([
      import('./postgres.js'),
      import('./spool.js'),
    ]);
    const store = await openPostgresStore(location);
    const notice = opts.onNotice ?? (() => undefined);
    const spool = new Spool(spoolDirFor(location, opts.spoolDir));
    if (spool.waiting().length) {
      const r = await spool.flush(store);
      if (r.written) notice(`${r.written} apply outcome(s) kept during an outage were written to the record`);
      if (r.waiting) notice(`${r.waiting} apply outcome(s) still wait in ${spool.dir}: ${r.error ?? ''}`);
      for (const x of r.rejected ?? []) notice(`the record refused ${x.file} (${x.error}); it is kept there`);
    }
    return new SpooledStore(store, spool, notice);
  },
};

export const storePlugins: readonly StorePlugin[] = [sqlitePlugin, postgresPlugin];

/** Check a store location without opening it: the scheme must be one berth has, the URL well formed. */
export function checkStoreLocation(location: string): void {
  const scheme = urlScheme(location);
  if (scheme === undefined) return;
  const plugin = storePlugins.find((p) => p.schemes.includes(scheme));
  if (plugin) return plugin.check?.(location);
  const known = ['a file path', 'sqlite:PATH', 'postgres://USER@HOST/DATABASE'].join(', ');
  throw new UsageError(`--store: unknown record kind "${scheme}:" (use ${known})`);
}

/** Open the record at `location` (default: the SQLite file for this user). */
export async function openStore(
  location: string = defaultStorePath(),
  opts: OpenStoreOptions = {},
): Promise<Store> {
  checkStoreLocation(location);
  const scheme = urlScheme(location);
  const plugin = storePlugins.find((p) => scheme !== undefined && p.schemes.includes(scheme)) ?? sqlitePlugin;
  return plugin.open(location, opts);
}

/** The location as messages may show it: a URL's password as `***`. */
export function displayStoreLocation(location: string): string {
  return redactUrlText(location);
}

/** The folder beside a file-based record (where older berth versions kept host state). */
export function storeDir(location: string = defaultStorePath()): string | undefined {
  const scheme = urlScheme(location);
  if (scheme !== undefined && scheme !== 'sqlite') return undefined;
  return path.dirname(path.resolve(location.replace(/^sqlite:(\/\/)?/i, '')));
}

/**
 * The spool folder of one database: one per URL (password left out, so changing it keeps the
 * spool), under `base` or the state dir.
 */
export function spoolDirFor(location: string, base?: string): string {
  const id = createHash('sha256')
    .update(redactUrlText(location).replace(':***@', '@'))
    .digest('hex')
    .slice(0, 16);
  return path.join(base ?? path.join(path.dirname(defaultStorePath()), 'spool'), id);
}
