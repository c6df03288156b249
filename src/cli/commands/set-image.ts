import type { Command } from 'commander';
import {
  changedEnvOption,
  gitopsOptions,
  printServiceChange,
  retryNotice,
  withWorkspace,
  writeOptions,
  type WriteFlags,
} from './gitops-options.js';

interface SetImageFlags extends WriteFlags {
  env: string;
  image: string;
  commit?: string;
  build?: string;
  force?: boolean;
}

const HELP = `
Edits services/SERVICE.yaml on the environment's branch (comments, key order and quoting kept),
commits "SERVICE: build N (sha)" and pushes. When another job pushed first, it reads the branch
again and redoes the edit (--tries times). An unchanged value makes no commit; a build number
lower than the branch's is refused unless --force. Never talks to a Docker engine.

  berth set-image api --env staging --repo git@git.example.com:ops/state.git \\
    --image registry.example.com/team/api:1.4.3 --commit "$CI_COMMIT_SHA" --build "$CI_PIPELINE_IID"`;

export function registerSetImage(program: Command): void {
  writeOptions(gitopsOptions(program.command('set-image')))
    .argument('<service>', 'the service to change')
    .description(
      'CI: commit a new image (and gitCommit, buildNumber) for a service to an environment branch, and push',
    )
    .addOption(changedEnvOption())
    .requiredOption('--image <ref>', 'the new image reference')
    .option('--commit <sha>', 'CI metadata: the source commit the image was built from (gitCommit)')
    .option('--build <n>', 'CI metadata: the build number (buildNumber); never lowered without --force')
    .option('--force', 'allow a build number lower than the one on the branch')
    .option('--json', 'print the outcome as JSON')
    .addHelpText('after', HELP)
    .action(async (service: string, flags: SetImageFlags) => {
      const [{ changeName, setImage }, { loadChecked }] = await Promise.all([
        import('../../gitops/set-image.js'),
        import('../../host/checked.js'),
      ]);
      const out = await withWorkspace(flags, (ws) =>
        setImage(
          ws,
          {
            service,
            env: flags.env,
            image: flags.image,
            ...(flags.commit !== undefined ? { gitCommit: flags.commit } : {}),
            ...(flags.build !== undefined ? { buildNumber: flags.build } : {}),
            force: Boolean(flags.force),
          },
          {
            load: loadChecked,
            maxTries: flags.tries,
            onRetry: retryNotice(flags.json, () => flags.env, flags.tries),
          },
        ),
      );
      printServiceChange(flags, service, out, {
        changed: (commit) => {
          const { now, was } = changeName(out.result.before, out.result.after);
          const tries = out.tries > 1 ? ` after ${out.tries} tries` : '';
          return `${service}: ${now} pushed to ${out.branch} as ${commit.slice(0, 12)}${tries} (was ${was})`;
        },
      });
    });
}
