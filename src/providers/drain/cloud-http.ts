/**
 * JSON over HTTP(S) for the drain providers that speak a cloud's REST API themselves (Octavia
 * and Keystone). Each attempt is bounded in time; throttling (429), server errors (5xx) and
 * dropped connections are retried with backoff, bounded in tries. Messages carry the method and
 * URL, never a header or a body, and any secret the caller names is masked in them.
 */
import http from 'node:http';
import https from 'node:https';
import { sleep } from '../../adapters/clock.js';

/** No DELETE: berth never deletes anything in a load balancer, and this client cannot. */
export type HttpMethod = 'GET' | 'POST' | 'PUT';

export interface HttpCall {
  method: HttpMethod;
  url: string;
  headers?: Record<string, string>;
  /** Sent as JSON. */
  body?: unknown;
}

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

export interface HttpPolicy {
  /** Bound on each attempt, from connect to the last byte. */
  timeoutMs: number;
  /** Tries in all for a retryable failure (at least 1). */
  attempts: number;
  /** First wait before a retry; doubles each time, capped at maxBackoffMs (Retry-After too). */
  backoffMs: number;
  maxBackoffMs: number;
  /** Extra CA certificates (PEM) and whether to check the server's certificate at all. */
  tls?: { ca?: string | Buffer; rejectUnauthorized?: boolean };
  /** Values that must never appear in a message (passwords, secrets, tokens). */
  secrets?: readonly string[];
}

/** A call that got no HTTP answer in the end (refused, reset, timed out), after its retries. */
export class HttpUnreachable extends Error {
  constructor(
    message: string,
    public readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'HttpUnreachable';
  }
}

/** Replace every secret in `text` by `***`. */
export function mask(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('***');
  return out;
}

/** The URL as shown in messages: without user info or query (which may carry credentials). */
export function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

export function retryable(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599);
}

/** Milliseconds a Retry-After header asks for (seconds or an HTTP date), if any. */
export function retryAfterMs(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(header) ? header[0] : header;
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

function once(call: HttpCall, policy: HttpPolicy): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    let u: URL;
    try {
      u = new URL(call.url);
    } catch {
      reject(new HttpUnreachable(`invalid URL ${JSON.stringify(shownUrl(call.url))}`, 'EINVALIDURL'));
      return;
    }
    const body = call.body === undefined ? undefined : Buffer.from(JSON.stringify(call.body));
    const headers: Record<string, string> = { accept: 'application/json', ...call.headers };
    if (body) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(body.length);
    }
    const secure = u.protocol === 'https:';
    if (!secure && u.protocol !== 'http:') {
      reject(new HttpUnreachable(`unsupported URL scheme in ${shownUrl(call.url)}`, 'EPROTO'));
      return;
    }
    const options: https.RequestOptions = { method: call.method, headers, agent: false };
    if (secure && policy.tls?.ca) options.ca = policy.tls.ca;
    if (secure && policy.tls?.rejectUnauthorized === false) options.rejectUnauthorized = false;
    const req = (secure ? https : http).request(u, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('error', (e) => finish(e));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    let done = false;
    const timer = setTimeout(() => {
      const e = new Error(`no answer within ${policy.timeoutMs} ms`) as NodeJS.ErrnoException;
      e.code = 'ETIMEDOUT';
      req.destroy(e);
    }, policy.timeoutMs);
    const finish = (err: NodeJS.ErrnoException | undefined, answer?: HttpAnswer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (answer) return resolve(answer);
      const code = err?.code ?? 'ECONNRESET';
      const why =
        err?.code === 'ETIMEDOUT' ? err.message : (err?.code ?? err?.message ?? 'connection failed');
      reject(
        new HttpUnreachable(`${call.method} ${shownUrl(call.url)}: ${mask(why, policy.secrets)}`, code, {
          cause: err,
        }),
      );
    };
    req.on('error', (e: NodeJS.ErrnoException) => finish(e));
    req.end(body);
  });
}

const wait = (ms: number) => sleep(ms);

/**
 * Make `call`, retrying 429, 5xx and connection failures with backoff. Resolves with the last
 * answer whatever its status (the caller knows what a 404 or 409 means); rejects with
 * HttpUnreachable when no answer came at all.
 */
export async function httpJson(call: HttpCall, policy: HttpPolicy): Promise<HttpAnswer> {
  const attempts = Math.max(1, policy.attempts);
  let backoff = policy.backoffMs;
  for (let i = 1; ; i++) {
    let answer: HttpAnswer | undefined;
    try {
      answer = await once(call, policy);
      if (!retryable(answer.status) || i >= attempts) return answer;
    } catch (e) {
      if (!(e instanceof HttpUnreachable) || e.code === 'EINVALIDURL' || e.code === 'EPROTO') throw e;
      if (i >= attempts) throw e;
    }
    const asked = answer ? retryAfterMs(answer.headers['retry-after']) : undefined;
    // A little jitter, so that several berth processes throttled together do not retry in step.
    const ms = Math.min(policy.maxBackoffMs, asked ?? backoff) * (1 + Math.random() * 0.2);
    await wait(Math.min(ms, policy.maxBackoffMs));
    backoff = Math.min(policy.maxBackoffMs, backoff * 2);
  }
}
