import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ObservedContainer, ObservedHost } from '../model/observed.js';
import type { DesiredState, ServiceSpec } from '../model/service.js';
import { createSpec, envFileHeader, renderEnvFile } from './container.js';
import { planText } from './format.js';
import { planHost } from './plan.js';
import { serviceSpec } from '../../test/support/specs.js';
import { withSecretDigests } from './secrets.js';

const REG = '127.0.0.1:5000';
const D1 = `sha256:9f3e${'1'.repeat(60)}`;
const D2 = `sha256:ab12${'2'.repeat(60)}`;

function svc(name: string, over: Partial<ServiceSpec> = {}): ServiceSpec {
  return serviceSpec(name, { image: `${REG}/team/${name}:1`, pull: 'missing', ...over });
}

function desired(services: ServiceSpec[], over: Partial<DesiredState> = {}): DesiredState {
  return { ref: 'staging', commit: 'c0ffee1234567890', envDir: '/etc/berth/env', services, ...over };
}

/** A container as berth would have created it for this spec. */
function running(s: ServiceSpec, over: Partial<ObservedContainer> = {}): ObservedContainer {
  return {
    id: `id-${s.name}-${'0'.repeat(20)}`,
    name: s.name,
    state: 'running',
    image: s.image,
    imageId: `img-${s.image}`,
    labels: createSpec(s, 'old').labels,
    ...over,
  };
}

/** A host that runs exactly these services, images local, env files written. */
function host(services: ServiceSpec[], over: Partial<ObservedHost> = {}): ObservedHost {
  return {
    containers: services.map((s) => running(s)),
    images: services.map((s) => ({
      id: `img-${s.image}`,
      repoTags: [s.image],
      repoDigests: [`${s.image.replace(/:[^:/]+$/, '')}@${D1}`],
    })),
    remoteDigests: {},
    envFiles: Object.fromEntries(services.map((s) => [s.name, renderEnvFile(s)])),
    ...over,
  };
}

const empty: ObservedHost = { containers: [], images: [], remoteDigests: {}, envFiles: {} };

test('first apply creates every service, writes env files and pulls missing images', () => {
  const plan = planHost(desired([svc('web'), svc('api', { env: { BAR: 'baz' } })]), empty);
  assert.equal(
    planText(plan),
    `Plan for this host at staging (c0ffee123456)
  api  pull       ${REG}/team/api:1 (not on this host)
  web  pull       ${REG}/team/web:1 (not on this host)
  api  write-env  /etc/berth/env/api (env file missing)
  api  create     new service
  web  write-env  /etc/berth/env/web (env file missing)
  web  create     new service
2 to create, 2 env files to write; 0 unchanged.
`,
  );
});

test('a host that matches the repo has no changes', () => {
  const services = [svc('web'), svc('api', { env: { BAR: 'baz' } })];
  const plan = planHost(desired(services), host(services));
  assert.equal(planText(plan), 'Plan for this host at staging (c0ffee123456)\nNo changes. 2 unchanged.\n');
  assert.deepEqual(plan.operations, []);
});

test('an env change recreates only that service and names the variable', () => {
  const before = [svc('web'), svc('api', { env: { BAR: 'baz', KEEP: '1', OLD: 'x' } })];
  const after = [svc('web'), svc('api', { env: { BAR: 'qux', KEEP: '1', NEW: 'y' } })];
  const plan = planHost(desired(after), host(before));
  assert.equal(
    planText(plan),
    `Plan for this host at staging (c0ffee123456)
  api  write-env  /etc/berth/env/api (env file differs)
  api  recreate   env BAR changed, env NEW added, env OLD removed
1 to recreate, 1 env file to write; 1 unchanged.
`,
  );
});

test('a new tag recreates only that service; the image is pulled first', () => {
  const before = [svc('web'), svc('api')];
  const after = [svc('web', { image: `${REG}/team/web:2` }), svc('api')];
  const plan = planHost(desired(after), host(before));
  assert.equal(
    planText(plan),
    `Plan for this host at staging (c0ffee123456)
  web  pull      ${REG}/team/web:2 (not on this host)
  web  recreate  image :1 → :2
1 to recreate; 1 unchanged.
`,
  );
});

test('pull: always notices the same tag naming a new digest', () => {
  const s = svc('web', { pull: 'always' });
  const plan = planHost(desired([s]), host([s], { remoteDigests: { [s.image]: { digest: D2 } } }));
  assert.equal(
    planText(plan),
    `Plan for this host at staging (c0ffee123456)
  web  pull      ${REG}/team/web:1 (:1 now names sha256:ab12… (was sha256:9f3e…))
  web  recreate  :1 now names sha256:ab12… (was sha256:9f3e…)
1 to recreate; 0 unchanged.
`,
  );
});

test('pull: always with an unchanged digest does nothing', () => {
  const s = svc('web', { pull: 'always' });
  const plan = planHost(desired([s]), host([s], { remoteDigests: { [s.image]: { digest: D1 } } }));
  assert.equal(plan.operations.length, 0);
  assert.equal(plan.pulls.length, 0);
});

test('a registry that cannot be asked leaves the service alone, with a warning', () => {
  const s = svc('web', { pull: 'always' });
  const plan = planHost(
    desired([s]),
    host([s], { remoteDigests: { [s.image]: { error: 'connection refused' } } }),
  );
  assert.equal(
    planText(plan),
    `Plan for this host at staging (c0ffee123456)
warning: web: could not ask the registry about ${REG}/team/web:1 (connection refused); left as is
No changes. 1 unchanged.
`,
  );
});

test('a deleted service file removes only its container', () => {
  const before = [svc('web'), svc('old')];
  const plan = planHost(desired([svc('web')]), host(before));
  assert.equal(
    planText(plan),
    `Plan for this host at staging (c0ffee123456)
  old  remove  no longer in the repo
1 to remove; 1 unchanged.
`,
  );
});

test('containers berth did not make are never touched, and a same-named one blocks', () => {
  const s = svc('web');
  const obs = host([]);
  obs.containers.push(
    { id: 'foreign1', name: 'web', state: 'running', image: 'x', imageId: 'x', labels: {} },
    { id: 'foreign2', name: 'other', state: 'running', image: 'x', imageId: 'x', labels: {} },
  );
  obs.images.push({ id: 'i', repoTags: [s.image], repoDigests: [] });
  obs.envFiles.web = renderEnvFile(s);
  const plan = planHost(desired([s]), obs);
  assert.deepEqual(plan.operations, []);
  assert.deepEqual(plan.blockers, [
    'web: a container named "web" exists that berth did not create; pass --adopt to replace it with the managed one',
  ]);
  const adopted = planHost(desired([s]), obs, { adopt: true });
  assert.equal(
    planText(adopted),
    `Plan for this host at staging (c0ffee123456)
  web  adopt  taking over unmanaged container foreign1 (--adopt)
1 to adopt; 0 unchanged.
`,
  );
});

test('a stopped managed container is started again', () => {
  const s = svc('web');
  const obs = host([s]);
  obs.containers[0]!.state = 'exited';
  const plan = planHost(desired([s]), obs);
  assert.equal(
    planText(plan),
    `Plan for this host at staging (c0ffee123456)
  web  start  container is exited
1 to start; 0 unchanged.
`,
  );
});

test('a repo with no services refuses to remove everything unless allowed', () => {
  const before = [svc('web'), svc('api')];
  const plan = planHost(desired([]), host(before));
  assert.equal(plan.blockers.length, 1);
  assert.match(plan.blockers[0]!, /would remove all 2 managed container\(s\); pass --allow-empty/);
  const allowed = planHost(desired([]), host(before), { allowEmpty: true });
  assert.deepEqual(allowed.blockers, []);
  assert.deepEqual(
    allowed.operations.map((o) => `${o.service} ${o.kind}`),
    ['api remove', 'web remove'],
  );
});

test('an edited or missing env file alone is rewritten without touching the container', () => {
  const s = svc('web', { env: { A: '1' } });
  const edited = `${envFileHeader('web')}A=2\n`;
  const plan = planHost(desired([s]), host([s], { envFiles: { web: edited } }));
  assert.deepEqual(
    plan.operations.map((o) => `${o.kind} ${o.cause}`),
    ['write-env env file differs'],
  );
  const op = plan.operations[0];
  assert.equal(op?.kind === 'write-env' && op.previous, edited, 'what to put back on rollback');
});

test('a file berth did not write is never overwritten: the plan is blocked, the file named', () => {
  const s = svc('passwd', { env: { A: '1' } });
  const plan = planHost(
    desired([s], { envDir: '/etc' }),
    host([], { envFiles: { passwd: 'root:x:0:0:root:/root:/bin/bash\n' } }),
  );
  assert.deepEqual(plan.operations, []);
  assert.deepEqual(plan.blockers, [
    "passwd: /etc/passwd exists and berth did not write it (its first line is not berth's); " +
      'berth never overwrites a file it did not write: move it away or choose another env_dir',
  ]);
});

test('env files of services that are gone go too, with or without their container; other files stay', () => {
  const web = svc('web');
  const old = svc('old');
  const plan = planHost(desired([web]), host([web, old], { strayEnvFiles: ['old', 'failed-create'] }));
  assert.equal(
    planText(plan),
    [
      'Plan for this host at staging (c0ffee123456)',
      '  old            remove      no longer in the repo',
      '  failed-create  remove-env  /etc/berth/env/failed-create (no longer in the repo; its env file is left without a container)',
      '1 to remove, 1 env file to remove; 1 unchanged.',
      '',
    ].join('\n'),
  );
  const rm = plan.operations[0];
  assert.equal(rm?.kind === 'remove' && rm.envFile, '/etc/berth/env/old');
  // A container whose env file berth cannot prove it wrote keeps the file.
  const foreign = planHost(desired([web]), host([web, old], { strayEnvFiles: [] }));
  const rm2 = foreign.operations[0];
  assert.equal(rm2?.kind === 'remove' && rm2.envFile, undefined);
});

test('a paused container is unpaused, not started (the engine refuses to start it)', () => {
  const s = svc('web');
  const plan = planHost(desired([s]), host([s], { containers: [running(s, { state: 'paused' })] }));
  assert.deepEqual(
    plan.operations.map((o) => `${o.kind} ${o.cause}`),
    ['unpause container is paused (docker pause)'],
  );
});

test('other option changes are named in the cause', () => {
  const before = svc('web');
  const after = svc('web', {
    command: ['serve', '--port', '81'],
    restartPolicy: 'on-failure:3',
    init: false,
  });
  const plan = planHost(desired([after]), host([before]));
  assert.equal(plan.operations[0]?.cause, 'command changed, restart_policy changed, init changed');
});

test('CI metadata alone does not recreate a container', () => {
  const before = svc('web', { gitCommit: 'aaa', buildNumber: '1' });
  const after = svc('web', { gitCommit: 'bbb', buildNumber: '2' });
  assert.deepEqual(planHost(desired([after]), host([before])).operations, []);
});

test('pull: always skips the pull when the local image already has the digest the tag names', () => {
  const before = svc('web', { pull: 'always' });
  const after = svc('web', { pull: 'always', env: { A: '1' } });
  const obs = host([before], { remoteDigests: { [before.image]: { digest: D1 } } });
  const plan = planHost(desired([after]), obs);
  assert.deepEqual(plan.pulls, []);
  assert.deepEqual(
    plan.operations.map((o) => o.kind),
    ['write-env', 'recreate'],
  );
  const moved = planHost(
    desired([after]),
    host([before], { remoteDigests: { [before.image]: { digest: D2 } } }),
  );
  assert.deepEqual(
    moved.pulls.map((p) => p.image),
    [before.image],
  );
});

test('a changed secret recreates the service and is named, never shown', () => {
  const key = Buffer.alloc(32, 7);
  const withSecret = (password: string) =>
    withSecretDigests(
      [
        svc('api', {
          env: { DATABASE_URL: `postgres://app:${password}@db/app`, PLAIN: 'x' },
          secretEnv: { DATABASE_URL: ['db_password'] },
          redactedEnv: { DATABASE_URL: 'postgres://app:<secret:db_password>@db/app' },
        }),
      ],
      key,
    );
  const before = withSecret('hunter2');
  const after = withSecret('correct-horse');
  const plan = planHost(desired(after), host(before));
  assert.deepEqual(
    plan.operations.map((o) => `${o.kind} ${o.cause}`),
    ['write-env env file differs', 'recreate secret db_password changed'],
  );
  const labels = JSON.stringify(createSpec(after[0]!, 'c').labels);
  assert.ok(!labels.includes('correct-horse'), labels);
  assert.match(labels, /<secret:db_password>@db\/app hmac-sha256:[0-9a-f]{64}/);
  // The same secret under another host's key gives another digest: labels cannot be compared across hosts.
  const other = withSecretDigests([after[0]!], Buffer.alloc(32, 8))[0]!;
  assert.notEqual(other.secretDigests?.DATABASE_URL, after[0]!.secretDigests?.DATABASE_URL);
  assert.equal(planText(plan).includes('correct-horse'), false);
});

test('a held service is neither changed nor removed, and the plan says why', () => {
  const services = [svc('web'), svc('api')];
  const plan = planHost(
    desired([svc('web', { env: { A: '1' } })], {
      held: ['api'],
      failed: [
        {
          service: 'api',
          issues: [
            {
              file: 'services/api.yaml',
              line: 3,
              col: 5,
              path: 'env_vars.DB',
              message: 'secret db_password is missing',
              severity: 'error',
            },
          ],
        },
      ],
    }),
    host(services),
  );
  assert.equal(
    planText(plan),
    `Plan for this host at staging (c0ffee123456)
  web  write-env  /etc/berth/env/web (env file differs)
  web  recreate   env A added
  api  held       services/api.yaml:3:5 env_vars.DB: secret db_password is missing
1 to recreate, 1 env file to write; 0 unchanged, 1 held.
`,
  );
});

test('after a killed apply: an aside container without a successor gets its name back and runs again', () => {
  const s = svc('web', { image: `${REG}/team/web:2` });
  const old = svc('web');
  const obs = host([]);
  obs.containers.push(running(old, { name: 'web.berth-old', state: 'exited' }));
  obs.images.push({ id: `img-${s.image}`, repoTags: [s.image], repoDigests: [] });
  obs.envFiles.web = renderEnvFile(s);
  const plan = planHost(desired([s]), obs);
  assert.equal(
    planText(plan),
    `Plan for this host at staging (c0ffee123456)
  web  recover   left aside by an interrupted apply; it gets its name back
  web  recreate  image :1 → :2
1 to recover, 1 to recreate; 0 unchanged.
`,
  );
  // Killed after the env file and before anything else: same config, so it is only started.
  const same = planHost(desired([old]), {
    ...obs,
    images: host([old]).images,
    envFiles: host([old]).envFiles,
  });
  assert.deepEqual(
    same.operations.map((o) => o.kind),
    ['recover', 'start'],
  );
});

test('after a killed apply: an aside container beside its successor is removed, nothing else', () => {
  const s = svc('web');
  const obs = host([s]);
  obs.containers.push(running(svc('web'), { id: 'aside-id', name: 'web.berth-old', state: 'exited' }));
  const plan = planHost(desired([s]), obs);
  assert.deepEqual(
    plan.operations.map((o) => `${o.kind} ${'containerId' in o ? o.containerId : ''}`),
    ['remove-aside aside-id'],
  );
});

test('creating a container that mounts the host root or the Docker socket is planned, with a warning', () => {
  const agent = svc('agent', {
    volumes: ['/var/run/docker.sock:/var/run/docker.sock', '/:/host:ro', '/srv/x:/x'],
  });
  const plan = planHost(desired([agent]), host([]));
  assert.deepEqual(plan.warnings, [
    'agent: mounts the Docker socket (/var/run/docker.sock:/var/run/docker.sock): it can control every container on this host',
    "agent: mounts the host's root folder (/:/host:ro): it can read and change every file on this host",
  ]);
  assert.equal(plan.blockers.length, 0);
  // Left as it runs, it is not repeated on every plan.
  assert.deepEqual(planHost(desired([agent]), host([agent])).warnings, []);
});
