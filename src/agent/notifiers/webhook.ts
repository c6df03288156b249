import { ExternalError } from '../../model/errors.js';
import type { NotifySettings } from '../../model/agent-settings.js';
import type { Notifier, Report } from './types.js';

/**
 * A JSON POST after each new commit is converged or fails: a Slack-compatible `text` line
 * (Slack, Mattermost, Rocket.Chat and Teams' incoming webhooks show it as is) and the details
 * under `berth`. The URL may itself be a secret (a Slack webhook): it is then read from the
 * variable the repo names, and only that variable's name is ever shown.
 */
export function webhookNotifier(
  s: NotifySettings,
  env: NodeJS.ProcessEnv,
  post: (url: string, body: string, signal: AbortSignal) => Promise<number>,
): Notifier {
  const url = s.url ?? env[s.urlEnv!];
  // Named by where the URL came from, never by the URL itself.
  const shown = s.urlEnv ? `$${s.urlEnv}` : new URL(s.url!).host;
  const name = `webhook ${shown}`;
  return {
    name,
    wants: (state) => state !== 'pending' && s.on.includes(state),
    async send(r: Report, signal) {
      if (!url) throw new ExternalError('notify', `${name}: the variable ${s.urlEnv} is not set`);
      const body = JSON.stringify({ text: reportText(r), berth: { ...r } });
      let status: number;
      try {
        status = await post(url, body, signal);
      } catch (e) {
        const err = e as Error & { cause?: { message?: string } };
        const why = err.cause?.message ? `${err.message}: ${err.cause.message}` : err.message;
        throw new ExternalError('notify', `${name}: ${why.split(url).join(shown)}`);
      }
      if (status < 200 || status > 299) throw new ExternalError('notify', `${name} answered HTTP ${status}`);
    },
  };
}

/** The one line people see in chat. */
export function reportText(r: Report): string {
  const mark = r.state === 'success' ? 'applied' : r.state === 'failure' ? 'FAILED' : 'applying';
  return `berth/${r.host} ${r.env} ${r.commit.slice(0, 12)} ${mark}: ${r.description}`;
}

/** POST with Node's fetch, bounded by the signal; the answer's status code. */
export async function fetchPost(url: string, body: string, signal: AbortSignal): Promise<number> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'berth-agent' },
    body,
    signal,
    redirect: 'error',
  });
  await res.body?.cancel();
  return res.status;
}
