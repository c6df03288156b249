import type { AgentSettings } from '../../model/agent-settings.js';
import type { Logger } from '../log.js';
import type { AgentMetrics } from '../metrics.js';
import { commitStatusNotifier } from './commit-status.js';
import { NOTIFY_TIMEOUT_MS, type Notifier, type Report } from './types.js';
import { fetchPost, webhookNotifier } from './webhook.js';

export { NOTIFY_TIMEOUT_MS, type Notifier, type Report, type ReportState } from './types.js';

/** Replacements for the notifier kinds, by the settings key that turns them on (for tests). */
export interface NotifierFactories {
  commitStatus?: typeof commitStatusNotifier;
}

/** The notifiers berth.yaml's `agent` block asks for; `repo` is the state repo's URL. */
export function notifiersFor(
  settings: AgentSettings | undefined,
  env: NodeJS.ProcessEnv,
  repo: string,
  factories: NotifierFactories = {},
): Notifier[] {
  if (!settings) return [];
  const out: Notifier[] = [];
  if (settings.commitStatus)
    out.push((factories.commitStatus ?? commitStatusNotifier)(settings.commitStatus, env, repo));
  for (const n of settings.notify) out.push(webhookNotifier(n, env, fetchPost));
  return out;
}

/**
 * Tell every notifier that wants it, side by side, each within its deadline. Never throws: a
 * failure is logged (its message names no secret) and counted, and the deploy goes on.
 */
export async function notifyAll(
  notifiers: readonly Notifier[],
  report: Report,
  deps: { log: Logger; metrics?: AgentMetrics; timeoutMs?: number },
): Promise<void> {
  await Promise.all(
    notifiers
      .filter((n) => n.wants(report.state))
      .map(async (n) => {
        try {
          await n.send(report, AbortSignal.timeout(deps.timeoutMs ?? NOTIFY_TIMEOUT_MS));
          deps.metrics?.notifications.inc({ notifier: n.name, result: 'sent' });
          deps.log.debug({ notifier: n.name, state: report.state, commit: report.commit }, 'notified');
        } catch (e) {
          deps.metrics?.notifications.inc({ notifier: n.name, result: 'failed' });
          deps.log.warn(
            { notifier: n.name, state: report.state, commit: report.commit, error: (e as Error).message },
            'a notifier failed; the deploy is not affected',
          );
        }
      }),
  );
}
