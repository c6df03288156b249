import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadStateRepo } from '../config/load.js';
import { desiredForHost } from '../config/select.js';
import { formatIssue } from '../model/errors.js';
import type { ObservedHost } from '../model/observed.js';
import type { DesiredState, ServiceSpec } from '../model/service.js';
import { createSpec, renderEnvFile } from './container.js';
import { planFileDiffs } from './files.js';
import { planText } from './format.js';
import { planHost } from './plan.js';
import { withSecretDigests } from './secrets.js';

// Plans for `files:` as golden text: what is written, how (rename or in place), what is reloaded
// and what is recreated, each with its cause; and `plan --diff`, secrets redacted.

const IMAGE = '127.0.0.1:5000/ops/squid:6';
const KEY = Buffer.alloc(32, 3);

const SQUID_CONF = [
  'http_port 3128',
  "{% if 'app_server' in host.groups %}",
  '{% for proxy in groups.proxy_server %}',
  'cache_peer {{ proxy.address }} parent 3128 0 round-robin',
  '{% endfor %}',
  'never_direct allow all',
  '{% endif %}',
  '',
].join('\n');

function inventory(proxies: number): string {
  const lines = ['hosts:'];
  for (let i = 1; i <= proxies; i++)
    lines.push(`  proxy-0${i}: { address: 10.0.1.${i}, groups: [proxy_server] }`);
  lines.push('  app-01: { address: 10.0.2.1, groups: [app_server] }', '');
  return lines.join('\n');
}

/** The repo rendered for one host, secret digests keyed as the pipeline does. */
function rendered(files: Record<string, string>, host?: string, secret = 'hunter2'): DesiredState {
  const r = loadStateRepo({ files: new Map(Object.entries(files)), ref: 'main', commit: 'c0ffee1234567890' });
  assert.deepEqual(r.issues.map(formatIssue), []);
  const d = desiredForHost(r.repo!, host, { secret: () => secret });
  assert.equal(d.failed, undefined);
  d.services = withSecretDigests(d.services, KEY);
  return d;
}

function squid(
  proxies: number,
  service = 'files: [{ source: files/squid.conf, target: /etc/squid/squid.conf, reload: SIGHUP }]\n',
) {
  return {
    'inventory.yaml': inventory(proxies),
    'files/squid.conf': SQUID_CONF,
    'services/squid.yaml': `image: ${IMAGE}\npull: missing\n${service}`,
  };
}

/** A host where berth applied `services` (containers, env files, the files they mount). */
function applied(services: ServiceSpec[], over: Partial<ObservedHost> = {}): ObservedHost {
  const files: Record<string, string | null> = {};
  for (const s of services)
    for (const f of s.files ?? []) {
      files[f.rendered!.path!] = f.rendered!.content;
      if (f.rendered!.secrets.length)
        files[f.rendered!.path!.replace(/\/([^/]+)$/, '/.redacted-$1')] = f.rendered!.shown;
    }
  return {
    containers: services.map((s) => ({
      id: `id-${s.name}`,
      name: s.name,
      state: 'running',
      image: s.image,
      imageId: `img-${s.image}`,
      labels: createSpec(s, 'old').labels,
    })),
    images: services.map((s) => ({ id: `img-${s.image}`, repoTags: [s.image], repoDigests: [] })),
    remoteDigests: {},
    envFiles: Object.fromEntries(services.map((s) => [s.name, renderEnvFile(s)])),
    files,
    ...over,
  };
}

const noImages = (o: ObservedHost) => o;

test('a new service: its file is written before the container that mounts it is created', () => {
  const d = rendered(squid(2), 'app-01');
  const empty = noImages({
    containers: [],
    images: [{ id: 'i', repoTags: [IMAGE], repoDigests: [] }],
    remoteDigests: {},
    envFiles: {},
  });
  const plan = planHost(
    { ...d, services: d.services.map((s) => ({ ...s, pull: 'missing' as const })) },
    empty,
  );
  assert.equal(
    planText(plan),
    `Plan for host app-01 at main (c0ffee123456)
  squid  write-env   /etc/berth/env/squid (env file missing)
  squid  write-file  /etc/squid/squid.conf (new file)
  squid  create      new service
1 to create, 1 env file to write, 1 file to write; 0 unchanged.
`,
  );
  const w = plan.operations.find((o) => o.kind === 'write-file')!;
  assert.equal(w.kind === 'write-file' && w.how, 'atomic');
  assert.equal(w.kind === 'write-file' && w.path, '/etc/berth/files/squid/etc-squid-squid.conf');
});

test('squid: a third proxy rewrites the app host’s file in place and reloads it; proxies stay unchanged', () => {
  const before = rendered(squid(2), 'app-01');
  const after = rendered(squid(3), 'app-01');
  const plan = planHost(after, applied(before.services));
  assert.equal(
    planText(plan),
    `Plan for host app-01 at main (c0ffee123456)
  squid  write-file  /etc/squid/squid.conf (changed: +1 -0 lines)
  squid  reload      SIGHUP (file /etc/squid/squid.conf changed)
1 to reload, 1 file to write; 0 unchanged.
`,
  );
  const w = plan.operations[0]!;
  assert.equal(w.kind === 'write-file' && w.how, 'in-place');
  assert.equal(w.kind === 'write-file' && w.previous, before.services[0]!.files![0]!.rendered!.content);
  assert.equal(
    planFileDiffs(plan),
    `squid /etc/squid/squid.conf:
--- a/etc/squid/squid.conf
+++ b/etc/squid/squid.conf
@@ -1,4 +1,5 @@
 http_port 3128
 cache_peer 10.0.1.1 parent 3128 0 round-robin
 cache_peer 10.0.1.2 parent 3128 0 round-robin
+cache_peer 10.0.1.3 parent 3128 0 round-robin
 never_direct allow all
`,
  );
  for (const proxy of ['proxy-01', 'proxy-02']) {
    const p = planHost(rendered(squid(3), proxy), applied(rendered(squid(2), proxy).services));
    assert.equal(p.operations.length, 0, proxy);
    assert.deepEqual(p.unchanged, ['squid']);
  }
});

test('a file without reload: new content recreates the container, the cause names the file', () => {
  const svc = 'files: [{ source: files/squid.conf, target: /etc/squid/squid.conf }]\n';
  const before = rendered(squid(2, svc), 'app-01');
  const plan = planHost(rendered(squid(3, svc), 'app-01'), applied(before.services));
  assert.equal(
    planText(plan),
    `Plan for host app-01 at main (c0ffee123456)
  squid  write-file  /etc/squid/squid.conf (changed: +1 -0 lines)
  squid  recreate    file /etc/squid/squid.conf changed
1 to recreate, 1 file to write; 0 unchanged.
`,
  );
  const w = plan.operations[0]!;
  assert.equal(w.kind === 'write-file' && w.how, 'atomic');
});

test('a file removed from the service: recreate (unmount), then its host file goes', () => {
  const before = rendered(squid(2), 'app-01');
  const plan = planHost(
    rendered({ ...squid(2), 'services/squid.yaml': `image: ${IMAGE}\npull: missing\n` }, 'app-01'),
    applied(before.services),
  );
  assert.equal(
    planText(plan),
    `Plan for host app-01 at main (c0ffee123456)
  squid  recreate     file /etc/squid/squid.conf removed
  squid  remove-file  /etc/squid/squid.conf (file /etc/squid/squid.conf is no longer in the service)
1 to recreate, 1 file to remove; 0 unchanged.
`,
  );
});

test('a service that is gone takes its files with it', () => {
  const before = rendered(squid(2), 'app-01');
  const plan = planHost({ ...before, services: [] }, applied(before.services), { allowEmpty: true });
  const rm = plan.operations.find((o) => o.kind === 'remove');
  assert.deepEqual(rm?.kind === 'remove' && rm.files, [
    '/etc/berth/files/squid/etc-squid-squid.conf',
    '/etc/berth/files/squid/.redacted-etc-squid-squid.conf',
  ]);
});

test('a file edited or deleted on the host is put back: rewritten and reloaded, or recreated when gone', () => {
  const d = rendered(squid(2), 'app-01');
  const path = d.services[0]!.files![0]!.rendered!.path!;
  const edited = planHost(d, applied(d.services, { files: { [path]: 'http_port 3128\n' } }));
  assert.deepEqual(
    edited.operations.map((o) => `${o.kind} ${o.cause}`),
    ['write-file changed: +3 -0 lines', 'reload file /etc/squid/squid.conf changed'],
  );
  const gone = planHost(d, applied(d.services, { files: { [path]: null } }));
  assert.deepEqual(
    gone.operations.map((o) => `${o.kind} ${o.cause}`),
    // A file written anew is a new inode: the running container would not see it.
    ['write-file missing on the host', 'recreate file /etc/squid/squid.conf missing on the host'],
  );
});

test('a file that uses a secret: 0600, only the secret named, never its value, and a redacted diff', () => {
  const files = {
    'files/app.ini': 'user = app\npassword = {{ secrets.db_password }}\n',
    'services/app.yaml': `image: ${IMAGE}\npull: missing\nfiles: [{ source: files/app.ini, target: /etc/app.ini, reload: [/bin/app, reload] }]\n`,
  };
  const before = rendered(files, undefined, 'hunter2');
  const after = rendered(files, undefined, 's3cr3t-n3w');
  const plan = planHost(after, applied(before.services));
  const text = planText(plan);
  assert.equal(
    text,
    `Plan for this host at main (c0ffee123456)
  app  write-file  /etc/app.ini (secret db_password changed)
  app  reload      exec /bin/app reload (file /etc/app.ini changed)
1 to reload, 1 file to write; 0 unchanged.
`,
  );
  const w = plan.operations[0]!;
  assert.equal(w.kind === 'write-file' && w.mode, 0o600);
  assert.deepEqual(w.kind === 'write-file' && w.redacted, {
    path: '/etc/berth/files/app/.redacted-etc-app.ini',
    content: 'user = app\npassword = <secret:db_password>\n',
    previous: 'user = app\npassword = <secret:db_password>\n',
  });
  const diff = planFileDiffs(plan);
  assert.equal(diff, 'app /etc/app.ini: secret db_password changed (no change to show)\n');

  const edited = rendered({
    ...files,
    'files/app.ini': 'user = app2\npassword = {{ secrets.db_password }}\n',
  });
  const both = planFileDiffs(planHost(edited, applied(before.services)));
  assert.match(both, /^-user = app\n\+user = app2\n password = <secret:db_password>$/m);
  for (const out of [
    text,
    diff,
    both,
    JSON.stringify(planHost(edited, applied(before.services)).operations.map((o) => o.cause)),
  ])
    assert.doesNotMatch(out, /hunter2|s3cr3t/);
});

test('a second plan after apply is empty', () => {
  const d = rendered(squid(2), 'app-01');
  const plan = planHost(d, applied(d.services));
  assert.equal(planText(plan), 'Plan for host app-01 at main (c0ffee123456)\nNo changes. 1 unchanged.\n');
});
