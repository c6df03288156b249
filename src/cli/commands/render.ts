import type { Command } from 'commander';
import { stringify } from 'yaml';
import { FIELD_LIST } from '../../config/fields.js';
import type { ServiceSpec } from '../../model/service.js';
import { UsageError } from '../../model/errors.js';
import { loadDesired, printWarnings } from '../context.js';
import type { RepoFlags } from '../context.js';
import { repoOptions } from '../options.js';
import { printJson } from '../output.js';

/** The service in the words of its file (snake_case), as berth will run it on this host. */
export function serviceAsFile(s: ServiceSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, f] of FIELD_LIST) {
    const v: unknown = s[f.spec];
    out[key] = v !== undefined && f.show ? f.show(v, s) : v;
  }
  return out;
}

export function registerRender(program: Command): void {
  repoOptions(program.command('render').argument('<service>', 'service name'))
    .description('print one service as berth will run it on this host (defaults merged)')
    .option('--json', 'print JSON')
    .action(async (name: string, flags: RepoFlags & { json?: boolean }) => {
      const { desired, warnings } = await loadDesired(flags);
      printWarnings(warnings);
      const s = desired.services.find((x) => x.name === name);
      if (!s) {
        const known = desired.services.map((x) => x.name).join(', ') || 'none';
        const where = desired.host ? ` on host ${desired.host}` : '';
        throw new UsageError(`no service "${name}"${where} (services: ${known})`);
      }
      if (flags.json) printJson({ name: s.name, file: s.file, ...serviceAsFile(s) });
      else process.stdout.write(`# ${s.name} from ${s.file}\n` + stringify(serviceAsFile(s)));
    });
}
