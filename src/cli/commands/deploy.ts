import { randomBytes } from 'node:crypto';
import { Option, type Command } from 'commander';
import type { FleetOutcome } from '../../fleet/deploy.js';
import { parseBatch, type BatchSize } from '../../fleet/batch.js';
import { UsageError } from '../../model/errors.js';
import { DEFAULT_LEASE_WAIT_MS } from '../../model/rotation.js';
import { defaultStorePath } from '../../store/paths.js';
import { EXIT, ExitError } from '../exit.js';
import { fleetOptions, type FleetFlags } from '../fleet.js';
import { deployId, durationFlag, spoolDirOption } from '../options.js';
import { printJson, useColor } from '../output.js';
import { cancelOnSignals } from '../signals.js';

interface DeployFlags extends FleetFlags {
  batch?: BatchSize;
  parallel: number;
  waitLock?: number;
  waitLease: number;
  deployId?: string;
  spoolDir?: string;
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
    .option(
      '--wait-lock <duration>',
      'wait this long (e.g. 5m) for another berth acting on a host',
      durationFlag('--wait-lock'),
    )
    .addOption(
      new Option(
        '--wait-lease <duration>',
        'wait this long for a lease to leave rotation (rollout.max_unavailable) before a host gives up',
      )
        .argParser(durationFlag('--wait-lease'))
        .default(DEFAULT_LEASE_WAIT_MS, '10m'),
    )
    .addOption(
      new Option('--deploy-id <id>', 'the id history groups this deploy under (default: a new one)')
        .env('BERTH_DEPLOY_ID')
        .argParser(deployId),
    )
    .addOption(spoolDirOption())
    .option('--adopt', 'take over same-named containers berth did not create')
    .option('--allow-empty', 'allow a repo without services to remove every managed container')
    .option('--json', 'print the outcome as JSON (no progress)')
    .action(async (flags: DeployFlags) => {
      // The pipeline, the SSH transport, the engine client and the record load only now.
      const [
        { deployFleet },
        { fleetRequest, withFleet },
        { printWarnings, repoLabel },
        out,
        { checkStoreLocation },
      ] = await Promise.all([
        import('../../fleet/deploy.js'),
        import('../fleet-run.js'),
        import('../context.js'),
        import('../fleet-output.js'),
        import('../../store/registry.js'),
      ]);
      const { deploySummary, fleetConsole } = out;
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
        outcome = await withFleet(flags, (open) =>
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
              leaseWaitMs: flags.waitLease,
              deployId: flags.deployId ?? newDeployId(),
              spoolDir: flags.spoolDir,
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

/** A deploy's id when none is given: when it started and a few random bytes (`deploy-20261202T1830-3fa2b1`). */
function newDeployId(): string {
  const when = new Date().toISOString().replace(/[-:]/g, '').slice(0, 13);
  return `deploy-${when}-${randomBytes(3).toString('hex')}`;
}
