import path from 'node:path';
import { Option, type Command } from 'commander';
import { defaultStorePath } from '../store/paths.js';

/** Options shared by every command that reads a state repo. */
export function repoOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--repo <path|url>', 'state repo: a local path or any git URL')
        .env('BERTH_REPO')
        .default('.'),
    )
    .addOption(new Option('--env <name>', 'environment: the branch to read').env('BERTH_ENV'))
    .option('--ref <commit>', 'read this commit or tag instead of a branch')
    .addOption(new Option('--host <name>', 'inventory name of this host').env('BERTH_HOST'))
    .option('--cache-dir <dir>', 'where cached clones of remote repos live')
    .addOption(
      new Option('--secrets-dir <dir>', "this host's secrets folder (default: berth.yaml secrets_dir)").env(
        'BERTH_SECRETS_DIR',
      ),
    )
    .addOption(
      new Option('--env-dir <dir>', "where this host's env files go (default: berth.yaml env_dir)").env(
        'BERTH_ENV_DIR',
      ),
    )
    .addOption(
      new Option('--age-identity <file>', "this host's age identity for secrets/*.age").env(
        'BERTH_AGE_IDENTITY',
      ),
    );
}

/** `--store`: the deployment record, a SQLite path or a postgres:// URL (or BERTH_STORE). */
export function storeOption(): Option {
  return new Option(
    '--store <path|url>',
    `deployment record: a SQLite file, or postgres://USER@HOST/DB for a fleet (default ${defaultStorePath()})`,
  ).env('BERTH_STORE');
}

/** `--spool-dir`: where a networked record keeps outcomes while it cannot be reached. */
export function spoolDirOption(): Option {
  return new Option(
    '--spool-dir <dir>',
    `where outcomes wait while the record cannot be reached (default ${path.join(path.dirname(defaultStorePath()), 'spool')})`,
  ).env('BERTH_SPOOL_DIR');
}
