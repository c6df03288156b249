import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Engine, HostNetwork } from '../adapters/engine.js';
import { notRunningText, shortOutput } from './output.js';
import type { ProbeResult } from './types.js';

/** Body bytes read from an unhealthy answer. */
const BODY_MAX = 512;

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * GET `url` once, on a connection of its own. 2xx and 3xx are healthy (redirects are not
 * followed: a 302 to a login page means the app is up); anything else is unhealthy with the
 * status and the first bytes of the body. The whole exchange is bounded by `timeoutMs`.
 * With `network` (a host reached over SSH), the connection is made from the host.
 */
export function httpProbe(
  url: string,
  timeoutMs: number,
  signal?: AbortSignal,
  network?: HostNetwork,
): Promise<ProbeResult> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return Promise.resolve({ ok: false, final: true, output: `not a URL: ${shortOutput(url)}` });
  }
  const client = target.protocol === 'http:' ? http : target.protocol === 'https:' ? https : undefined;
  if (!client) {
    return Promise.resolve({
      ok: false,
      final: true,
      output: `only http and https URLs: ${target.protocol}`,
    });
  }
  return oneCheck(timeoutMs, `no answer within ${timeoutMs} ms`, signal, (finish) => {
    let req: http.ClientRequest | undefined;
    let closed = false;
    const get = (socketPath?: string) => {
      if (closed) return;
      // agent: false: no keep-alive, each check opens and closes its own connection, as a new
      // client would.
      req = client.get(
        target,
        { agent: false, headers: { 'user-agent': 'berth-health' }, ...(socketPath ? { socketPath } : {}) },
        (res) => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 400) {
            const location = res.headers.location;
            finish({ ok: true, output: `HTTP ${status}${location ? ` -> ${location}` : ''}` });
            return;
          }
          const chunks: Buffer[] = [];
          let size = 0;
          const report = () =>
            finish({
              ok: false,
              output: `HTTP ${status}: ${Buffer.concat(chunks).subarray(0, BODY_MAX).toString('utf8')}`,
            });
          res.on('data', (c: Buffer) => {
            chunks.push(c);
            size += c.length;
            if (size >= BODY_MAX) report();
          });
          res.on('end', report);
          // A body cut off after the status line still tells what the status was.
          res.on('error', report);
          res.on('close', report);
        },
      );
      req.on('error', (e) => finish({ ok: false, output: errorText(e) }));
    };
    if (network) {
      const host = target.hostname.replace(/^\[|\]$/g, '');
      const port = Number(target.port || (target.protocol === 'https:' ? 443 : 80));
      network.socketTo(host, port).then(get, (e: unknown) => finish({ ok: false, output: errorText(e) }));
    } else get();
    return () => {
      closed = true;
      req?.destroy();
    };
  });
}

/** `host:port` or `[v6]:port`; undefined when it is neither. */
export function parseHostPort(hostPort: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(hostPort.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}

/**
 * Open a TCP connection to `host:port` and close it at once; healthy when it connects in time.
 * With `network` (a host reached over SSH), the host itself tries the connection.
 */
export function tcpProbe(
  hostPort: string,
  timeoutMs: number,
  signal?: AbortSignal,
  network?: HostNetwork,
): Promise<ProbeResult> {
  const target = parseHostPort(hostPort);
  if (!target) {
    return Promise.resolve({ ok: false, final: true, output: `not HOST:PORT: ${shortOutput(hostPort)}` });
  }
  if (network) {
    return oneCheck(timeoutMs, `no connection to ${hostPort} within ${timeoutMs} ms`, signal, (finish) => {
      network
        .tcpCheck(target.host, target.port, timeoutMs)
        .then(finish, (e: unknown) => finish({ ok: false, output: errorText(e) }));
      return () => undefined;
    });
  }
  return oneCheck(timeoutMs, `no connection to ${hostPort} within ${timeoutMs} ms`, signal, (finish) => {
    const socket = net.connect(target);
    socket.on('connect', () => finish({ ok: true, output: `connected to ${hostPort}` }));
    socket.on('error', (e) => finish({ ok: false, output: errorText(e) }));
    return () => socket.destroy();
  });
}

/**
 * One check that ends exactly once: on its own verdict, at `timeoutMs`, or when `signal`
 * aborts. `start` opens the connection, reports through `finish`, and returns how to close it.
 */
function oneCheck(
  timeoutMs: number,
  timeoutOutput: string,
  signal: AbortSignal | undefined,
  start: (finish: (r: ProbeResult) => void) => () => void,
): Promise<ProbeResult> {
  return new Promise<ProbeResult>((resolve) => {
    let done = false;
    let close: (() => void) | undefined = undefined;
    const finish = (r: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      close?.();
      resolve({ ...r, output: shortOutput(r.output) });
    };
    const onAbort = () => finish({ ok: false, output: 'check abandoned' });
    const timer = setTimeout(() => finish({ ok: false, output: timeoutOutput }), timeoutMs);
    close = start(finish);
    if (done) close();
    else if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The image's own Docker HEALTHCHECK, as the engine reports it: `healthy` passes, `starting`
 * has no verdict yet, `unhealthy` fails. A container that is not running, or whose image has
 * no HEALTHCHECK, fails at once and for good.
 */
export async function dockerProbe(engine: Engine, containerId: string): Promise<ProbeResult> {
  let state;
  try {
    state = await engine.inspect(containerId);
  } catch (e) {
    return { ok: false, output: shortOutput(errorText(e)) };
  }
  if (!state.running || state.status !== 'running') {
    return { ok: false, final: true, output: notRunningText(state) };
  }
  switch (state.health) {
    case 'healthy':
      return { ok: true, output: 'docker: healthy' };
    case 'starting':
      return { ok: false, starting: true, output: 'docker: starting' };
    case 'unhealthy':
      return {
        ok: false,
        output: shortOutput(
          state.healthOutput ? `docker: unhealthy: ${state.healthOutput}` : 'docker: unhealthy',
        ),
      };
    case undefined:
      return { ok: false, final: true, output: 'the image has no Docker HEALTHCHECK' };
    default:
      return { ok: false, output: `docker: ${shortOutput(state.health)}` };
  }
}
