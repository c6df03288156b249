import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { httpProbe, parseHostPort, tcpProbe } from './probes.js';
import { realClock, waitHealthy } from './wait.js';

// Real sockets on 127.0.0.1, each server on a port the kernel picks.

let server: http.Server;
let base: string;
let flaky = 0;
const open = new Set<net.Socket>();

before(async () => {
  server = http.createServer((req, res) => {
    switch (req.url) {
      case '/ok':
        return res.end('fine');
      case '/redirect':
        // Followed, this would be a 500: a probe must not follow it.
        res.writeHead(302, { location: '/boom' });
        return res.end();
      case '/boom':
        res.writeHead(500, { 'content-type': 'text/plain' });
        return res.end('boom:\n  database is down');
      case '/big':
        res.writeHead(503);
        return res.end('x'.repeat(100_000));
      case '/hang':
        return; // never answers
      case '/flaky':
        // 503 twice, then 200: what a starting app looks like.
        res.writeHead(++flaky <= 2 ? 503 : 200);
        return res.end(`answer ${flaky}`);
      default:
        res.writeHead(404);
        return res.end('no such page');
    }
  });
  server.on('connection', (s) => {
    open.add(s);
    s.on('close', () => open.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** A port nothing listens on: one that was just bound and closed. */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

test('http: 200 is healthy', async () => {
  assert.deepEqual(await httpProbe(`${base}/ok`, 2000), { ok: true, output: 'HTTP 200' });
});

test('http: a 302 is healthy and is not followed', async () => {
  assert.deepEqual(await httpProbe(`${base}/redirect`, 2000), { ok: true, output: 'HTTP 302 -> /boom' });
});

test('http: 500 is unhealthy, with the status and the start of the body on one line', async () => {
  assert.deepEqual(await httpProbe(`${base}/boom`, 2000), {
    ok: false,
    output: 'HTTP 500: boom: database is down',
  });
  assert.deepEqual(await httpProbe(`${base}/nothing`, 2000), { ok: false, output: 'HTTP 404: no such page' });
});

test('http: a large body is cut short for the record', async () => {
  const r = await httpProbe(`${base}/big`, 2000);
  assert.equal(r.ok, false);
  assert.ok(r.output.startsWith('HTTP 503: xxx'), r.output);
  assert.ok(r.output.length <= 200, `${r.output.length}`);
});

test('http: a server that never answers times out, in about the timeout', async () => {
  const t0 = performance.now();
  const r = await httpProbe(`${base}/hang`, 300);
  const took = performance.now() - t0;
  assert.deepEqual(r, { ok: false, output: 'no answer within 300 ms' });
  assert.ok(took >= 290 && took < 10_000, `took ${took} ms`);
  // The probe closed its connection: the server holds none from it for long.
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(open.size, 0);
});

test('http: connection refused is unhealthy', async () => {
  const port = await closedPort();
  const r = await httpProbe(`http://127.0.0.1:${port}/`, 2000);
  assert.equal(r.ok, false);
  assert.equal(r.final, undefined);
  assert.match(r.output, /ECONNREFUSED 127\.0\.0\.1:\d+/);
});

test('http: an abort ends the check at once', async () => {
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 50);
  const t0 = performance.now();
  const r = await httpProbe(`${base}/hang`, 60_000, ac.signal);
  assert.deepEqual(r, { ok: false, output: 'check abandoned' });
  assert.ok(performance.now() - t0 < 10_000);
});

test('http: what is not an http(s) URL fails for good', async () => {
  assert.deepEqual(await httpProbe('not a url', 1000), {
    ok: false,
    final: true,
    output: 'not a URL: not a url',
  });
  assert.deepEqual(await httpProbe('ftp://127.0.0.1/', 1000), {
    ok: false,
    final: true,
    output: 'only http and https URLs: ftp:',
  });
});

test('tcp: a listening port is healthy, and the probe closes its connection', async () => {
  const accepted: net.Socket[] = [];
  const srv = net.createServer((s) => accepted.push(s));
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  try {
    assert.deepEqual(await tcpProbe(`127.0.0.1:${port}`, 2000), {
      ok: true,
      output: `connected to 127.0.0.1:${port}`,
    });
    // The server sees the connection end.
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('connection still open after 2 s')), 2000);
      const s = accepted[0];
      if (!s) return reject(new Error('nothing accepted'));
      if (s.destroyed || s.readableEnded) return (clearTimeout(t), resolve());
      s.on('close', () => (clearTimeout(t), resolve()));
      s.resume();
    });
  } finally {
    await new Promise((resolve) => srv.close(resolve));
  }
});

test('tcp: refused is unhealthy; a bad HOST:PORT fails for good', async () => {
  const port = await closedPort();
  const r = await tcpProbe(`127.0.0.1:${port}`, 2000);
  assert.equal(r.ok, false);
  assert.match(r.output, /ECONNREFUSED/);
  assert.deepEqual(await tcpProbe('localhost', 1000), {
    ok: false,
    final: true,
    output: 'not HOST:PORT: localhost',
  });
});

test('HOST:PORT forms', () => {
  assert.deepEqual(parseHostPort('10.0.1.11:8080'), { host: '10.0.1.11', port: 8080 });
  assert.deepEqual(parseHostPort('[::1]:80'), { host: '::1', port: 80 });
  assert.deepEqual(parseHostPort('db.internal:5432'), { host: 'db.internal', port: 5432 });
  assert.equal(parseHostPort('::1:80'), undefined);
  assert.equal(parseHostPort('x:0'), undefined);
  assert.equal(parseHostPort('x:70000'), undefined);
});

test('real time: waitHealthy with the http probe passes once a starting app answers 200', async () => {
  flaky = 0;
  const url = `${base}/flaky`;
  const r = await waitHealthy(
    { http: url, interval: 50, timeout: 1000, retries: 5, startPeriod: 0 },
    {
      probe: (signal) => httpProbe(url, 1000, signal),
      containerRunning: async () => ({ running: true }),
      ...realClock,
    },
    { deadlineMs: 10_000 },
  );
  assert.deepEqual(r, { healthy: true, state: 'healthy', checks: 3, output: 'HTTP 200' });
});

test('real time: waitHealthy with the http probe gives up at the deadline on a hanging server', async () => {
  const url = `${base}/hang`;
  const t0 = performance.now();
  const r = await waitHealthy(
    { http: url, interval: 50, timeout: 5000, retries: 5, startPeriod: 0 },
    {
      probe: (signal) => httpProbe(url, 5000, signal),
      containerRunning: async () => ({ running: true }),
      ...realClock,
    },
    { deadlineMs: 400 },
  );
  const took = performance.now() - t0;
  assert.equal(r.healthy === false && r.reason, 'timed out after 0.4 s');
  assert.ok(took >= 390 && took < 10_000, `took ${took} ms`);
});

test('real time: waitHealthy with the tcp probe passes once the port opens', async () => {
  const port = await closedPort();
  const target = `127.0.0.1:${port}`;
  const srv = net.createServer((s) => s.destroy());
  const opening = setTimeout(() => srv.listen(port, '127.0.0.1'), 200);
  try {
    const r = await waitHealthy(
      { tcp: target, interval: 50, timeout: 1000, retries: 100, startPeriod: 0 },
      {
        probe: (signal) => tcpProbe(target, 1000, signal),
        containerRunning: async () => ({ running: true }),
        ...realClock,
      },
      { deadlineMs: 10_000 },
    );
    assert.equal(r.healthy, true, JSON.stringify(r));
    assert.ok(r.checks >= 2, `${r.checks} checks`);
  } finally {
    clearTimeout(opening);
    await new Promise((resolve) => srv.close(resolve));
  }
});
