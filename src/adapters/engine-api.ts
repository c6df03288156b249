import http from 'node:http';
import type { Readable } from 'node:stream';

/**
 * The Docker Engine API over HTTP, with nothing but node's own http client: a unix socket or
 * tcp, TLS when asked. berth uses a dozen endpoints; a general client library (and the SSH, gRPC
 * and BuildKit code it loads) would cost every command that reaches an engine a quarter of a
 * second and 25 MiB before the first request. Paths are unversioned, so the engine answers in
 * its own API version, as the docker CLI's negotiation ends up doing.
 */

/** Where the engine listens, as node's http client takes it. */
export interface EngineAddress {
  socketPath?: string;
  host?: string;
  port?: number;
  /** HTTPS with these (PEM) files; absent for plain HTTP. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
}

/**
 * An answer other than 2xx (`statusCode`, and the engine's `{ message }` as `json`), or a
 * connection that failed (node's own error, with its `code`, re-thrown as is).
 */
export class EngineApiError extends Error {
  constructor(
    message: string,
    public readonly statusCode: number,
    public readonly json: { message?: string } | null,
  ) {
    super(message);
    this.name = 'EngineApiError';
  }
}

export interface EngineRequest {
  /** Query parameters; undefined ones are left out. */
  query?: Record<string, string | number | boolean | undefined>;
  /** A JSON body (objects), or the raw bytes or stream of a tar archive. */
  body?: object | Buffer | Readable;
  headers?: Record<string, string>;
  /** Abandons the request (and the answer's stream). */
  signal?: AbortSignal;
}

/** One engine, through its HTTP API. */
export interface EngineApi {
  /** The answer parsed as JSON (text when it is not JSON; undefined when empty). */
  json<T = unknown>(method: string, path: string, req?: EngineRequest): Promise<T>;
  /** The answer as a stream, for endpoints that stream (pull, import, archives). */
  stream(method: string, path: string, req?: EngineRequest): Promise<http.IncomingMessage>;
}

export function engineApi(address: EngineAddress): EngineApi {
  let transport: Promise<typeof http.request> | undefined;
  // node:https (and TLS with it) only for an engine that wants it.
  const requestFn = () =>
    (transport ??= address.tls
      ? import('node:https').then((m) => m.request as typeof http.request)
      : Promise.resolve(http.request));

  const send = async (method: string, path: string, req: EngineRequest): Promise<http.IncomingMessage> => {
    const request = await requestFn();
    const headers: Record<string, string> = { ...req.headers };
    let payload: Buffer | Readable | undefined;
    if (req.body instanceof Buffer) {
      payload = req.body;
      headers['Content-Type'] = 'application/x-tar';
    } else if (isReadable(req.body)) {
      payload = req.body;
      headers['Content-Type'] = 'application/x-tar';
    } else if (req.body !== undefined) {
      payload = Buffer.from(JSON.stringify(req.body));
      headers['Content-Type'] = 'application/json';
    }
    if (payload instanceof Buffer) headers['Content-Length'] = String(payload.length);
    const options: http.RequestOptions & { ca?: Buffer; cert?: Buffer; key?: Buffer } = {
      method,
      path: path + queryString(req.query),
      headers,
    };
    if (address.socketPath !== undefined) options.socketPath = address.socketPath;
    else {
      options.host = address.host;
      options.port = address.port;
    }
    if (address.tls) Object.assign(options, address.tls);
    if (req.signal) options.signal = req.signal;

    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const r = request(options, resolve);
      r.on('error', reject);
      if (payload === undefined || Buffer.isBuffer(payload)) r.end(payload);
      else {
        const body: Readable = payload;
        body.on('error', (e: Error) => r.destroy(e));
        body.pipe(r);
      }
    });
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return res;
    const text = (await readAll(res)).toString('utf8');
    const json = parseJson(text);
    const said =
      json && typeof json === 'object' && typeof (json as { message?: unknown }).message === 'string'
        ? (json as { message: string }).message
        : text.trim();
    throw new EngineApiError(
      said || `HTTP ${status}`,
      status,
      json && typeof json === 'object' ? (json as { message?: string }) : null,
    );
  };

  return {
    async json<T>(method: string, path: string, req: EngineRequest = {}): Promise<T> {
      const text = (await readAll(await send(method, path, req))).toString('utf8');
      if (text === '') return undefined as T;
      const json = parseJson(text);
      return (json === undefined ? text : json) as T;
    },
    stream: (method, path, req = {}) => send(method, path, req),
  };
}

/**
 * Read a stream of JSON messages, one per line (pull and import progress), calling `onEvent` for
 * each; resolves when the stream ends.
 */
export async function followProgress(
  stream: NodeJS.ReadableStream,
  onEvent: (event: Record<string, unknown>) => void,
): Promise<void> {
  let rest = '';
  const take = (line: string) => {
    const json = parseJson(line.trim());
    if (json && typeof json === 'object') onEvent(json as Record<string, unknown>);
  };
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    rest += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    const lines = rest.split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) take(line);
  }
  take(rest);
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function queryString(query: EngineRequest['query']): string {
  if (!query) return '';
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) q.append(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

function isReadable(v: unknown): v is Readable {
  return v !== null && typeof v === 'object' && typeof (v as Readable).pipe === 'function';
}

/**
 * The credentials header the engine reads for registry access: the JSON in URL-safe base64
 * *with* padding, as the docker CLI sends it (an engine that cannot decode it pulls without
 * credentials instead of failing).
 */
export function registryAuthHeader(auth: object): Record<string, string> {
  const b64 = Buffer.from(JSON.stringify(auth)).toString('base64');
  return { 'X-Registry-Auth': b64.replace(/\+/g, '-').replace(/\//g, '_') };
}

// What the engine's answers hold, as far as berth reads them.

export interface ApiContainerSummary {
  Id: string;
  Names: string[];
  Image: string;
  ImageID: string;
  State: string;
  Labels?: Record<string, string> | null;
}

export interface ApiImageSummary {
  Id: string;
  RepoTags?: string[] | null;
  RepoDigests?: string[] | null;
}

export interface ApiContainerInspect {
  Id: string;
  Name: string;
  Created: string;
  Image: string;
  State: {
    Status: string;
    Running: boolean;
    ExitCode: number;
    Health?: { Status?: string; Log?: Array<{ Output?: string }> };
  };
  Config: { Image: string; Env?: string[] | null; Labels?: Record<string, string> | null };
}

export interface ApiDistribution {
  Descriptor?: { digest?: string };
}
