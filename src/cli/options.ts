import { Option, type Command } from 'commander';

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
    .option('--cache-dir <dir>', 'where cached clones of remote repos live');
}
