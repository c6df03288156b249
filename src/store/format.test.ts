import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatHistory } from './format.js';
import type { HistoryRow } from './types.js';

const base = { applyId: 1, ref: 'production', repo: '/srv/state', stateCommit: 'c0ffee12' } as const;

const rows: HistoryRow[] = [
  {
    ...base,
    id: 5,
    host: 'app-1',
    service: 'api',
    action: 'recreate',
    cause: 'new tag',
    fromImage: '127.0.0.1:5000/team/api:1.4.2',
    toImage: '127.0.0.1:5000/team/api:1.4.3',
    gitCommit: '3f2a1c9d88',
    buildNumber: '124',
    result: 'failed',
    message: 'health check timed out\nafter 3 tries \u001b[31m',
    startedAt: '2024-05-01T14:03:59.900Z',
  },
  {
    ...base,
    id: 4,
    host: 'app-1',
    service: 'web',
    action: 'recreate',
    cause: 'tag :1 now sha256:cd34…',
    fromImage: 'nginx:1',
    toImage: 'nginx:1',
    fromDigest: 'sha256:ab12ab12ab12ab12ab12',
    toDigest: 'sha256:cd34cd34cd34cd34cd34',
    result: 'succeeded',
    startedAt: '2024-05-01T14:02:00Z',
  },
  {
    ...base,
    id: 3,
    service: 'api,web',
    action: 'pull',
    cause: 'missing',
    toImage: 'registry.example.com/team/api@sha256:0123456789abcdef0123',
    buildNumber: '123',
    result: 'running',
    startedAt: '2024-05-01T14:01:00Z',
  },
  {
    ...base,
    id: 2,
    host: 'proxy-01',
    service: 'old',
    action: 'remove',
    cause: 'removed from the repo',
    fromImage: 'busybox',
    gitCommit: 'deadbeef',
    result: 'failed',
    startedAt: '2024-04-30T23:59:00Z',
  },
  {
    ...base,
    id: 1,
    host: 'proxy-01',
    service: 'old',
    action: 'write-env',
    cause: 'env changed',
    result: 'succeeded',
    startedAt: '2024-04-30T23:58:00Z',
  },
];

test('history is an aligned table: time, host, service, action, image change, build, result', () => {
  assert.equal(
    formatHistory(rows, { color: false, utc: true }),
    [
      'WHEN               HOST      SERVICE  ACTION     IMAGE                                  BUILD          RESULT',
      '2024-05-01 14:03Z  app-1     api      recreate   api:1.4.2 → api:1.4.3                  124 (3f2a1c9)  failed: health check timed out after 3 tries [31m',
      '2024-05-01 14:02Z  app-1     web      recreate   nginx:1 @ab12ab12ab12 → @cd34cd34cd34  -              succeeded',
      '2024-05-01 14:01Z  -         api,web  pull       → api@0123456789ab                     123            running',
      '2024-04-30 23:59Z  proxy-01  old      remove     busybox:latest →                       deadbee        failed',
      '2024-04-30 23:58Z  proxy-01  old      write-env  -                                      -              succeeded',
      '',
    ].join('\n'),
  );
});

test('colour marks only the result, and the columns stay aligned around it', () => {
  const text = formatHistory(rows.slice(0, 2), { color: true, utc: true });
  const lines = text.split('\n');
  assert.ok(lines[1]!.endsWith('\u001b[31mfailed: health check timed out after 3 tries [31m\u001b[0m'));
  assert.ok(lines[2]!.endsWith('\u001b[32msucceeded\u001b[0m'));
  assert.equal(
    text.replaceAll('\u001b[31m', '').replaceAll('\u001b[32m', '').replaceAll('\u001b[0m', ''),
    formatHistory(rows.slice(0, 2), { color: false, utc: true }),
  );
});

test('times are shown in the local zone unless asked for UTC', () => {
  const saved = process.env.TZ;
  process.env.TZ = 'Asia/Kolkata';
  try {
    const text = formatHistory([rows[1]!], { color: false });
    assert.match(text.split('\n')[1]!, /^2024-05-01 19:32 /);
  } finally {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  }
});

test('an empty record says so instead of printing a bare header', () => {
  assert.equal(formatHistory([], { color: true }), 'No deployments recorded.\n');
});
