import type { Command } from 'commander';
import { UsageError } from '../../model/errors.js';
import { EXIT, ExitError } from '../exit.js';
import { fleetOptions, type FleetFlags } from '../fleet.js';
import { printJson, useColor } from '../output.js';

interface StatusFlags extends FleetFlags {
  health: boolean;
}

export function registerStatus(program: Command): void {
  fleetOptions(program.command('status'))
    .description(
      'desired against running on every host of the environment, over SSH: drift, health, last result (exit 0: all in sync and healthy, 1: not)',
    )
    .option('--no-health', 'do not run the services’ health checks')
    .option('--json', 'print the status as JSON')
    .action(async (flags: StatusFlags) => {
      const [{ loadRepo }, { fleetStatus }, { fleetHosts }, { printWarnings }, run, { statusTable }] =
        await Promise.all([
          import('../../host/desired.js'),
          import('../../fleet/status.js'),
          import('../../fleet/targets.js'),
          import('../context.js'),
          import('../fleet-run.js'),
          import('../fleet-output.js'),
        ]);
      const { fleetRequest, recentApplies, withFleet } = run;
      const req = fleetRequest(flags, 'berth status');
      const loaded = await loadRepo(req.source);
      if (!flags.json) printWarnings(loaded.warnings);
      const inv = loaded.repo.inventory;
      if (!inv?.hosts.length)
        throw new UsageError(
          'berth status needs hosts: list them in inventory.yaml, or name an inventory source',
        );
      const hosts = fleetHosts(inv, flags.limit);
      const applies = await recentApplies(flags.store);
      const statuses = await withFleet(flags, (open) =>
        fleetStatus(hosts, { ...req, loaded }, { open, health: flags.health, applies }),
      );
      const ok = statuses.every((s) => s.reachable && s.inSync && s.healthy && !s.error);
      if (flags.json) {
        printJson({ ref: loaded.repo.ref, commit: loaded.repo.commit ?? null, ok, hosts: statuses });
      } else {
        process.stdout.write(statusTable(statuses, useColor()));
      }
      if (!ok) throw new ExitError(EXIT.error);
    });
}
