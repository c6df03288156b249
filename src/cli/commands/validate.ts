import type { Command } from 'commander';
import { formatIssue } from '../../model/errors.js';
import { ExitError } from '../exit.js';
import type { RepoFlags } from '../context.js';
import { repoOptions } from '../options.js';
import { paint, printJson, useColor } from '../output.js';

export function registerValidate(program: Command): void {
  repoOptions(program.command('validate'))
    .description('check a state repo: every problem at once as file:line:col, exit 1 on any')
    .option('--json', 'print the issues as JSON')
    .action(async (flags: RepoFlags & { json?: boolean }) => {
      const { readFiles } = await import('../context.js');
      // The schemas and the YAML parser load while git reads the repo in its own processes.
      // Problems found while reading (a symlink out of the repo, a file too large or not UTF-8)
      // come back with the files and are reported with every other issue.
      const [files, { loadChecked }] = await Promise.all([readFiles(flags), import('../../host/checked.js')]);
      const ref = files.ref;
      const result = loadChecked(files);
      const errors = result.issues.filter((i) => i.severity === 'error');
      if (flags.json) {
        printJson({
          ok: errors.length === 0,
          issues: result.issues,
          services: result.repo?.services.length ?? 0,
        });
      } else {
        const color = useColor(process.stderr);
        for (const i of result.issues) {
          process.stderr.write(
            paint(color, i.severity === 'error' ? 'red' : 'yellow', formatIssue(i)) + '\n',
          );
        }
        if (errors.length) process.stderr.write(`${errors.length} error(s)\n`);
        else {
          const r = result.repo!;
          const hosts = r.inventory ? `, ${r.inventory.hosts.length} host(s)` : '';
          process.stdout.write(`ok: ${r.services.length} service(s)${hosts} at ${ref}\n`);
        }
      }
      if (errors.length) throw new ExitError(1);
    });
}
