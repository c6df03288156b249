import type { Command } from 'commander';
import { describeRelease, shortSha } from '../../gitops/release.js';
import {
  changedEnvOption,
  gitopsOptions,
  printServiceChange,
  retryNotice,
  withWorkspace,
  writeOptions,
  type WriteFlags,
} from './gitops-options.js';

interface RollbackFlags extends WriteFlags {
  env: string;
  to?: string;
}

const HELP = `
Restores the image, gitCommit and buildNumber the service had before, taken from its own file's
history on the branch, as a new commit ("api: rollback build 124 (4b5c6d7) → build 123 (3f2a1c9)").
History is never rewritten. Without --to, the previous build: the newest earlier release with a
lower build number, so a second rollback goes further back. Other settings are left as they are.

  berth rollback api --env production
  berth rollback api --env production --to 118          # a build number
  berth rollback api --env production --to 3f2a1c9      # a gitCommit, or a state repo commit`;

export function registerRollback(program: Command): void {
  writeOptions(gitopsOptions(program.command('rollback')))
    .argument('<service>', 'the service to roll back')
    .description(
      "revert a service to its previous (or a named) build from the branch's history, as a new commit",
    )
    .addOption(changedEnvOption())
    .option('--to <build|commit>', 'the build number, gitCommit or state repo commit to go back to')
    .option('--json', 'print the outcome as JSON')
    .addHelpText('after', HELP)
    .action(async (service: string, flags: RollbackFlags) => {
      const [{ rollback }, { loadChecked }] = await Promise.all([
        import('../../gitops/rollback.js'),
        import('../../host/checked.js'),
      ]);
      const out = await withWorkspace(flags, (ws) =>
        rollback(
          ws,
          { service, env: flags.env, ...(flags.to !== undefined ? { to: flags.to } : {}) },
          {
            load: loadChecked,
            maxTries: flags.tries,
            onRetry: retryNotice(flags.json, () => flags.env, flags.tries),
          },
        ),
      );
      const { result } = out;
      printServiceChange(flags, service, out, {
        extra: { restoredFrom: result.from },
        changed: (commit) =>
          `${service}: rolled back ${describeRelease(result.before)} → ${describeRelease(result.after)} ` +
          `(as of ${shortSha(result.from)}) on ${out.branch} as ${commit.slice(0, 12)}`,
      });
    });
}
