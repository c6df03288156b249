import type { Command } from 'commander';
import { printJson } from '../output.js';
import { gitopsOptions, withWorkspace, type GitopsFlags } from './gitops-options.js';

interface DiffFlags extends GitopsFlags {
  from: string;
  to?: string;
}

const HELP = `
Compares each service of two environments at their branch heads: the release (image, gitCommit,
buildNumber), each env value and every other setting, and services only one side has. Values
are shown as the repo writes them: a value that uses {{ secrets.x }} shows that template, and no
secret is ever read. The table's columns are the target's value (--to) and the source's (--from),
the way berth promote would carry them. Exit 0 whether or not they differ.

  berth diff --from staging --to production
  berth diff --from staging            # --to: berth.yaml environments.staging.promote_to`;

export function registerDiff(program: Command): void {
  gitopsOptions(program.command('diff'))
    .description('what differs between two environments, service by service')
    .requiredOption('--from <env>', 'the source environment (what would be promoted)')
    .option('--to <env>', "the target environment (default: berth.yaml's promote_to of --from)")
    .option('--json', 'print the differences as JSON')
    .addHelpText('after', HELP)
    .action(async (flags: DiffFlags) => {
      const [{ compareEnvironments }, { formatDiff }, { loadChecked }] = await Promise.all([
        import('../../gitops/compare.js'),
        import('../../gitops/diff.js'),
        import('../../host/checked.js'),
      ]);
      const c = await withWorkspace(flags, (ws) =>
        compareEnvironments(ws, flags.from, flags.to, loadChecked),
      );
      if (flags.json) printJson(c);
      else process.stdout.write(formatDiff(c, c.to, c.from));
    });
}
