import type { Command } from 'commander';
import { hasChanges, type Plan } from '../../model/plan.js';
import { planText } from '../../reconcile/format.js';
import type { RepoFlags } from '../context.js';
import { EXIT, ExitError } from '../exit.js';
import { engineOptions, repoOptions, storeOption } from '../options.js';
import { colorPlan, paint, printJson, useColor } from '../output.js';

export interface PlanFlags extends RepoFlags {
  engineTimeout?: number;
  adopt?: boolean;
  allowEmpty?: boolean;
  json?: boolean;
  store?: string;
}

/** The plan as JSON: operations without the full specs, which `render` shows. */
export function planJson(plan: Plan): unknown {
  return {
    host: plan.host ?? null,
    ref: plan.ref,
    commit: plan.commit ?? null,
    changes: hasChanges(plan),
    pulls: plan.pulls,
    operations: plan.operations.map((op) => {
      const { kind, service, cause } = op;
      const base: Record<string, unknown> = { service, kind, cause };
      if ('spec' in op) base.image = op.spec.image;
      if ('fromImage' in op) base.fromImage = op.fromImage;
      if ('containerId' in op) base.containerId = op.containerId;
      if (op.kind === 'write-env' || op.kind === 'remove-env') base.path = op.path;
      return base;
    }),
    rotation: plan.rotation ?? null,
    unchanged: plan.unchanged,
    held: plan.held,
    warnings: plan.warnings,
    blockers: plan.blockers,
  };
}

export function registerPlan(program: Command): void {
  engineOptions(repoOptions(program.command('plan')))
    .description('what apply would do on this host, each action with its reason (exit 0: none, 2: changes)')
    .option('--adopt', 'plan to take over same-named containers berth did not create')
    .option('--allow-empty', 'allow a repo without services to remove every managed container')
    .addOption(storeOption())
    .option('--json', 'print the plan as JSON')
    .action(async (flags: PlanFlags) => {
      // The pipeline (and with it the engine client) is loaded only when the command runs.
      const [{ hostFrom, printWarnings, requestFrom }, { previewHost }] = await Promise.all([
        import('../context.js'),
        import('../../host/pipeline.js'),
      ]);
      const { plan, warnings, busy } = await previewHost(await hostFrom(flags), requestFrom(flags));
      printWarnings(warnings);
      if (flags.json) printJson({ ...(planJson(plan) as object), busy: busy ?? null });
      else {
        process.stdout.write(colorPlan(planText(plan), useColor()));
        if (busy) {
          process.stdout.write(
            paint(
              useColor(),
              'yellow',
              `note: ${busy.command} (pid ${busy.pid} on ${busy.machine}) is acting on this host since ${busy.since}; the plan may change when it is done`,
            ) + '\n',
          );
        }
      }
      if (plan.blockers.length || plan.held.length) throw new ExitError(EXIT.error);
      if (hasChanges(plan)) throw new ExitError(EXIT.changes);
    });
}
