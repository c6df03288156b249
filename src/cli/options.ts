import path from 'node:path';
import { Option, type Command } from 'commander';
import { defaultStorePath } from '../store/paths.js';
import { parseDuration } from '../config/values.js';
import { UsageError } from '../model/errors.js';

/**
 * A commander parser for a duration flag (`30s`, `5m`, `1500ms`), in milliseconds. A limit on
 * how long something may take must be `positive`; a wait may be 0 (do not wait).
 */
export function durationFlag(flag: string, opts: { positive?: boolean } = {}): (v: string) => number {
  return (v) => {
    const ms = parseDuration(v);
    if (typeof ms !== 'number') throw new UsageError(`${flag}: ${ms.error}`);
    if (opts.positive && ms <= 0) throw new UsageError(`${flag} must be longer than 0`);
    return ms;
  };
}

/** Options of every command that reaches a host's engine. */
export function engineOptions(cmd: Command): Command {
  return cmd.addOption(
    new Option(
      '--engine-timeout <duration>',
      'longest wait for one answer from the Docker engine (default 60s)',
    )
      .env('BERTH_ENGINE_TIMEOUT')
      .argParser(durationFlag('--engine-timeout', { positive: true })),
  );
}

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
      new Option(
        '--files-dir <dir>',
        "where this host's rendered config files (files:) go (default: berth.yaml files_dir)",
      ).env('BERTH_FILES_DIR'),
    )
    .addOption(
      new Option('--age-identity <file>', "this host's age identity for secrets/*.age").env(
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

/** `--deploy-id` as the user wrote it (`apply`, `deploy`). */
export function deployId(v: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(v)) {
    throw new UsageError(
      `--deploy-id "${v}": use up to 128 letters, digits, ".", "_", ":" or "-", starting with a letter or digit`,
    );
  }
  return v;
}
