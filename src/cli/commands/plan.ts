import path from 'node:path';
import type { Command } from 'commander';
import { loadOrCreateDigestKey } from '../../adapters/digest-key.js';
import { defaultStorePath } from '../../store/paths.js';
import { dockerEngine } from '../../adapters/docker.js';
import type { Engine } from '../../adapters/engine.js';
import { hostFiles } from '../../adapters/fs.js';
import { hasChanges, type Plan } from '../../model/plan.js';
import type { DesiredState } from '../../model/service.js';
import { observeHost } from '../../observe/observe.js';
import { planText } from '../../reconcile/format.js';
import { planHost, type PlanOptions } from '../../reconcile/plan.js';
import { loadDesired, printWarnings } from '../context.js';
import { EXIT, ExitError } from '../exit.js';
import type { RepoFlags } from '../context.js';
import { repoOptions } from '../options.js';
import { colorPlan, printJson, useColor } from '../output.js';

export interface PlanFlags extends RepoFlags, PlanOptions {
  json?: boolean;
  store?: string;
}

/** This host's digest key lives beside its record, so plan and apply agree on it. */
export function digestKeyFor(flags: { store?: string }): () => Promise<Buffer> {
  return () =>
    loadOrCreateDigestKey(path.join(path.dirname(flags.store ?? defaultStorePath()), 'secret-digest.key'));
}

/** Read the repo, observe the engine once, plan purely. */
export async function makePlan(
  flags: PlanFlags,
): Promise<{ plan: Plan; desired: DesiredState; engine: Engine }> {
  const { desired, warnings } = await loadDesired(flags, { digestKey: digestKeyFor(flags) });
  printWarnings(warnings);
  const engine = dockerEngine();
  const observed = await observeHost(engine, hostFiles, desired);
  const plan = planHost(desired, observed, { adopt: flags.adopt, allowEmpty: flags.allowEmpty });
  return { plan, desired, engine };
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
      if (op.kind === 'write-env') base.path = op.path;
      return base;
    }),
    unchanged: plan.unchanged,
    held: plan.held,
    warnings: plan.warnings,
    blockers: plan.blockers,
  };
}

export function registerPlan(program: Command): void {
  repoOptions(program.command('plan'))
    .description('what apply would do on this host, each action with its reason (exit 0: none, 2: changes)')
    .option('--adopt', 'plan to take over same-named containers berth did not create')
    .option('--allow-empty', 'allow a repo without services to remove every managed container')
    .option(
      '--store <path>',
      `deployment record; the host's digest key is beside it (default ${defaultStorePath()})`,
    )
    .option('--json', 'print the plan as JSON')
    .action(async (flags: PlanFlags) => {
      const { plan } = await makePlan(flags);
      if (flags.json) printJson(planJson(plan));
      else process.stdout.write(colorPlan(planText(plan), useColor()));
      if (plan.blockers.length || plan.held.length) throw new ExitError(EXIT.error);
      if (hasChanges(plan)) throw new ExitError(EXIT.changes);
    });
}
