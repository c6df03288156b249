import type { Command } from 'commander';
import { deployFleet, type FleetOutcome } from '../../fleet/deploy.js';
import { durationFlag, parseBatch, type BatchSize } from '../../fleet/targets.js';
import { UsageError } from '../../model/errors.js';
import { defaultStorePath } from '../../store/paths.js';
import { checkStoreLocation } from '../../store/registry.js';
import { printWarnings, repoLabel } from '../context.js';
import { EXIT, ExitError } from '../exit.js';
import { fleetOptions, fleetRequest, withFleet, type FleetFlags } from '../fleet.js';
import { deploySummary, fleetConsole } from '../fleet-output.js';
import { printJson, useColor } from '../output.js';
import { cancelOnSignals } from '../signals.js';

interface DeployFlags extends FleetFlags {
  batch?: BatchSize;
  parallel: number;
  waitLock?: number;
  adopt?: boolean;
  allowEmpty?: boolean;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--parallel takes a whole number of at least 1, not "${v}"`);
  return n;
}

export function registerDeploy(program: Command): void {
  fleetOptions(program.command('deploy'))
    .description(
      "roll the environment out to the inventory's hosts over SSH: pull everywhere, then batch by batch, stopping at the first host that fails",
    )
    .option('--batch <n|n%>', 'hosts changed at once (default: berth.yaml rollout.batch, else 1)', parseBatch)
    .option('--parallel <n>', 'services changed at once on a host', positiveInt, 4)
    .option('--wait-lock <duration>', 'wait this long (e.g. 5m) for another berth acting on a host', (v) =>
      durationFlag('--wait-lock', v),
    )
    .option('--adopt', 'take over same-named containers berth did not create')
    .option('--allow-empty', 'allow a repo without services to remove every managed container')
    .option('--json', 'print the outcome as JSON (no progress)')
    .action(async (flags: DeployFlags) => {
      const store = flags.store ?? defaultStorePath();
      checkStoreLocation(store);
      const req = {
        ...fleetRequest(flags, 'berth deploy'),
        adopt: flags.adopt,
        allowEmpty: flags.allowEmpty,
      };
      const color = useColor(process.stderr);
      const live = flags.json ? undefined : fleetConsole(process.stderr, color);
      const cancel = cancelOnSignals((sig) =>
        process.stderr.write(
          `\nberth: ${sig}: stopping every host at its next safe point (again to stop at once)\n`,
        ),
      );
      let outcome: FleetOutcome;
      try {
        outcome = await withFleet((open) =>
          deployFleet(
            { ...req, limit: flags.limit, batch: flags.batch },
            {
              open,
              store,
              repoLabel: repoLabel(flags.repo),
              reporter: live,
              signal: cancel.signal,
              parallel: flags.parallel,
              waitLockMs: flags.waitLock,
              onWarnings: flags.json ? undefined : printWarnings,
            },
          ),
        );
      } finally {
        live?.end();
        cancel.dispose();
      }
      if (flags.json) printJson(outcome);
      else process.stdout.write(deploySummary(outcome, flags.env ?? flags.ref ?? '', useColor()));
      if (outcome.internal) throw new ExitError(EXIT.internal);
      if (outcome.cancelled) throw new ExitError(EXIT.cancelled);
      if (outcome.ok) return;
      const bad = outcome.hosts.filter(
        (h) => h.status !== 'applied' && h.status !== 'no-op' && h.status !== 'skipped',
      );
      throw new ExitError(bad.length && bad.every((h) => h.status === 'busy') ? EXIT.busy : EXIT.error);
    });
}
