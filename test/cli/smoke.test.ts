import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { berth } from '../support/cli.js';
import { tempDirs } from '../support/git.js';
import { createRemote, type TestRemote } from '../support/remote.js';
import { freePort } from '../world/proc.js';

// `berth smoke` as built: checks from berth.yaml on the environment's branch, against a real
// HTTP server on 127.0.0.1 that answers, fails, redirects and hangs on purpose.

const tempDir = tempDirs('berth-smoke-');
const remotes: TestRemote[] = [];
let server: http.Server;
let base = '';

before(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/health') return res.end('ok');
    if (req.url === '/version') return res.end('version 1.4.3\n');
    if (req.url === '/down') {
      res.writeHead(503);
      return res.end('maintenance');
    }
    if (req.url === '/moved') {
      res.writeHead(301, { location: '/health' });
      return res.end();
    }
    if (req.url === '/hang') return; // never answers: the check's timeout must end it
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  remotes.forEach((r) => r.remove());
});

function repo(smoke: string): TestRemote {
  const r = createRemote({
    'berth.yaml': `environments:\n  staging: { branch: staging }\nsmoke:\n  staging:\n${smoke}`,
    'services/api.yaml': 'image: reg/api:1\n',
  });
  remotes.push(r);
  return r;
}

const smoke = (r: TestRemote, extra: string[] = []) =>
  berth(['smoke', '--env', 'staging', '--repo', r.url, '--cache-dir', tempDir(), ...extra]);

describe('smoke', () => {
  test('all pass: exit 0, one line per check', async () => {
    const r = repo(
      `    - { url: "${base}/health" }\n    - { url: "${base}/version", body: "1.4.3" }\n    - { url: "${base}/moved", status: 301 }\n`,
    );
    const res = await smoke(r);
    assert.equal(res.code, 0, res.stderr);
    const lines = res.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^smoke staging at [0-9a-f]{7}: 3 check\(s\)$/);
    assert.match(lines[1]!, new RegExp(`^  ok    GET ${base}/health  200  \\(\\d+ ms\\)$`));
    assert.match(lines[2]!, new RegExp(`^  ok    GET ${base}/version  200  `));
    assert.match(
      lines[3]!,
      new RegExp(`^  ok    GET ${base}/moved  301  `),
      'a redirect is judged, not followed',
    );
    assert.equal(lines[4], 'all 3 passed');
  });

  test('any failure: exit 1, and each failing check says what it expected and got', async () => {
    const closedPort = await freePort();
    const r = repo(
      [
        `    - { url: "${base}/health" }`,
        `    - { url: "${base}/down" }`,
        `    - { url: "${base}/version", body: "1.4.4" }`,
        `    - { url: "${base}/hang", timeout: 500ms }`,
        `    - { url: "http://127.0.0.1:${closedPort}/closed", timeout: 2s }`,
        '',
      ].join('\n'),
    );
    const res = await smoke(r, ['--json']);
    assert.equal(res.code, 1, res.stderr);
    const out = JSON.parse(res.stdout);
    assert.equal(out.ok, false);
    assert.deepEqual(
      out.results.map((x: { ok: boolean; status?: number; problem?: string }) => [x.ok, x.status, x.problem]),
      [
        [true, 200, undefined],
        [false, 503, 'expected 200, got 503'],
        [false, 200, 'the body does not contain "1.4.4"'],
        [false, undefined, `cannot run the smoke check: GET ${base}/hang: no answer within 500 ms`],
        [
          false,
          undefined,
          `cannot run the smoke check: GET http://127.0.0.1:${closedPort}/closed: ECONNREFUSED`,
        ],
      ],
    );
    const text = await smoke(r);
    assert.equal(text.code, 1);
    assert.match(text.stdout, / {2}FAIL {2}GET .*\/down {2}expected 200, got 503/);
    assert.match(text.stdout, /\n4 of 5 failed\n$/);
  });

  test('no checks, or a templated URL: a clear error, exit 1', async () => {
    const none = createRemote({
      'berth.yaml': 'environments:\n  staging: { branch: staging }\n',
      'services/app.yaml': 'image: reg/app:1\n',
    });
    remotes.push(none);
    const res = await smoke(none);
    assert.equal(res.code, 1);
    assert.match(
      res.stderr,
      /berth\.yaml on staging declares no smoke checks for staging \(smoke\.staging\)/,
    );
    const templated = repo(`    - { url: "https://{{ env }}.example.com/health" }\n`);
    const bad = await smoke(templated);
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /berth\.yaml:5:\d+ smoke\.staging\[0\]\.url: smoke URLs are not templated; write the URL out/,
    );
  });
});
