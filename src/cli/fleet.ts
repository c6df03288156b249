/**
 * The flags `deploy`, `status` and `wait` share. Loaded with the command table, so it imports
 * nothing heavy: what runs the commands is in fleet-run.ts, loaded by their actions.
 */
import { Option, type Command } from 'commander';
import { UsageError } from '../model/errors.js';
import { durationFlag, engineOptions, storeOption } from './options.js';

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
  /** Longest a clone or fetch may take, in milliseconds. */
  gitTimeout?: number;
  /** Longest wait for one answer from a host's engine, in milliseconds. */
  engineTimeout?: number;
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
    )
    .addOption(
      new Option(
        '--git-timeout <duration>',
        'longest a clone or fetch of the state repo may take (default 120s)',
      )
        .env('BERTH_GIT_TIMEOUT')
        .argParser(durationFlag('--git-timeout', { positive: true })),
    );
  engineOptions(cmd);
  if (store) cmd.addOption(storeOption());
  return cmd;
}
