import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIssue } from '../model/errors.js';
import { MAX_RENDERED_FILE_BYTES, hostFileName } from '../model/files.js';
import type { StateRepo } from '../model/service.js';
import { loadStateRepo } from './load.js';
import { desiredForHost } from './select.js';

// `files:` from the repo to each host: the reference's squid example (issue 15), rendered per
// host, and each kind of bad input with its file:line:col.

function load(files: Record<string, string>) {
  return loadStateRepo({ files: new Map(Object.entries(files)), ref: 'production', commit: 'c0ffee' });
}

function repo(files: Record<string, string>): StateRepo {
  const r = load(files);
  assert.deepEqual(r.issues.map(formatIssue), []);
  return r.repo!;
}

function report(files: Record<string, string>): string[] {
  return load(files).issues.map(formatIssue);
}

/** The reference's squid config: cache_peer lines projected from the inventory, only on app hosts. */
const SQUID_CONF = [
  'http_port 3128',
  "{% if 'app_server' in host.groups %}",
  '{% for proxy in groups.proxy_server %}',
  'cache_peer {{ proxy.address }} parent 3128 0 round-robin',
  '{% endfor %}',
  'never_direct allow all',
  '{% endif %}',
  'visible_hostname {{ host.name }}',
  '',
].join('\n');

const SQUID = {
  'files/squid.conf': SQUID_CONF,
  'services/squid.yaml': [
    'image: 127.0.0.1:5000/ops/squid:6',
    'files:',
    '  - source: files/squid.conf',
    '    target: /etc/squid/squid.conf',
    '    reload: SIGHUP',
    '',
  ].join('\n'),
};

function inventory(proxies: number): string {
  const lines = ['hosts:'];
  for (let i = 1; i <= proxies; i++)
    lines.push(`  proxy-0${i}: { address: 10.0.1.${i}, groups: [proxy_server] }`);
  lines.push('  app-01: { address: 10.0.2.1, groups: [app_server] }');
  lines.push('  app-02: { address: 10.0.2.2, groups: [app_server] }', '');
  return lines.join('\n');
}

/** Each host's squid.conf as berth would write it, and where. */
function rendered(r: StateRepo, host: string) {
  const d = desiredForHost(r, host);
  assert.equal(d.failed, undefined);
  const f = d.services.find((s) => s.name === 'squid')!.files![0]!;
  return { content: f.rendered!.content, path: f.rendered!.path, mode: f.rendered!.mode };
}

test('squid: each app host lists both proxies, the proxies get none of those lines', () => {
  const r = repo({ ...SQUID, 'inventory.yaml': inventory(2) });
  const app = rendered(r, 'app-01');
  assert.equal(
    app.content,
    [
      'http_port 3128',
      'cache_peer 10.0.1.1 parent 3128 0 round-robin',
      'cache_peer 10.0.1.2 parent 3128 0 round-robin',
      'never_direct allow all',
      'visible_hostname app-01',
      '',
    ].join('\n'),
  );
  assert.equal(app.path, '/etc/berth/files/squid/etc-squid-squid.conf');
  assert.equal(app.mode, 0o644);
  assert.equal(rendered(r, 'proxy-01').content, 'http_port 3128\nvisible_hostname proxy-01\n');
  assert.equal(rendered(r, 'proxy-02').content, 'http_port 3128\nvisible_hostname proxy-02\n');
});

test('squid: a third proxy in the inventory changes only the app hosts’ files', () => {
  const two = repo({ ...SQUID, 'inventory.yaml': inventory(2) });
  const three = repo({ ...SQUID, 'inventory.yaml': inventory(3) });
  for (const host of ['app-01', 'app-02']) {
    const before = rendered(two, host).content;
    const after = rendered(three, host).content;
    assert.notEqual(after, before, host);
    assert.equal(
      after,
      before.replace('never_direct', 'cache_peer 10.0.1.3 parent 3128 0 round-robin\nnever_direct'),
    );
  }
  for (const host of ['proxy-01', 'proxy-02'])
    assert.equal(rendered(three, host).content, rendered(two, host).content, host);
  assert.equal(rendered(three, 'proxy-03').content, 'http_port 3128\nvisible_hostname proxy-03\n');
});

test('files_dir places the files; a file that uses a secret is 0600 and shown redacted', () => {
  const r = repo({
    'berth.yaml': 'files_dir: /srv/berth-files\n',
    'files/app.ini': 'user = app\npassword = {{ secrets.db_password }}\n',
    'services/app.yaml': 'image: app:1\nfiles: [{ source: files/app.ini, target: /etc/app/app.ini }]\n',
  });
  const d = desiredForHost(r, undefined, { secret: () => 'hunter2' });
  const f = d.services[0]!.files![0]!.rendered!;
  assert.equal(f.path, '/srv/berth-files/app/etc-app-app.ini');
  assert.equal(f.content, 'user = app\npassword = hunter2\n');
  assert.equal(f.shown, 'user = app\npassword = <secret:db_password>\n');
  assert.deepEqual(f.secrets, ['db_password']);
  assert.equal(f.mode, 0o600);
  assert.equal(f.digest, undefined, 'its digest is keyed by the host (withSecretDigests)');
  assert.equal(
    desiredForHost(r, undefined, { secret: () => 'x', filesDir: '/opt/files' }).services[0]!.files![0]!
      .rendered!.path,
    '/opt/files/app/etc-app-app.ini',
  );
});

test('host file names: one flat folder per service, each target its own name', () => {
  assert.equal(hostFileName('/etc/squid/squid.conf'), 'etc-squid-squid.conf');
  assert.equal(hostFileName('/etc/my-app/a b.conf'), 'etc-my\\x2dapp-a\\x20b.conf');
  assert.notEqual(hostFileName('/etc/a-b'), hostFileName('/etc/a/b'));
  assert.equal(hostFileName('/.hidden'), '\\x2ehidden');
});

test('bad input: each problem at file:line:col, and the repo does not load', () => {
  const svc = (files: string) => `image: app:1\nfiles:\n${files}`;
  assert.deepEqual(
    report({
      'files/a.conf': 'x\n',
      'services/app.yaml': svc('  - source: files/b.conf\n    target: /etc/a.conf\n'),
    }),
    [
      'services/app.yaml:3:13 files[0].source: template files/b.conf is not in the repo (did you mean "files/a.conf"?)',
    ],
  );
  assert.deepEqual(
    report({
      'files/a.conf': 'x\n',
      'services/app.yaml': svc('  - source: files/a.conf\n    target: etc/a.conf\n'),
    }),
    ['services/app.yaml:4:13 files[0].target: target "etc/a.conf" must be an absolute path'],
  );
  assert.deepEqual(
    report({
      'files/a.conf': 'x\n',
      'services/app.yaml': svc(
        '  - { source: files/a.conf, target: /etc/a.conf }\n  - { source: files/a.conf, target: /etc/a.conf }\n',
      ),
    }),
    [
      "services/app.yaml:4:37 files[1].target: target /etc/a.conf is also files[0]'s; each file needs a target of its own",
    ],
  );
  assert.deepEqual(
    report({
      'files/a.conf': 'x\n',
      'services/app.yaml': svc('  - { source: files/a.conf, target: /data }\nvolumes: [/srv/data:/data]\n'),
    }),
    ['services/app.yaml:3:37 files[0].target: target /data is also the target of volume "/srv/data:/data"'],
  );
  const ok = svc('  - { source: files/a.conf, target: /etc/a.conf }\n');
  assert.deepEqual(report({ 'files/a.conf': 'a\n{{ host.nmae }}\n', 'services/app.yaml': ok }), [
    'files/a.conf:2:9: host has no key "nmae" (did you mean "name"?); a host has name, address, groups and vars (its inventory values are under vars)',
  ]);
  assert.deepEqual(report({ 'files/a.conf': '{{ host.name | shout }}\n', 'services/app.yaml': ok }), [
    'files/a.conf:1:16: unknown filter "shout"; filters are urlencode, default, join, map, lower, upper, trim, b64encode, string, first, last, length',
  ]);
  assert.deepEqual(report({ 'files/a.conf': 'x\n{% if env %}\ny\n', 'services/app.yaml': ok }), [
    'files/a.conf:2:1: unclosed "{% if env %}": add {% endif %}',
  ]);
  assert.deepEqual(
    report({
      'files/a.conf': 'x\n',
      'services/app.yaml': svc('  - { source: files/a.conf, target: /a, reload: SIGKILL }\n'),
    }),
    [
      'services/app.yaml:3:49 files[0].reload: reload SIGKILL would stop the service rather than reload it; use a signal it reloads on, such as SIGHUP',
    ],
  );
});

test('bad input at render time: a loop over a non-list, or a file over the limit, holds the service', () => {
  const r = repo({
    'inventory.yaml': 'hosts:\n  app-01: { vars: { peers: 3, big: 200000 } }\n',
    'files/a.conf': 'x\n{% for p in host.vars.peers %}{{ p }}{% endfor %}\n',
    'services/app.yaml': 'image: app:1\nfiles: [{ source: files/a.conf, target: /etc/a.conf }]\n',
  });
  const d = desiredForHost(r, 'app-01');
  assert.deepEqual(d.held, ['app']);
  assert.deepEqual(
    d.failed!.flatMap((f) => f.issues.map(formatIssue)),
    [
      'files/a.conf:2:13: a loop needs a list, but host.vars.peers is a number (service app is left as it runs)',
    ],
  );
  const big = repo({
    'inventory.yaml': `hosts:\n  app-01: { vars: { line: ${'x'.repeat(1000)}, n: ${Array.from(
      { length: 1100 },
      (_, i) => i,
    )
      .join(',')
      .replace(/^/, '[')
      .replace(/$/, ']')} } }\n`,
    'files/big.conf': '{% for i in host.vars.n %}{{ host.vars.line }}\n{% endfor %}',
    'services/app.yaml': 'image: app:1\nfiles: [{ source: files/big.conf, target: /etc/big.conf }]\n',
  });
  const held = desiredForHost(big, 'app-01');
  assert.deepEqual(held.held, ['app']);
  const msg = held.failed!.flatMap((f) => f.issues.map(formatIssue)).join('\n');
  assert.match(msg, /^files\/big\.conf:\d+:\d+: /);
  assert.match(msg, new RegExp(`${MAX_RENDERED_FILE_BYTES}`), msg);
});
