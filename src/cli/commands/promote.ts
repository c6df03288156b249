import type { Command } from 'commander';
import { UsageError } from '../../model/errors.js';
import type { PromoteMode, Promoted } from '../../gitops/promote.js';
import { describeRelease, shortSha } from '../../gitops/release.js';
import {
  gitopsOptions,
  printOutcome,
  retryNotice,
  withWorkspace,
  writeOptions,
  type WriteFlags,
} from './gitops-options.js';

interface PromoteFlags extends WriteFlags {
  from: string;
  to?: string;
  commit?: string;
  services?: string;
  allFields?: boolean;
  includeNew?: boolean;
  force?: boolean;
  push?: boolean;
  merge?: boolean;
  pr?: string;
  project?: string;
  apiUrl?: string;
  prBranch?: string;
}

const HELP = `
Takes the release (image, gitCommit, buildNumber) of each service at one exact commit of the
source (--commit, default its head, recorded in the commit and the pull request) and writes it
onto the target, keeping the target's own settings (env values, hosts) unless --all-fields. A
service only the source has comes with --include-new; nothing is removed. A build lower than the
target's (a hotfix made there) is refused unless --force. Deliver it one way:

  --push             commit to the target branch
  --pr github|gitlab|gitea
                     push branch berth/promote-FROM-to-TO and open a pull request, or update the
                     open one; the body is the diff as a table. Token from GITHUB_TOKEN (or
                     GH_TOKEN), GITLAB_TOKEN, GITEA_TOKEN; API from --api-url, GITHUB_API_URL,
                     CI_API_V4_URL, GITEA_API_URL or the repo's host; --project from the repo URL.
  --merge            fast-forward the target to the source commit (branches kept identical);
                     refused when the target has commits the source lacks

  berth promote --from staging --pr github
  berth promote --from staging --to production --commit 3f2a1c9 --services api,web --push`;

const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

export function registerPromote(program: Command): void {
  writeOptions(gitopsOptions(program.command('promote')))
    .description('carry a verified release to the next environment: pull request, push, or merge')
    .requiredOption('--from <env>', 'the environment the release was verified on')
    .option('--to <env>', "the environment to promote to (default: berth.yaml's promote_to of --from)")
    .option('--commit <sha>', 'the verified commit of --from (default: its head now)')
    .option('--services <a,b>', 'only these services')
    .option('--all-fields', 'carry every setting, not only image, gitCommit and buildNumber')
    .option('--include-new', 'carry services the target does not have yet')
    .option('--force', 'allow a build lower than the one on the target')
    .option('--push', 'commit the promotion to the target branch')
    .option('--merge', 'fast-forward the target branch to the source commit')
    .option('--pr <platform>', 'open or update a pull request on github, gitlab or gitea')
    .option('--project <owner/name>', 'with --pr: the project on the platform (default: from --repo)')
    .option('--api-url <url>', 'with --pr: the API root (GitHub Enterprise, self-hosted GitLab or Gitea)')
    .option('--pr-branch <name>', 'with --pr: the branch the pull request comes from')
    .option('--json', 'print the outcome as JSON')
    .addHelpText('after', HELP)
    .action(async (flags: PromoteFlags) => {
      const [{ openPlatform }, { promote }, { loadChecked }] = await Promise.all([
        import('../../gitops/platforms/registry.js'),
        import('../../gitops/promote.js'),
        import('../../host/checked.js'),
      ]);
      const modes = (['push', 'merge', 'pr'] as const).filter(
        (m) => flags[m] !== undefined && flags[m] !== false,
      );
      if (modes.length !== 1) {
        throw new UsageError(
          modes.length
            ? `give one of --push, --merge, --pr, not ${modes.map((m) => `--${m}`).join(' and ')}`
            : 'give one of --push, --merge or --pr PLATFORM',
        );
      }
      const mode: PromoteMode = modes[0]!;
      if (mode !== 'pr' && (flags.project || flags.apiUrl || flags.prBranch)) {
        throw new UsageError('--project, --api-url and --pr-branch only go with --pr');
      }
      if (mode === 'merge' && (flags.services || flags.allFields || flags.includeNew || flags.force)) {
        throw new UsageError(
          '--merge moves the whole branch: --services, --all-fields, --include-new and --force do not apply',
        );
      }
      // Every piece the platform needs is checked before anything is pushed.
      const platform =
        mode === 'pr'
          ? openPlatform(flags.pr!, {
              repo: flags.repo,
              ...(flags.project ? { project: flags.project } : {}),
              ...(flags.apiUrl ? { apiUrl: flags.apiUrl } : {}),
              env: process.env,
            })
          : undefined;
      const out = await withWorkspace(flags, (ws) =>
        promote(
          ws,
          {
            from: flags.from,
            ...(flags.to ? { to: flags.to } : {}),
            ...(flags.commit ? { commit: flags.commit } : {}),
            ...(flags.services ? { services: list(flags.services) } : {}),
            allFields: Boolean(flags.allFields),
            includeNew: Boolean(flags.includeNew),
            force: Boolean(flags.force),
            mode,
            ...(platform ? { pr: { platform, ...(flags.prBranch ? { branch: flags.prBranch } : {}) } } : {}),
          },
          {
            load: loadChecked,
            maxTries: flags.tries,
            onRetry: retryNotice(flags.json, () => flags.to ?? 'target', flags.tries),
          },
        ),
      );
      printOutcome(flags, out, { json: jsonOf, text: textOf });
    });
}

function jsonOf(o: Promoted) {
  return {
    from: o.source,
    to: o.target,
    mode: o.mode,
    changed: o.commit !== undefined,
    ...(o.commit ? { commit: o.commit } : {}),
    ...(o.pullRequest ? { pullRequest: o.pullRequest } : {}),
    ...(o.nothing ? { nothing: o.nothing } : {}),
    moves: o.plan?.moves ?? [],
    kept: o.plan?.kept ?? [],
    newLeftOut: o.plan?.newLeftOut ?? [],
    tries: o.tries,
  };
}

function textOf(o: Promoted): string {
  if (o.nothing) return `${o.nothing}\n`;
  const lines: string[] = [];
  const src = `${o.source.env} (${shortSha(o.source.commit)})`;
  if (o.mode === 'merge') return `${o.target.env} fast-forwarded to ${src}\n`;
  if (o.pullRequest) {
    const pr = o.pullRequest;
    lines.push(`pull request #${pr.number} ${pr.created ? 'opened' : 'updated'}: ${pr.url}`);
    lines.push(`  promotes ${src} to ${o.target.env} from branch ${pr.branch}`);
  } else {
    lines.push(`promoted ${src} to ${o.target.env} as ${o.commit!.slice(0, 12)}`);
  }
  for (const m of o.plan?.moves ?? []) {
    const what =
      m.kind === 'new'
        ? `new: ${describeRelease(m.after)}`
        : `${describeRelease(m.before ?? {})} → ${describeRelease(m.after)}${m.kind === 'all-fields' ? ' (all settings)' : ''}`;
    lines.push(`  ${m.service}  ${what}`);
  }
  for (const k of o.plan?.kept ?? []) {
    lines.push(`  ${k.service}  kept as on ${o.target.env}: ${k.fields.map((f) => f.what).join(', ')}`);
  }
  if (o.plan?.newLeftOut.length) {
    lines.push(`  only on ${o.source.env}, not carried (--include-new): ${o.plan.newLeftOut.join(', ')}`);
  }
  return lines.join('\n') + '\n';
}
