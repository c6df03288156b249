import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDeploys, formatHistory } from './format.js';
import type { ActionRecord, DeployEntry, HistoryRow } from './types.js';

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
    durationMs: 42_000,
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
    durationMs: 850,
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

test('steps are an aligned table: time, host, service, action, image change, build, time taken, result', () => {
  assert.equal(
    formatHistory(rows, { color: false, utc: true }),
    [
      'WHEN               HOST      SERVICE  ACTION     IMAGE                                  BUILD          TOOK    RESULT',
      '2024-05-01 14:03Z  app-1     api      recreate   api:1.4.2 → api:1.4.3                  124 (3f2a1c9)  42.0 s  failed: health check timed out after 3 tries [31m',
      '2024-05-01 14:02Z  app-1     web      recreate   nginx:1 @ab12ab12ab12 → @cd34cd34cd34  -              850 ms  succeeded',
      '2024-05-01 14:01Z  -         api,web  pull       → api@0123456789ab                     123            -       running',
      '2024-04-30 23:59Z  proxy-01  old      remove     busybox:latest →                       deadbee        -       failed',
      '2024-04-30 23:58Z  proxy-01  old      write-env  -                                      -              -       succeeded',
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

const at = (s: number) => new Date(Date.UTC(2024, 4, 1, 14, 0, s)).toISOString();
function step(
  applyId: number,
  host: string,
  action: string,
  from: number,
  to: number,
  over: Partial<ActionRecord> = {},
): ActionRecord {
  return {
    id: applyId * 100 + from,
    applyId,
    host,
    service: host,
    action,
    cause: '-',
    result: 'succeeded',
    startedAt: at(from),
    finishedAt: at(to),
    durationMs: (to - from) * 1000,
    ...over,
  };
}
const web = {
  service: 'web',
  fromImage: 'reg/team/web:1',
  toImage: 'reg/team/web:2',
  buildNumber: '42',
  gitCommit: '3f2a1c9d88',
};

const entries: DeployEntry[] = [
  {
    deployId: 'd-42',
    env: 'staging',
    stateCommit: 'c0ffee12c0ffee12',
    ref: 'staging',
    command: 'berth deploy',
    startedAt: at(0),
    finishedAt: at(20),
    result: 'failed',
    hosts: [
      {
        id: 1,
        deployId: 'd-42',
        host: 'app-1',
        ref: 'staging',
        repo: '/srv/state',
        startedAt: at(0),
        finishedAt: at(5),
        result: 'succeeded',
        steps: [
          step(1, 'app-1', 'pull', 0, 1, { service: 'web' }),
          step(1, 'app-1', 'lease', 1, 1),
          step(1, 'app-1', 'drain', 1, 2),
          step(1, 'app-1', 'recreate', 2, 3, web),
          step(1, 'app-1', 'health', 3, 4, { service: 'web' }),
          step(1, 'app-1', 'undrain', 4, 4),
        ],
      },
      {
        id: 2,
        deployId: 'd-42',
        host: 'app-2',
        ref: 'staging',
        repo: '/srv/state',
        startedAt: at(1),
        finishedAt: at(20),
        result: 'failed',
        message: 'web: health check timed out\nafter 3 tries',
        steps: [
          step(2, 'app-2', 'lease', 1, 13),
          step(2, 'app-2', 'drain', 13, 14),
          step(2, 'app-2', 'recreate', 14, 15, web),
          step(2, 'app-2', 'health', 15, 19, { service: 'web', result: 'failed' }),
          step(2, 'app-2', 'rollback', 19, 19, { service: 'web' }),
          step(2, 'app-2', 'undrain', 19, 20),
        ],
      },
    ],
  },
  {
    env: 'staging',
    stateCommit: 'bbbb2222',
    ref: 'staging',
    command: 'berth apply',
    startedAt: '2024-04-30T23:58:00Z',
    result: 'running',
    hosts: [
      {
        id: 3,
        host: 'proxy-01',
        ref: 'staging',
        repo: '/srv/state',
        startedAt: '2024-04-30T23:58:00Z',
        result: 'running',
        steps: [
          step(3, 'proxy-01', 'write-env', 0, 0, { service: 'squid' }),
          step(3, 'proxy-01', 'remove', 0, 1, { service: 'old' }),
        ],
      },
    ],
  },
];

test('deploys: one line per entry, its hosts beneath with what changed, time out of rotation and why it failed', () => {
  assert.equal(
    formatDeploys(entries, { color: false, utc: true }),
    [
      'WHEN               ENV      COMMIT        BY            HOSTS  RESULT   DEPLOY',
      '2024-05-01 14:00Z  staging  c0ffee12c0ff  berth deploy  2      failed   d-42',
      '  app-1  succeeded  5.0 s   web web:1 → web:2, build 42 (3f2a1c9); 3.0 s out of rotation',
      '  app-2  failed     19.0 s  web web:1 → web:2, build 42 (3f2a1c9); waited 12.0 s for a lease; 7.0 s out of rotation; failed: web: health check timed out after 3 tries',
      '2024-04-30 23:58Z  staging  bbbb2222      berth apply   1      running  -',
      '  proxy-01  running  -  old removed, squid env file',
      '',
    ].join('\n'),
  );
  const colored = formatDeploys(entries, { color: true, utc: true });
  assert.ok(colored.split('\n')[1]!.endsWith('\u001b[31mfailed\u001b[0m   d-42'));
  assert.equal(
    colored
      .replaceAll('\u001b[31m', '')
      .replaceAll('\u001b[32m', '')
      .replaceAll('\u001b[33m', '')
      .replaceAll('\u001b[0m', ''),
    formatDeploys(entries, { color: false, utc: true }),
  );
  assert.equal(formatDeploys([], { color: false }), 'No deployments recorded.\n');
});
