import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import path from 'node:path';
import { alive, freePort, GiveUp, killOnExit, stopPid, waitUntil } from './proc.js';

/** One backend server: a small node HTTP server in the test process that answers with its name. */
export interface BackendServer {
  /** The server's name in HAProxy's backend `app`. */
  name: string;
  address: string;
  port: number;
}

/** A request held open at a backend server until released. */
export interface HeldRequest {
  /** The server the request reached. */
  server: string;
  /** Answer the request (the connection then ends); safe to call twice. */
  release(): void;
  /** The HTTP status the client got once answered, or 0 when the connection was cut. */
  done: Promise<number>;
}

/** A private HAProxy started by `startHaproxy`. */
export interface HaproxyHandle {
  pid: number;
  dir: string;
  /** The admin socket (unix path), level admin. */
  socket: string;
  /** The same runtime API over TCP: `127.0.0.1:PORT`. */
  tcpSocket: string;
  /** http://127.0.0.1:PORT, balancing roundrobin over `servers` in backend `backend`. */
  frontend: string;
  backend: string;
  servers: BackendServer[];
  /** One raw runtime API command (its own connection), HAProxy's answer as is. */
  command(cmd: string): Promise<string>;
  /** srv_admin_state of a server in `backend`, read with `show servers state`. */
  adminState(server: string): Promise<number>;
  /** Current sessions (scur) of a server in `backend`, from `show stat`. */
  sessions(server: string): Promise<number>;
  /** GET `path` through the frontend (no keep-alive); `server` forces that server with use-server. */
  request(
    urlPath: string,
    opts?: { server?: string; timeoutMs?: number },
  ): Promise<{ status: number; body: string }>;
  /** A request through the frontend to `server` that the server holds open; resolves once it arrived there. */
  hold(server: string): Promise<HeldRequest>;
  /** SIGTERM (then SIGKILL) to HAProxy's PID, closes the backend servers, deletes `dir`. Safe twice. */
  stop(): Promise<void>;
}

/**
 * Start backend servers on 127.0.0.1 and 127.0.0.2 (`s1`, `s2`), then HAProxy (Debian's, in
 * foreground mode `-db`) with a generated config in a temp dir: an admin socket (unix and TCP),
 * `mode http`, a frontend on a free loopback port and backend `app` over the two servers. A
 * request with header `x-berth-server: NAME` goes to that server (`use-server`), so a test can
 * put a session on the one it watches. Resolves once both the admin socket and the frontend
 * answer (bounded).
 */
export async function startHaproxy(
  opts: {
    readyTimeoutMs?: number;
    /**
     * Servers that already run elsewhere (containers on simulated hosts) instead of the two
     * node servers; HAProxy is then ready when its admin socket answers, whatever they do.
     */
    servers?: BackendServer[];
  } = {},
): Promise<HaproxyHandle> {
  const backends: Backends = opts.servers
    ? { servers: opts.servers, held: new Map(), onHeld: new Set(), close: async () => undefined }
    : await startBackends([
        { name: 's1', address: '127.0.0.1' },
        { name: 's2', address: '127.0.0.2' },
      ]);
  const external = opts.servers !== undefined;
  let lastError: unknown;
  // Free ports were free a moment ago; another process may take one first, so try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(backends, opts.readyTimeoutMs ?? 10_000, external);
    } catch (e) {
      lastError = e;
    }
  }
  await backends.close();
  throw lastError;
}

interface Backends {
  servers: BackendServer[];
  /** Open holds per server, answered by release(). */
  held: Map<string, Set<http.ServerResponse>>;
  /** Called when a held request reaches a server. */
  onHeld: Set<(server: string, res: http.ServerResponse) => void>;
  close(): Promise<void>;
}

async function startBackends(specs: Array<{ name: string; address: string }>): Promise<Backends> {
  const held = new Map<string, Set<http.ServerResponse>>();
  const onHeld = new Set<(server: string, res: http.ServerResponse) => void>();
  const servers: BackendServer[] = [];
  const https: http.Server[] = [];
  for (const spec of specs) {
    held.set(spec.name, new Set());
    const srv = http.createServer((req, res) => {
      if (req.url?.startsWith('/hold')) {
        held.get(spec.name)!.add(res);
        res.on('close', () => held.get(spec.name)!.delete(res));
        for (const f of onHeld) f(spec.name, res);
        return;
      }
      res.end(spec.name);
    });
    https.push(srv);
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(0, spec.address, () => resolve());
    });
    servers.push({ ...spec, port: (srv.address() as AddressInfo).port });
  }
  return {
    servers,
    held,
    onHeld,
    close: async () => {
      for (const set of held.values()) for (const res of set) res.destroy();
      await Promise.all(
        https.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.closeAllConnections();
              s.close(() => resolve());
            }),
        ),
      );
    },
  };
}

function runtime(socketPath: string, cmd: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const conn = net.connect(socketPath);
    const timer = setTimeout(() => conn.destroy(new Error(`runtime API: no answer to "${cmd}"`)), timeoutMs);
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.end(cmd + '\n'));
    conn.on('data', (d: string) => (out += d));
    conn.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    conn.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

async function startOnce(
  backends: Backends,
  readyTimeoutMs: number,
  external = false,
): Promise<HaproxyHandle> {
  const dir = mkdtempSync('/tmp/bw-hap-');
  const socket = path.join(dir, 'admin.sock');
  const [frontPort, adminPort] = [await freePort(), await freePort()];
  const backend = 'app';
  const config = [
    'global',
    `  stats socket ${socket} mode 600 level admin`,
    `  stats socket 127.0.0.1:${adminPort} level admin`,
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 30s',
    '  timeout server 30s',
    'frontend web',
    `  bind 127.0.0.1:${frontPort}`,
    `  default_backend ${backend}`,
    `backend ${backend}`,
    '  balance roundrobin',
    ...backends.servers.map((s) => `  use-server ${s.name} if { req.hdr(x-berth-server) ${s.name} }`),
    ...backends.servers.map((s) => `  server ${s.name} ${s.address}:${s.port}`),
    '',
  ].join('\n');
  writeFileSync(path.join(dir, 'haproxy.cfg'), config);
  const log = openSync(path.join(dir, 'haproxy.log'), 'a');
  const child = spawn('haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')], {
    detached: true,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error('could not start haproxy (is it installed? run scripts/setup.sh)');
  }
  const forget = killOnExit(pid);
  let stopped: Promise<void> | undefined;
  const stopHaproxy = async () => {
    await stopPid(pid, 5_000);
    forget();
    rmSync(dir, { recursive: true, force: true });
  };
  const frontend = `http://127.0.0.1:${frontPort}`;
  const request: HaproxyHandle['request'] = (urlPath, o = {}) =>
    new Promise((resolve, reject) => {
      const req = http.get(
        `${frontend}${urlPath}`,
        {
          agent: false,
          timeout: o.timeoutMs ?? 5_000,
          headers: o.server ? { 'x-berth-server': o.server } : {},
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${urlPath}: timed out`)));
      req.on('error', reject);
    });
  try {
    await waitUntil(
      'haproxy to answer on its admin socket and frontend',
      async () => {
        if (!alive(pid)) throw new GiveUp('haproxy exited');
        if (!(await runtime(socket, 'show info', 1_000)).includes('Name: HAProxy')) return false;
        return external || (await request('/', { timeoutMs: 1_000 })).status === 200;
      },
      { timeoutMs: readyTimeoutMs, intervalMs: 50 },
    );
  } catch (e) {
    const tail = readFileSync(path.join(dir, 'haproxy.log'), 'utf8').split('\n').slice(-10).join('\n');
    await stopHaproxy();
    throw new Error(`${(e as Error).message}\n${tail}`);
  }
  const command = (cmd: string) => runtime(socket, cmd);
  return {
    pid,
    dir,
    socket,
    tcpSocket: `127.0.0.1:${adminPort}`,
    frontend,
    backend,
    servers: backends.servers,
    command,
    async adminState(server) {
      const out = await command(`show servers state ${backend}`);
      const lines = out.split('\n');
      const cols = (lines.find((l) => l.startsWith('# ')) ?? '').slice(2).split(' ');
      const row = lines.map((l) => l.split(' ')).find((f) => f[cols.indexOf('srv_name')] === server);
      if (!row) throw new Error(`show servers state ${backend}: no ${server} in ${JSON.stringify(out)}`);
      return Number(row[cols.indexOf('srv_admin_state')]);
    },
    async sessions(server) {
      const lines = (await command('show stat')).split('\n');
      const cols = (lines[0] ?? '').slice(2).split(',');
      const row = lines.map((l) => l.split(',')).find((f) => f[0] === backend && f[1] === server);
      if (!row) throw new Error(`show stat: no ${backend}/${server}`);
      return Number(row[cols.indexOf('scur')]);
    },
    request,
    async hold(server) {
      let arrived!: (res: http.ServerResponse) => void;
      const arrival = new Promise<http.ServerResponse>((r) => (arrived = r));
      const listener = (name: string, res: http.ServerResponse) => {
        if (name === server) arrived(res);
      };
      backends.onHeld.add(listener);
      const done = request('/hold', { server, timeoutMs: 60_000 }).then(
        (r) => r.status,
        () => 0,
      );
      let timer: NodeJS.Timeout | undefined;
      try {
        const res = await Promise.race([
          arrival,
          new Promise<never>((_r, reject) => {
            timer = setTimeout(
              () => reject(new Error(`held request did not reach ${server} within 5 s`)),
              5_000,
            );
          }),
        ]);
        return { server, release: () => res.end(server), done };
      } finally {
        clearTimeout(timer);
        backends.onHeld.delete(listener);
      }
    },
    stop: () =>
      (stopped ??= (async () => {
        await stopHaproxy();
        await backends.close();
      })()),
  };
}
