import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FIELD_LIST } from '../config/fields.js';
import type { ContainerCreateSpec } from '../model/container.js';
import { LABEL } from '../model/labels.js';
import type { ServiceSpec } from '../model/service.js';
import { configHash, createSpec } from './container.js';
import { withSecretDigests } from './secrets.js';

// The config hash is stamped on every running container: if it changed for an unchanged service,
// upgrading berth would recreate every container it manages. These values were computed by the
// code before the service fields moved into one table (src/config/fields.ts); they must not move.

/** As the loader makes it from a file that sets only `image`. */
const minimal: ServiceSpec = {
  name: 'web',
  image: '127.0.0.1:5000/team/web:1',
  env: {},
  volumes: [],
  labels: {},
  networkMode: 'host',
  restartPolicy: 'always',
  init: true,
  logOptions: {},
  pull: 'always',
  drain: false,
  file: 'services/web.yaml',
};

/** Every field set, one env value using a secret. */
const full: ServiceSpec = withSecretDigests(
  [
    {
      name: 'api',
      image: '127.0.0.1:5000/team/api:1.4.2',
      gitCommit: '3f2a1c9d',
      buildNumber: '123',
      env: { BAR: 'baz', DATABASE_URL: 'postgres://app:hunter2@db/app' },
      secretEnv: { DATABASE_URL: ['db_password'] },
      redactedEnv: { DATABASE_URL: 'postgres://app:<secret:db_password>@db/app' },
      hosts: ['app_server'],
      command: ['/bin/api', '--port', '8080'],
      entrypoint: ['/bin/tini', '--'],
      user: '1000',
      workingDir: '/app',
      volumes: ['/srv/api:/data:ro', '/cache'],
      labels: { team: 'payments' },
      stopSignal: 'SIGTERM',
      stopTimeout: 30,
      networkMode: 'bridge',
      restartPolicy: 'on-failure:3',
      init: false,
      logDriver: 'syslog',
      logOptions: { tag: 'someorg', 'syslog-facility': 'local0' },
      pull: 'missing',
      healthcheck: {
        http: 'http://127.0.0.1:8080/health',
        interval: 2000,
        timeout: 2000,
        retries: 3,
        startPeriod: 0,
      },
      drain: true,
      file: 'services/api.yaml',
    },
  ],
  Buffer.alloc(32, 7),
)[0]!;

const MINIMAL_HASH = 'b150cf79107612d193dbaf82ca9f6e51cdecbc2a396ec1c3ba31ab9f8200dd1e';
const FULL_HASH = 'c075fd8cdf056bed264b4183d8ec267822f7c40ad9408a60a4c7615970ad8f4b';
const MINIMAL_SPEC_LABEL =
  '{"env":{},"image":"127.0.0.1:5000/team/web:1","init":true,"labels":{},"logOptions":{},"networkMode":"host","restartPolicy":"always","volumes":[]}';
const FULL_SPEC_LABEL =
  '{"command":["/bin/api","--port","8080"],"entrypoint":["/bin/tini","--"],"env":{"BAR":"baz","DATABASE_URL":"postgres://app:<secret:db_password>@db/app hmac-sha256:859904184722c5141e9d1b001151509ecd3889089bec044413b78d2e6cab0fb8"},"image":"127.0.0.1:5000/team/api:1.4.2","init":false,"labels":{"team":"payments"},"logDriver":"syslog","logOptions":{"syslog-facility":"local0","tag":"someorg"},"networkMode":"bridge","restartPolicy":"on-failure:3","stopSignal":"SIGTERM","stopTimeout":30,"user":"1000","volumes":["/srv/api:/data:ro","/cache"],"workingDir":"/app"}';

test('the config hash of an existing service does not change across berth versions', () => {
  assert.equal(configHash(minimal), MINIMAL_HASH);
  assert.equal(configHash(full), FULL_HASH);
});

test('the spec label keeps the container fields under their spec keys, secrets as their digest', () => {
  assert.equal(createSpec(minimal, undefined).labels[LABEL.spec], MINIMAL_SPEC_LABEL);
  assert.equal(createSpec(full, undefined).labels[LABEL.spec], FULL_SPEC_LABEL);
});

test('every field reaches the engine as it did', () => {
  assert.deepEqual(createSpec(full, 'c1'), {
    name: 'api',
    image: '127.0.0.1:5000/team/api:1.4.2',
    env: ['BAR=baz', 'DATABASE_URL=postgres://app:hunter2@db/app'],
    cmd: ['/bin/api', '--port', '8080'],
    entrypoint: ['/bin/tini', '--'],
    user: '1000',
    workingDir: '/app',
    labels: {
      team: 'payments',
      'berth.service': 'api',
      'berth.config-hash': FULL_HASH,
      'berth.spec': FULL_SPEC_LABEL,
      'berth.state-commit': 'c1',
      'berth.git-commit': '3f2a1c9d',
      'berth.build-number': '123',
    },
    stopSignal: 'SIGTERM',
    stopTimeout: 30,
    networkMode: 'bridge',
    restartPolicy: { name: 'on-failure', maximumRetryCount: 3 },
    init: false,
    logDriver: 'syslog',
    logOptions: { tag: 'someorg', 'syslog-facility': 'local0' },
    binds: ['/srv/api:/data:ro', '/cache'],
  });
});

/** Another value of the same kind. */
function other(v: unknown): unknown {
  if (v === withFiles.files) return [{ ...withFiles.files![0]!, target: '/etc/other.conf' }];
  if (typeof v === 'string') return `${v}0`;
  if (typeof v === 'number') return v + 1;
  if (typeof v === 'boolean') return !v;
  if (Array.isArray(v)) return [...v, '/other'];
  if (v !== null && typeof v === 'object') return { ...v, OTHER: 'x' };
  throw new Error(`no other value for ${JSON.stringify(v)}`);
}

/** The create call without the labels berth adds about itself. */
function engineSide(s: ServiceSpec): ContainerCreateSpec {
  const spec = createSpec(s, undefined);
  const labels = Object.fromEntries(Object.entries(spec.labels).filter(([k]) => !k.startsWith('berth.')));
  return { ...spec, labels };
}

/** `full` with a rendered file too (kept out of `full`, whose hash is pinned above). */
const withFiles: ServiceSpec = {
  ...full,
  files: [
    {
      source: 'files/api.conf',
      target: '/etc/api.conf',
      rendered: {
        content: 'port 8080\n',
        shown: 'port 8080\n',
        secrets: [],
        mode: 0o644,
        digest: 'sha256:1',
        path: '/etc/berth/files/api/etc-api.conf',
      },
    },
  ],
};

test('a change to any container field changes what the engine is asked for; other fields do not', () => {
  for (const [key, f] of FIELD_LIST) {
    assert.notEqual(withFiles[f.spec], undefined, `set ${f.spec} (${key}) in this test's service`);
    const changed = { ...withFiles, [f.spec]: other(withFiles[f.spec]) };
    if (f.container)
      assert.notDeepEqual(engineSide(changed), engineSide(withFiles), `${key} reaches the engine`);
    else assert.deepEqual(engineSide(changed), engineSide(withFiles), `${key} is not part of the container`);
  }
});

test('a file is mounted read-only from its place on the host; its content is in the hash only without reload', () => {
  assert.deepEqual(engineSide(withFiles).fileMounts, [
    { source: '/etc/berth/files/api/etc-api.conf', target: '/etc/api.conf' },
  ]);
  const edited = (reload?: { signal: string }) => {
    const f = withFiles.files![0]!;
    const base = reload ? { ...f, reload } : f;
    return [base, { ...base, rendered: { ...base.rendered!, content: 'port 9\n', digest: 'sha256:2' } }].map(
      (x) => configHash({ ...withFiles, files: [x] }),
    );
  };
  const [plainBefore, plainAfter] = edited();
  assert.notEqual(plainBefore, plainAfter, 'without reload, new content is a new container');
  const [hupBefore, hupAfter] = edited({ signal: 'SIGHUP' });
  assert.equal(hupBefore, hupAfter, 'with reload, new content is rewritten and reloaded instead');
  assert.doesNotMatch(createSpec(withFiles, undefined).labels[LABEL.spec]!, /port 8080/);
});
