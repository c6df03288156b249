import { ExternalError } from '../../model/errors.js';
import type { CommitStatusSettings } from '../../model/agent-settings.js';
import { getPlatform, hostedAt } from '../../gitops/platforms/registry.js';
import type { Platform, PlatformPlugin, PlatformSettings } from '../../gitops/platforms/types.js';
import { NOTIFY_TIMEOUT_MS, type Notifier, type Report } from './types.js';

/**
 * A commit status `berth/<host>` on the platform that hosts the state repo, through the same
 * platform plugins `berth promote --pr` uses (src/gitops/platforms): pending when the agent
 * starts on a commit, then success or failure with a one-line reason. What the status needs
 * (token, project, API root) is resolved when a report is sent, so a missing piece is a failed
 * notification that names the berth.yaml setting or variable to give, never a failed deploy.
 */
export function commitStatusNotifier(
  s: CommitStatusSettings,
  env: NodeJS.ProcessEnv,
  repo: string,
  open: (plugin: PlatformPlugin, settings: PlatformSettings) => Platform = (p, x) => p.create(x),
): Notifier {
  const plugin = getPlatform(s.platform);
  const name = `commit-status ${plugin.name}`;
  let client: Platform | undefined;
  const connect = (): Platform => {
    if (client) return client;
    const vars = s.tokenEnv ? [s.tokenEnv] : plugin.tokenEnv;
    const tokenVar = vars.find((v) => env[v]);
    if (!tokenVar) throw new ExternalError('notify', `${name}: no token; set ${vars.join(' or ')}`);
    const hosted = hostedAt(repo);
    const project = s.project ?? hosted?.project;
    if (!project) {
      throw new ExternalError(
        'notify',
        `${name}: cannot tell the project from the repo URL; set agent.commit_status.project in berth.yaml`,
      );
    }
    const apiUrl =
      s.apiUrl ??
      plugin.apiUrlEnv.map((v) => env[v]).find(Boolean) ??
      (hosted ? plugin.apiUrlFor(hosted.host) : undefined);
    if (!apiUrl) {
      throw new ExternalError(
        'notify',
        `${name}: cannot tell the API address from the repo URL; set agent.commit_status.api_url in berth.yaml`,
      );
    }
    client = open(plugin, {
      apiUrl: apiUrl.replace(/\/+$/, ''),
      token: env[tokenVar]!,
      project,
      // Within the notifier's deadline: a slow platform never holds a turn up for longer.
      timeoutMs: NOTIFY_TIMEOUT_MS,
    });
    return client;
  };
  return {
    name,
    wants: () => true,
    async send(r: Report) {
      await connect().setCommitStatus(r.commit, {
        state: r.state,
        context: `berth/${r.host}`,
        description: r.description,
        ...(s.targetUrl ? { targetUrl: s.targetUrl } : {}),
      });
    },
  };
}
