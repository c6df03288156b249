import path from 'node:path';
import type { Command } from 'commander';
import { hostFiles } from '../../adapters/fs.js';
import { drainMarker } from '../../adapters/drain-marker.js';
import { executePlan, type DrainStep } from '../../apply/execute.js';
import type { DesiredState } from '../../model/service.js';
import { drainTimeoutMs, getProvider } from '../../providers/drain/registry.js';
import type { DrainTarget } from '../../providers/drain/types.js';
import { withHostLock } from '../../apply/lock.js';
import { hasChanges } from '../../model/plan.js';
import { UsageError } from '../../model/errors.js';
import { planText, summary } from '../../reconcile/format.js';
import { defaultStorePath } from '../../store/paths.js';
import { openSqliteStore } from '../../store/sqlite.js';
import { repoLabel } from '../context.js';
import { EXIT, ExitError } from '../exit.js';
import { colorPlan, consoleReporter, paint, printJson, useColor } from '../output.js';
import { repoOptions } from '../options.js';
import { makePlan, planJson, type PlanFlags } from './plan.js';

interface ApplyFlags extends PlanFlags {
  store?: string;
  parallel: number;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--parallel takes a whole number of at least 1, not "${v}"`);
  return n;
}

export function registerApply(program: Command): void {
  repoOptions(program.command('apply'))
    .description('converge this host (the engine at DOCKER_HOST) with the state repo, once')
    .option('--adopt', 'take over same-named containers berth did not create')
    .option('--allow-empty', 'allow a repo without services to remove every managed container')
    .option('--store <path>', `deployment record (SQLite); default ${defaultStorePath()}`)
    .option('--parallel <n>', 'how many services change at once', positiveInt, 4)
    .option('--json', 'print the plan and the outcome as JSON')
    .action(async (flags: ApplyFlags) => {
      const storePath = flags.store ?? defaultStorePath();
      const dockerHost = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
      await withHostLock(path.dirname(storePath), dockerHost, async () => {
        const { plan, engine, desired } = await makePlan(flags);
        const drain = drainStepFor(desired, path.dirname(storePath), dockerHost);
        const pendingUndrain = drain ? (await drain.marker.read()) !== undefined : false;
        const color = useColor();
        if (plan.blockers.length) {
          if (flags.json) printJson({ plan: planJson(plan), applied: false });
          else process.stdout.write(colorPlan(planText(plan), color));
          throw new UsageError('the plan is blocked (see above); nothing was applied');
        }
        if (!hasChanges(plan) && !pendingUndrain) {
          if (flags.json)
            printJson({ plan: planJson(plan), applied: true, ok: plan.held.length === 0, steps: [] });
          else
            process.stdout.write(colorPlan(plan.held.length ? planText(plan) : `${summary(plan)}\n`, color));
          if (plan.held.length) throw new ExitError(EXIT.error);
          return;
        }
        if (!flags.json) process.stdout.write(colorPlan(planText(plan), color));
        const store = openSqliteStore(storePath);
        try {
          const outcome = await executePlan(plan, {
            engine,
            files: hostFiles,
            store,
            now: () => new Date(),
            reporter: flags.json ? undefined : consoleReporter(),
            repo: repoLabel(flags.repo),
            parallel: flags.parallel,
            drain,
          });
          if (flags.json) printJson({ plan: planJson(plan), applied: true, ...outcome });
          else if (outcome.ok) {
            process.stdout.write(paint(color, 'green', `Applied: ${summary(plan)}`) + '\n');
          } else {
            process.stdout.write(paint(color, 'red', `Apply failed: ${outcome.error}`) + '\n');
          }
          if (!outcome.ok || plan.held.length) throw new ExitError(EXIT.error);
        } finally {
          await store.close();
        }
      });
    });
}

/** The host's load balancer step, when berth.yaml (or the host's vars) name one. */
function drainStepFor(desired: DesiredState, stateDir: string, endpoint: string): DrainStep | undefined {
  const lb = desired.loadBalancer;
  if (!lb) return undefined;
  const target: DrainTarget = { host: desired.host ?? 'localhost', settings: lb.settings };
  return {
    provider: getProvider(lb.provider),
    target,
    timeoutMs: drainTimeoutMs(target),
    marker: drainMarker(stateDir, endpoint),
  };
}
