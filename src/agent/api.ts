import { createHash, timingSafeEqual } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { planJson } from '../cli/commands/plan.js';
import type { Plan } from '../model/plan.js';
import type { HistoryRow } from '../store/types.js';
import type { Logger } from './log.js';
import type { AgentMetrics } from './metrics.js';
import type { AgentActivity, AgentStatusV1 } from './status.js';
import { checkHook, isHookKind, proofHeader } from './webhooks.js';

/**
 * The agent's HTTP API on Hono: handlers over Web-standard Request/Response, so tests call
 * `app.request()` without a socket; the node server only carries them. Reads (`/healthz`,
 * `/v1/*`, `/metrics`) answer from what the agent already knows and never touch the engine or
 * git, so no request can make the agent work. `POST /v1/sync` needs the bearer token; webhooks
 * need the shared secret; either feature is off (403) while its secret is not set.
 */

/** What the API reads from and pokes at. */
export interface ApiAgent {
  status(): AgentStatusV1;
  plans(): {
    drift?: { commit: string | null; checkedAt: string | null; plan: Plan };
    lastReconcile?: { commit: string | null; plan: Plan };
  };
  trigger(reason: string): void;
  progress(): { cycles: number; lastCycleAt?: number; activity: AgentActivity };
}

export interface ApiOptions {
  agent: ApiAgent;
  /** The record, newest first. */
  history(q: { service?: string; limit: number }): Promise<HistoryRow[]>;
  metrics: AgentMetrics;
  /** BERTH_WEBHOOK_SECRET; webhooks are refused without it. */
  webhookSecret?: string;
  /** BERTH_API_TOKEN; `POST /v1/sync` is refused without it. */
  apiToken?: string;
  /** The largest body read; a longer one is refused before it is read to the end. */
  maxBodyBytes: number;
  log: Logger;
}

/** Request bodies larger than this are refused (a push event of a large merge is ~100 KiB). */
export const DEFAULT_MAX_BODY = 1024 * 1024;
/** Most rows `/v1/history` returns at once. */
const MAX_HISTORY = 1000;

export function agentApi(o: ApiOptions): Hono {
  const app = new Hono();

  app.get('/healthz', (c) => {
    const p = o.agent.progress();
    return c.json({
      ok: true,
      activity: p.activity,
      turns: p.cycles,
      lastTurnAt: p.lastCycleAt === undefined ? null : new Date(p.lastCycleAt).toISOString(),
    });
  });

  app.get('/v1/status', (c) => c.json(o.agent.status()));

  app.get('/v1/plan', (c) => {
    const p = o.agent.plans();
    return c.json({
      version: 'berth.agent.plan/v1',
      drift: p.drift
        ? { commit: p.drift.commit, checkedAt: p.drift.checkedAt, plan: planJson(p.drift.plan) }
        : null,
      lastReconcile: p.lastReconcile
        ? { commit: p.lastReconcile.commit, plan: planJson(p.lastReconcile.plan) }
        : null,
    });
  });

  app.get('/v1/history', async (c) => {
    const limitText = c.req.query('limit') ?? '50';
    const limit = Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_HISTORY) {
      return c.json(
        { error: `limit must be a whole number from 1 to ${MAX_HISTORY}, not ${JSON.stringify(limitText)}` },
        400,
      );
    }
    const service = c.req.query('service');
    try {
      const rows = await o.history(service === undefined ? { limit } : { service, limit });
      return c.json({ version: 'berth.agent.history/v1', rows });
    } catch (e) {
      return c.json({ error: `cannot read the record: ${(e as Error).message}` }, 503);
    }
  });

  app.post('/v1/sync', (c) => {
    if (!o.apiToken) return c.json({ error: 'sync is off: start the agent with BERTH_API_TOKEN set' }, 403);
    const auth = c.req.header('authorization') ?? '';
    const given = /^Bearer (.+)$/i.exec(auth)?.[1];
    if (given === undefined || !sameSecret(given, o.apiToken)) {
      c.header('www-authenticate', 'Bearer');
      return c.json({ error: 'a valid bearer token is required' }, 401);
    }
    o.agent.trigger('api');
    o.log.info('sync asked for through the API');
    return c.json({ accepted: true }, 202);
  });

  app.get('/metrics', async (c) => {
    const text = await o.metrics.registry.metrics();
    return c.body(text, 200, { 'content-type': o.metrics.registry.contentType });
  });

  app.post('/hooks/:kind', async (c) => {
    const kind = c.req.param('kind');
    if (!isHookKind(kind))
      return c.json({ error: `no webhook form "${kind}": use github, gitlab, gitea or generic` }, 404);
    const refuse = (status: 401 | 403 | 413, result: string, error: string) => {
      o.metrics.webhooks.inc({ kind, result });
      o.log.warn({ kind, error }, 'webhook refused');
      return c.json({ error }, status);
    };
    if (!o.webhookSecret)
      return refuse(403, 'disabled', 'webhooks are off: start the agent with BERTH_WEBHOOK_SECRET set');
    const body = await readCapped(c, o.maxBodyBytes);
    if (body === undefined)
      return refuse(413, 'too_large', `the body is larger than ${o.maxBodyBytes} bytes`);
    const check = checkHook(kind, c.req.header(proofHeader(kind)), body, o.webhookSecret);
    if (!check.ok) return refuse(401, 'bad_signature', check.reason);
    o.metrics.webhooks.inc({ kind, result: 'accepted' });
    o.agent.trigger(`webhook:${kind}`);
    o.log.info({ kind }, 'webhook accepted: looking at the remote now');
    return c.json({ accepted: true }, 202);
  });

  app.notFound((c) => c.json({ error: `no such endpoint: ${c.req.method} ${c.req.path}` }, 404));
  app.onError((e, c) => {
    o.log.error({ error: e.stack ?? e.message, path: c.req.path }, 'API error (this is a bug)');
    return c.json({ error: 'internal error' }, 500);
  });
  return app;
}

/**
 * The body, read only as far as `max` bytes: a declared length over the cap is refused before
 * a byte is read, and a body that runs past it (chunked, or lying about its length) is cut off
 * there. Undefined means "too large".
 */
async function readCapped(c: Context, max: number): Promise<Uint8Array | undefined> {
  const declared = c.req.header('content-length');
  if (declared !== undefined && !(Number(declared) <= max)) return undefined;
  const stream = c.req.raw.body;
  if (!stream) return new Uint8Array();
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/** Equal secrets, compared in constant time over digests of equal length. */
function sameSecret(a: string, b: string): boolean {
  const h = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(h(a), h(b));
}
