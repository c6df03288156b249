/** What `deploy`, `status` and `wait` share when they run: the request, the SSH connections, the record. */
import { existsSync } from 'node:fs';
import { SshPool } from '../adapters/ssh.js';
import type { HostRequest } from '../host/pipeline.js';
import { UsageError } from '../model/errors.js';
import { urlScheme } from '../model/location.js';
import { sshOpener, type HostOpener } from '../fleet/open.js';
import { defaultStorePath } from '../store/paths.js';
import { openStore } from '../store/registry.js';
import type { ApplyRecord } from '../store/types.js';
import { defaultCacheDir } from '../source/read.js';
import type { FleetFlags } from './fleet.js';

/**
 * What to read: the environment's branch, or a commit of it (`--ref`, the environment then only
 * names it for templates). A fleet gets only committed states: never a working tree.
 */
export function fleetRequest(flags: FleetFlags, command: string): HostRequest {
  if (!flags.env && !flags.ref) {
    throw new UsageError(
      `${command} needs --env ENV (or --ref COMMIT): what goes to a fleet must be committed`,
    );
  }
  const common = {
    repo: flags.repo,
    cacheDir: flags.cacheDir ?? defaultCacheDir(),
    networkTimeoutMs: flags.gitTimeout,
  };
  const source = flags.ref ? { ...common, ref: flags.ref } : { ...common, env: flags.env };
  const req: HostRequest = {
    source,
    overrides: { secretsDir: flags.secretsDir, ageIdentity: flags.ageIdentity },
  };
  if (flags.ref && flags.env) req.env = flags.env;
  return req;
}

/**
 * Run `work` with one SSH connection per host, opened on first use; every connection (and every
 * process it started) is closed when `work` ends, however it ends.
 */
export async function withFleet<T>(
  flags: Pick<FleetFlags, 'engineTimeout'>,
  work: (open: HostOpener) => Promise<T>,
): Promise<T> {
  const pool = new SshPool();
  try {
    return await work(sshOpener(pool, { engineTimeoutMs: flags.engineTimeout }));
  } finally {
    await pool.closeAll();
  }
}

/**
 * The record's applies, newest first, for "last result": from the record if there is one. A
 * record file that does not exist yet is not made by looking.
 */
export async function recentApplies(store: string | undefined): Promise<ApplyRecord[]> {
  const location = store ?? defaultStorePath();
  const scheme = urlScheme(location);
  if ((scheme === undefined || scheme === 'sqlite') && !existsSync(location.replace(/^sqlite:(\/\/)?/i, '')))
    return [];
  const s = await openStore(location);
  try {
    return await s.applies({ limit: 1000 });
  } finally {
    await s.close();
  }
}
