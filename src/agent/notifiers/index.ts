import type { AgentSettings } from '../../model/agent-settings.js';
import type { Logger } from '../log.js';
import type { AgentMetrics } from '../metrics.js';
import type { Notifier, Report } from './types.js';
import { fetchPost, webhookNotifier } from './webhook.js';

export type { Notifier, Report, ReportState } from './types.js';

/** How long one notifier may take; a slow chat server never holds the agent up for longer. */
export const NOTIFY_TIMEOUT_MS = 10_000;

/** Extra notifier kinds, by the settings key that turns them on (the commit status joins here). */
export interface NotifierFactories {
  commitStatus?: (s: NonNullable<AgentSettings['commitStatus']>, env: NodeJS.ProcessEnv) => Notifier;
}

/** The notifiers berth.yaml's `agent` block asks for. */
export function notifiersFor(
  settings: AgentSettings | undefined,
  env: NodeJS.ProcessEnv,
  factories: NotifierFactories = {},
): Notifier[] {
  if (!settings) return [];
  const out: Notifier[] = [];
  if (settings.commitStatus && factories.commitStatus)
    out.push(factories.commitStatus(settings.commitStatus, env));
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
