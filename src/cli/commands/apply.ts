import { Option, type Command } from 'commander';
import { UsageError } from '../../model/errors.js';
import type { HostOutcome, PipelineReporter } from '../../host/pipeline.js';
import { DEFAULT_LEASE_WAIT_MS } from '../../model/rotation.js';
import { planText, summary } from '../../reconcile/format.js';
import { defaultStorePath } from '../../store/paths.js';
import { EXIT, ExitError } from '../exit.js';
import { colorPlan, consoleReporter, paint, printJson, useColor } from '../output.js';
import {
  deployId,
  durationFlag,
  engineOptions,
  repoOptions,
  spoolDirOption,
  storeOption,
} from '../options.js';
import { cancelOnSignals } from '../signals.js';
import { planJson, type PlanFlags } from './plan.js';

interface ApplyFlags extends PlanFlags {
  parallel: number;
  waitLock?: number;
  waitLease: number;
  deployId?: string;
  spoolDir?: string;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--parallel takes a whole number of at least 1, not "${v}"`);
  return n;
}

export function registerApply(program: Command): void {
  engineOptions(repoOptions(program.command('apply')))
    .description('converge this host (the engine at DOCKER_HOST) with the state repo, once')
    .option('--adopt', 'take over same-named containers berth did not create')
    .option('--allow-empty', 'allow a repo without services to remove every managed container')
    .addOption(storeOption())
    .addOption(spoolDirOption())
    .option('--parallel <n>', 'how many services change at once', positiveInt, 4)
    .option(
      '--wait-lock <duration>',
      'wait this long (e.g. 5m) for another berth acting on this host',
      durationFlag('--wait-lock'),
    )
    .addOption(
      new Option(
        '--wait-lease <duration>',
        'wait this long for a lease to leave rotation (rollout.max_unavailable) before giving up',
      )
        .argParser(durationFlag('--wait-lease'))
        .default(DEFAULT_LEASE_WAIT_MS, '10m'),
    )
    .addOption(
      new Option(
        '--deploy-id <id>',
        'one id for the applies of one deploy across hosts, so history groups them',
      )
        .env('BERTH_DEPLOY_ID')
        .argParser(deployId),
    )
    .option('--json', 'print the plan and the outcome as JSON')
    .action(async (flags: ApplyFlags) => {
      // The pipeline, the engine client and the record are loaded only when the command runs.
      const [{ hostFrom, printWarnings, repoLabel, requestFrom }, { convergeHost }, { checkStoreLocation }] =
        await Promise.all([
          import('../context.js'),
          import('../../host/pipeline.js'),
          import('../../store/registry.js'),
        ]);
      const store = flags.store ?? defaultStorePath();
      checkStoreLocation(store);
      const color = useColor();
      const progress = flags.json ? undefined : consoleReporter();
      const reporter: PipelineReporter = {
        pullProgress: (image, p) => progress?.pullProgress(image, p),
        step: (service, kind, status, message) => progress?.step(service, kind, status, message),
        warnings: printWarnings,
        planned: (plan) => {
          if (!flags.json) process.stdout.write(colorPlan(planText(plan), color));
        },
        notice: (message) => process.stderr.write(`berth: ${message}\n`),
      };
      const cancel = cancelOnSignals((sig) =>
        process.stderr.write(`berth: ${sig}: stopping at the next safe point (again to stop at once)\n`),
      );
      let outcome: HostOutcome;
      try {
        outcome = await convergeHost(await hostFrom(flags), requestFrom(flags), {
          store,
          command: 'berth apply',
          repoLabel: repoLabel(flags.repo),
          reporter,
          signal: cancel.signal,
          parallel: flags.parallel,
          waitLockMs: flags.waitLock,
          leaseWaitMs: flags.waitLease,
          deployId: flags.deployId,
          spoolDir: flags.spoolDir,
        });
      } finally {
        cancel.dispose();
      }
      report(outcome, flags.json === true, color);
    });
}

/** Print how the apply ended and end with its exit code. */
function report(outcome: HostOutcome, json: boolean, color: boolean): void {
  const { plan, status } = outcome;
  if (json) {
    printJson({
      plan: plan ? planJson(plan) : null,
      applied: status !== 'blocked' && status !== 'cancelled',
      status,
      ok: status === 'applied' || status === 'no-op',
      result: status,
      steps: outcome.steps,
      applyId: outcome.applyId,
      error: outcome.error,
      spooled: outcome.spooled ?? [],
    });
  } else if (plan) {
    switch (status) {
      case 'blocked':
        process.stdout.write(colorPlan(planText(plan), color));
        break;
      case 'no-op':
        process.stdout.write(colorPlan(`${summary(plan)}\n`, color));
        break;
      case 'held':
        if (outcome.steps.length === 0) process.stdout.write(colorPlan(planText(plan), color));
        else
          process.stdout.write(
            paint(color, 'yellow', `Applied, with services held: ${summary(plan)}`) + '\n',
          );
        break;
      case 'applied':
        process.stdout.write(paint(color, 'green', `Applied: ${summary(plan)}`) + '\n');
        break;
      case 'failed':
        process.stdout.write(paint(color, 'red', `Apply failed: ${outcome.error}`) + '\n');
        break;
      case 'cancelled':
        process.stdout.write(paint(color, 'yellow', `Apply cancelled: ${outcome.error}`) + '\n');
        break;
    }
  }
  if (!json && outcome.spooled?.length) {
    process.stderr.write(
      `berth: the record could not be reached; this apply's outcome waits in ${outcome.spooled.join(', ')} ` +
        'and is written to the record by the next berth that reaches it\n',
    );
  }
  if (status === 'blocked') throw new UsageError('the plan is blocked (see above); nothing was applied');
  if (status === 'cancelled') throw new ExitError(EXIT.cancelled);
  if (status === 'failed' || status === 'held') throw new ExitError(EXIT.error);
}
