/**
 * `berth smoke`: the checks berth.yaml declares for an environment, run from CI as the gate
 * before `promote`. Each is one GET with a deadline; the report says for each what was expected
 * and what came back.
 */
import { httpRequest, type HttpRequest, type HttpResponse } from '../adapters/http.js';
import { ExternalError } from '../model/errors.js';
import type { SmokeCheck } from '../model/service.js';

/** How one check went. */
export interface SmokeResult {
  url: string;
  ok: boolean;
  /** The status that came back; undefined when nothing did. */
  status?: number;
  /** Why it failed, for people. */
  problem?: string;
  ms: number;
}

/** How many checks run at once. */
const PARALLEL = 4;

export type Fetcher = (url: string, req: HttpRequest) => Promise<HttpResponse>;

/** Judge one answer against its check. Pure. */
export function judge(check: SmokeCheck, res: { status: number; body: string }): string | undefined {
  if (res.status !== check.status) return `expected ${check.status}, got ${res.status}`;
  if (check.body !== undefined && !res.body.includes(check.body)) {
    return `the body does not contain ${JSON.stringify(check.body)}`;
  }
  return undefined;
}

/** Run every check (a few at a time), results in the order given. */
export async function runSmoke(
  checks: readonly SmokeCheck[],
  opts: { fetch?: Fetcher; now?: () => number } = {},
): Promise<SmokeResult[]> {
  const get = opts.fetch ?? httpRequest;
  const now = opts.now ?? (() => performance.now());
  const results: SmokeResult[] = new Array(checks.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < checks.length; i = next++) {
      const c = checks[i]!;
      const start = now();
      try {
        const res = await get(c.url, {
          timeoutMs: c.timeoutMs,
          system: 'smoke',
          what: 'run the smoke check',
          // A check that expects a redirect must see it, not where it leads.
          redirect: c.status >= 300 && c.status < 400 ? 'manual' : 'follow',
        });
        const problem = judge(c, res);
        results[i] = {
          url: c.url,
          ok: !problem,
          status: res.status,
          ...(problem ? { problem } : {}),
          ms: now() - start,
        };
      } catch (e) {
        if (!(e instanceof ExternalError)) throw e;
        results[i] = { url: c.url, ok: false, problem: e.message.replace(/^smoke: /, ''), ms: now() - start };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, checks.length) }, worker));
  return results;
}

/** The report for people: one line per check, then the count. */
export function formatSmoke(
  env: string,
  commit: string,
  results: readonly SmokeResult[],
  color: (ok: boolean, t: string) => string = (_, t) => t,
): string {
  const lines = [`smoke ${env} at ${commit.slice(0, 7)}: ${results.length} check(s)`];
  for (const r of results) {
    const mark = color(r.ok, r.ok ? 'ok  ' : 'FAIL');
    const detail = r.ok ? `${r.status}` : r.problem;
    lines.push(`  ${mark}  GET ${r.url}  ${detail}  (${Math.round(r.ms)} ms)`);
  }
  const failed = results.filter((r) => !r.ok).length;
  lines.push(failed ? `${failed} of ${results.length} failed` : `all ${results.length} passed`);
  return lines.join('\n') + '\n';
}
