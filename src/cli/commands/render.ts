import type { Command } from 'commander';
import { UsageError } from '../../model/errors.js';
import type { RepoFlags } from '../context.js';
import { repoOptions } from '../options.js';
import { printJson } from '../output.js';

export function registerRender(program: Command): void {
  repoOptions(program.command('render').argument('<service>', 'service name'))
    .description('print one service as berth will run it on this host (defaults merged)')
    .option('--json', 'print JSON')
    .action(async (name: string, flags: RepoFlags & { json?: boolean }) => {
      // Loaded only when the command runs: the repo loader, the field table and the YAML writer.
      const [{ loadDesired, printWarnings }, { serviceAsFile, serviceYaml }] = await Promise.all([
        import('../context.js'),
        import('../service-file.js'),
      ]);
      const { desired, warnings } = await loadDesired(flags);
      printWarnings(warnings);
      const s = desired.services.find((x) => x.name === name);
      if (!s) {
        const known = desired.services.map((x) => x.name).join(', ') || 'none';
        const where = desired.host ? ` on host ${desired.host}` : '';
        throw new UsageError(`no service "${name}"${where} (services: ${known})`);
      }
      if (flags.json) printJson({ name: s.name, file: s.file, ...serviceAsFile(s) });
      else process.stdout.write(`# ${s.name} from ${s.file}\n` + serviceYaml(s));
    });
}
