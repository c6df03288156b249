/**
 * HTTP for berth's calls to hosted APIs (git platforms) and to the user's own endpoints (smoke
 * checks): Node's fetch, always with a deadline, failures as ExternalErrors that name what was
 * being done and where, never the request's headers (which carry tokens).
 */
import { ExternalError } from '../model/errors.js';

/** One request. */
export interface HttpRequest {
  method?: string;
  headers?: Record<string, string>;
  /** A JSON body; sets content-type. */
  json?: unknown;
  /** Longest time for the whole exchange, body included. */
  timeoutMs: number;
  /** Which system failed, for the error (`github`, `smoke`). */
  system: string;
  /** What berth was doing, for the error (`open a pull request`). */
  what: string;
  /** Strings that must never appear in an error (a token the server might echo). */
  secrets?: string[];
  /** `manual` answers with a redirect itself instead of following it. Default: follow. */
  redirect?: 'follow' | 'manual';
}

/** A response, its body read as text (bounded). */
export interface HttpResponse {
  status: number;
  headers: Headers;
  body: string;
}

/** Bodies larger than this are cut: a smoke check or an API answer has no business being bigger. */
const MAX_BODY = 4 * 1024 * 1024;

/** Remove every secret, and any user:password in a URL, from a text before it goes into a message. */
export function scrub(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/\s@]*@/gi, '$1***@');
  for (const s of secrets) if (s) out = out.split(s).join('***');
  return out;
}

/** Read at most MAX_BODY bytes of the body as UTF-8. */
async function readBody(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    chunks.push(value);
    if (size >= MAX_BODY) {
      await reader.cancel().catch(() => undefined);
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, MAX_BODY).toString('utf8');
}

/** Send one request; any answer (even 500) resolves, only no answer at all rejects. */
export async function httpRequest(url: string, req: HttpRequest): Promise<HttpResponse> {
  const headers: Record<string, string> = { 'user-agent': 'berth', ...req.headers };
  let body: string | undefined;
  if (req.json !== undefined) {
    body = JSON.stringify(req.json);
    headers['content-type'] = 'application/json';
  }
  const signal = AbortSignal.timeout(req.timeoutMs);
  try {
    const res = await fetch(url, {
      method: req.method ?? 'GET',
      headers,
      body,
      signal,
      redirect: req.redirect ?? 'follow',
    });
    return { status: res.status, headers: res.headers, body: await readBody(res) };
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    const why =
      err.name === 'TimeoutError' || signal.aborted
        ? `no answer within ${req.timeoutMs < 1000 ? `${req.timeoutMs} ms` : `${+(req.timeoutMs / 1000).toFixed(1)}s`}`
        : (err.cause?.code ?? err.cause?.message ?? err.message);
    throw new ExternalError(
      req.system,
      scrub(`cannot ${req.what}: ${req.method ?? 'GET'} ${url}: ${why}`, req.secrets),
      { cause: e },
    );
  }
}
