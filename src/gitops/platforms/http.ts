/** What the platforms share: one JSON call with the token kept out of every message. */
import { httpRequest } from '../../adapters/http.js';
import { ExternalError, UsageError } from '../../model/errors.js';
import type { PlatformSettings } from './types.js';

/** `owner/name` → its two parts; a UsageError naming --project otherwise. */
export function splitProject(project: string, platform: string): { owner: string; name: string } {
  const m = /^([^/\s]+)\/([^/\s]+)$/.exec(project);
  if (!m) throw new UsageError(`--project ${JSON.stringify(project)}: ${platform} wants owner/name`);
  return { owner: m[1]!, name: m[2]! };
}

/** The platform's own words from an error body: `message` (and GitHub's `errors[].message`). */
function complaint(body: string): string {
  try {
    const j = JSON.parse(body) as {
      message?: unknown;
      error?: unknown;
      errors?: Array<{ message?: string }>;
    };
    const parts = [j.message, j.error, ...(j.errors ?? []).map((e) => e.message)].filter(
      (x): x is string => typeof x === 'string' && x.length > 0,
    );
    if (parts.length) return parts.join('; ');
  } catch {
    // Not JSON: a proxy's HTML page, say.
  }
  return body.replace(/\s+/g, ' ').slice(0, 200) || 'no details';
}

/** A JSON API client for one platform: `call(method, path, what, body?)`. */
export function api(s: PlatformSettings, system: string, headers: Record<string, string>) {
  return async <T>(method: string, path: string, what: string, json?: unknown): Promise<T> => {
    const url = `${s.apiUrl}${path}`;
    const res = await httpRequest(url, {
      method,
      headers,
      ...(json !== undefined ? { json } : {}),
      timeoutMs: s.timeoutMs,
      system,
      what,
      secrets: [s.token],
    });
    const fail = (why: string) =>
      new ExternalError(
        system,
        `cannot ${what}: ${method} ${url} answered ${why}`.split(s.token).join('***'),
      );
    if (res.status < 200 || res.status > 299) {
      const hint =
        res.status === 401 || res.status === 403 ? ' (is the token valid and allowed to do this?)' : '';
      throw fail(`${res.status}: ${complaint(res.body)}${hint}`);
    }
    try {
      return JSON.parse(res.body) as T;
    } catch {
      throw fail(`${res.status} with a body that is not JSON`);
    }
  };
}
