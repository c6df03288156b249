/**
 * A git remote over HTTP for tests and the bench: a node HTTP server on 127.0.0.1 that runs git's
 * own smart-HTTP server program (`git http-backend`, as a CGI) for the bare repositories under
 * `root`. It counts the requests and bytes it serves (what an agent costs the git server), and
 * it can be stopped and started again on the same port (a git outage).
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GitHttpServer {
  /** `http://127.0.0.1:PORT` (a repository is `${url}/name.git`). */
  url: string;
  /** Requests answered and bytes moved since the start (or the last `resetCounts`). */
  counts(): { requests: number; bytesIn: number; bytesOut: number };
  resetCounts(): void;
  /** Stop answering: the port is closed and every open connection cut. */
  down(): Promise<void>;
  /** Listen again on the same port. */
  up(): Promise<void>;
  stop(): Promise<void>;
}

export async function startGitHttp(root: string): Promise<GitHttpServer> {
  let counts = { requests: 0, bytesIn: 0, bytesOut: 0 };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://git');
    counts.requests++;
    const cgi = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.replace(/^\?/, ''),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        REMOTE_ADDR: '127.0.0.1',
        ...(req.headers['content-encoding']
          ? { HTTP_CONTENT_ENCODING: req.headers['content-encoding'] }
          : {}),
        ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
      },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    req.on('data', (d: Buffer) => (counts.bytesIn += d.length));
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headerDone = false;
    cgi.stdout.on('data', (d: Buffer) => {
      if (headerDone) {
        counts.bytesOut += d.length;
        res.write(d);
        return;
      }
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      headerDone = true;
      let status = 200;
      for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
        const i = line.indexOf(':');
        const k = line.slice(0, i).trim();
        const v = line.slice(i + 1).trim();
        if (/^status$/i.test(k)) status = Number(v.split(' ')[0]);
        else if (k) res.setHeader(k, v);
      }
      res.writeHead(status);
      const body = head.subarray(end + 4);
      counts.bytesOut += body.length;
      res.write(body);
    });
    cgi.on('close', () => {
      if (!headerDone) res.writeHead(502);
      res.end();
    });
    cgi.on('error', () => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const close = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
    });
  await listen(0);
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    counts: () => ({ ...counts }),
    resetCounts: () => (counts = { requests: 0, bytesIn: 0, bytesOut: 0 }),
    down: close,
    up: () => listen(port),
    stop: close,
  };
}
