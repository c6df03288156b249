/** What `deploy`, `status` and `wait` share: their flags, the SSH connections, the record. */
import { existsSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { SshPool } from '../adapters/ssh.js';
import type { HostRequest } from '../host/pipeline.js';
import { UsageError } from '../model/errors.js';
import { urlScheme } from '../model/location.js';
import { sshOpener, type HostOpener } from '../fleet/open.js';
import { defaultStorePath } from '../store/paths.js';
import { openStore } from '../store/registry.js';
import type { ApplyRecord } from '../store/types.js';
import { defaultCacheDir } from '../source/read.js';

/** Flags of the fleet commands. */
export interface FleetFlags {
  repo: string;
  env?: string;
  ref?: string;
  cacheDir?: string;
  secretsDir?: string;
  ageIdentity?: string;
  limit?: string[];
  json?: boolean;
  store?: string;
}

/** `--limit a,b --limit c` → [a, b, c]. */
function collectLimit(v: string, prev: string[] = []): string[] {
  const names = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!names.length) throw new UsageError('--limit takes host or group names, separated by commas');
  return [...prev, ...names];
}

/** The flags every fleet command takes (`--store` where the command reads or writes the record). */
export function fleetOptions(cmd: Command, { store = true }: { store?: boolean } = {}): Command {
  cmd
    .addOption(
      new Option('--repo <path|url>', 'state repo: a local path or any git URL')
        .env('BERTH_REPO')
        .default('.'),
    )
    .addOption(new Option('--env <name>', 'environment: the branch to read').env('BERTH_ENV'))
    .option('--ref <commit>', 'read this commit or tag (with --env naming the environment for templates)')
    .option('--cache-dir <dir>', 'where cached clones of remote repos live')
    .option('--limit <names>', 'only these hosts or groups (comma-separated; repeatable)', collectLimit)
    .addOption(
      new Option('--secrets-dir <dir>', "the hosts' secrets folder (default: berth.yaml secrets_dir)").env(
        'BERTH_SECRETS_DIR',
      ),
    )
    .addOption(
      new Option('--age-identity <file>', "the hosts' age identity, a path on each host").env(
        'BERTH_AGE_IDENTITY',
      ),
    );
  if (store) {
    cmd.addOption(
      new Option('--store <path|url>', `deployment record (default ${defaultStorePath()})`).env(
        'BERTH_STORE',
      ),
    );
  }
  return cmd;
}

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
  const source = flags.ref
    ? { repo: flags.repo, ref: flags.ref, cacheDir: flags.cacheDir ?? defaultCacheDir() }
    : { repo: flags.repo, env: flags.env, cacheDir: flags.cacheDir ?? defaultCacheDir() };
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
export async function withFleet<T>(work: (open: HostOpener) => Promise<T>): Promise<T> {
  const pool = new SshPool();
  try {
    return await work(sshOpener(pool));
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
