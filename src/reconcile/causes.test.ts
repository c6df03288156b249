import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CONTAINER_FIELDS, FIELD_LIST } from '../config/fields.js';
import type { ServiceFile } from '../model/files.js';
import type { ObservedHost } from '../model/observed.js';
import type { ServiceSpec } from '../model/service.js';
import { createSpec, renderEnvFile } from './container.js';
import { planHost } from './plan.js';

/** A service with every field of the table set, so that each can be changed or removed. */
const full: ServiceSpec = {
  name: 'api',
  image: '127.0.0.1:5000/team/api:1',
  gitCommit: '3f2a1c9d',
  buildNumber: '123',
  env: { BAR: 'baz' },
  hosts: ['app_server'],
  command: ['/bin/api', '--port', '8080'],
  entrypoint: ['/bin/tini', '--'],
  user: '1000',
  workingDir: '/app',
  volumes: ['/srv/api:/data:ro'],
  labels: { team: 'payments' },
  stopSignal: 'SIGTERM',
  stopTimeout: 30,
  networkMode: 'host',
  restartPolicy: 'always',
  init: true,
  logDriver: 'syslog',
  logOptions: { tag: 'api' },
  pull: 'missing',
  healthcheck: {
    http: 'http://127.0.0.1:8080/health',
    interval: 2000,
    timeout: 2000,
    retries: 3,
    startPeriod: 0,
  },
  drain: true,
  files: [placedFile('/etc/api.conf', 'port 8080\n')],
  file: 'services/api.yaml',
};

/** A `files:` entry rendered and placed for the host, without reload. */
function placedFile(target: string, content: string): ServiceFile {
  return {
    source: 'files/api.conf',
    target,
    rendered: {
      content,
      shown: content,
      secrets: [],
      mode: 0o644,
      digest: `sha256:${Buffer.from(content).toString('hex')}`,
      path: `/etc/berth/files/api${target.replace(/\//g, '-').replace(/^-/, '/')}`,
    },
  };
}

/** Another value of the same kind. */
function other(v: unknown): unknown {
  if (v === full.files) return [placedFile('/etc/api.conf', 'port 8081\n')];
  if (typeof v === 'string') return `${v}0`;
  if (typeof v === 'number') return v + 1;
  if (typeof v === 'boolean') return !v;
  if (Array.isArray(v)) return [...v, '/other'];
  if (v !== null && typeof v === 'object') return { ...v, OTHER: 'x' };
  throw new Error(`no other value for ${JSON.stringify(v)}`);
}

/** The plan for a host that runs `before`, when the repo now says `after`. */
function plan(before: ServiceSpec, after: ServiceSpec) {
  const observed: ObservedHost = {
    containers: [
      {
        id: 'id-api',
        name: 'api',
        state: 'running',
        image: before.image,
        imageId: 'img-api',
        labels: createSpec(before, 'old').labels,
      },
    ],
    images: [before.image, after.image].map((ref) => ({
      id: `img-${ref}`,
      repoTags: [ref],
      repoDigests: [],
    })),
    remoteDigests: {},
    envFiles: { api: renderEnvFile(after) },
    files: Object.fromEntries((after.files ?? []).map((f) => [f.rendered!.path!, f.rendered!.content])),
  };
  return planHost({ ref: 'main', envDir: '/etc/berth/env', services: [after] }, observed);
}

/** What the plan says for a field: its file key, but `image …` and `env BAR …` say more. */
function expectedCause(key: string, spec: string): RegExp {
  if (spec === 'image') return /^image \S+ → \S+$/;
  if (spec === 'env') return /^env \w+ (added|removed|changed)(, env \w+ (added|removed|changed))*$/;
  if (spec === 'files') return /^file \/\S+ (added|removed|changed)$/;
  return new RegExp(`^${key} changed$`);
}

test('the test service sets every field of the table', () => {
  for (const [key, f] of FIELD_LIST) {
    assert.notEqual(full[f.spec], undefined, `set ${f.spec} (${key}) in this test's service`);
  }
});

test('a change to any container field recreates the service and the plan names the field', () => {
  for (const [key, f] of CONTAINER_FIELDS) {
    const changed = { ...full, [f.spec]: other(full[f.spec]) };
    const ops = plan(full, changed).operations.filter((o) => o.kind === 'recreate');
    assert.equal(ops.length, 1, `${key}: recreated`);
    assert.match(ops[0]!.cause, expectedCause(key, f.spec), `${key}: the cause names it`);
    if (f.presence !== 'optional') continue;
    // Set, then left out: named too, from the old container's label.
    const removed: Record<string, unknown> = { ...full };
    delete removed[f.spec];
    const cause = plan(full, removed as unknown as ServiceSpec).operations.find(
      (o) => o.kind === 'recreate',
    )?.cause;
    if (f.spec === 'files') assert.equal(cause, 'file /etc/api.conf removed', `${key} removed`);
    else assert.equal(cause, `${key} changed`, `${key} removed`);
  }
});

test('a change to a field outside the container recreates nothing', () => {
  for (const [key, f] of FIELD_LIST) {
    if (f.container) continue;
    const changed = { ...full, [f.spec]: other(full[f.spec]) };
    assert.deepEqual(plan(full, changed).operations, [], `${key} changed`);
  }
});

test('several changes are named in table order', () => {
  const after: ServiceSpec = {
    ...full,
    image: '127.0.0.1:5000/team/api:2',
    env: { BAR: 'qux' },
    workingDir: '/srv',
    logOptions: {},
    drain: false,
  };
  assert.equal(
    plan(full, after).operations.find((o) => o.kind === 'recreate')?.cause,
    'image :1 → :2, env BAR changed, working_dir changed, log_options changed',
  );
});
