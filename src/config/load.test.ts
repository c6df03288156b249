import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIssue } from '../model/errors.js';
import type { ServiceSpec } from '../model/service.js';
import { FIELD_LIST } from './fields.js';
import { loadStateRepo } from './load.js';

function load(files: Record<string, string>, commit?: string) {
  return loadStateRepo({ files: new Map(Object.entries(files)), ref: 'staging', commit });
}

/** Issues as `berth validate` prints them. */
function report(files: Record<string, string>): string[] {
  return load(files).issues.map(formatIssue);
}

function only(files: Record<string, string>): ServiceSpec {
  const r = load(files);
  assert.deepEqual(r.issues.map(formatIssue), []);
  assert.equal(r.repo?.services.length, 1);
  return r.repo.services[0]!;
}

test('canonical form: every default filled in, name from the file', () => {
  const r = load({ 'services/api.yaml': 'image: 127.0.0.1:5000/team/api:1.4.2\n' }, 'abc123');
  assert.deepEqual(r.issues, []);
  assert.deepEqual(r.repo, {
    ref: 'staging',
    commit: 'abc123',
    envDir: '/etc/berth/env',
    services: [
      {
        name: 'api',
        image: '127.0.0.1:5000/team/api:1.4.2',
        env: {},
        volumes: [],
        labels: {},
        networkMode: 'host',
        restartPolicy: 'always',
        init: true,
        logOptions: {},
        pull: 'always',
        drain: false,
        file: 'services/api.yaml',
      },
    ],
    settings: {
      servicesDir: 'services',
      secretsDir: '/etc/berth/secrets',
      environments: {},
      rollout: { batch: 1, maxUnavailable: 1 },
      smoke: {},
      inventory: { source: 'static' },
    },
  });
});

test('canonical form: every field, in camelCase, with values kept as written', () => {
  const s = only({
    'inventory.yaml': 'hosts:\n  app-1: { groups: [app_server] }\n',
    'files/web.conf': 'listen 8080\n',
    'services/web.yml': [
      'image: nginx:1.27',
      'gitCommit: 3f2a1c9d',
      'buildNumber: 0123',
      'env_vars: { VERSION: 1.10, DEBUG: true, ZIP: 01234, NAME: web }',
      'hosts: [app_server]',
      'command: serve --port "8080"',
      'entrypoint: [/bin/tini, --, 1]',
      'user: 1000',
      'working_dir: /app',
      'volumes: [/srv/data:/data:ro, /cache]',
      'labels: { com.example.team: web }',
      'stop_signal: SIGQUIT',
      'stop_timeout: 1m',
      'network_mode: bridge',
      'restart_policy: on-failure:3',
      'init: false',
      'log_driver: syslog',
      'log_options: { tag: someorg, syslog-facility: local0 }',
      'pull: missing',
      'healthcheck: { http: "http://127.0.0.1:8080/health", interval: 500ms, timeout: 1s, retries: 5, start_period: 10s }',
      'drain: true',
      'files: [{ source: files/web.conf, target: /etc/web.conf, mode: 0640, reload: SIGHUP }]',
      '',
    ].join('\n'),
  });
  assert.deepEqual(s, {
    name: 'web',
    image: 'nginx:1.27',
    gitCommit: '3f2a1c9d',
    buildNumber: '0123',
    env: { VERSION: '1.10', DEBUG: 'true', ZIP: '01234', NAME: 'web' },
    hosts: ['app_server'],
    command: ['serve', '--port', '8080'],
    entrypoint: ['/bin/tini', '--', '1'],
    user: '1000',
    workingDir: '/app',
    volumes: ['/srv/data:/data:ro', '/cache'],
    labels: { 'com.example.team': 'web' },
    stopSignal: 'SIGQUIT',
    stopTimeout: 60,
    networkMode: 'bridge',
    restartPolicy: 'on-failure:3',
    init: false,
    logDriver: 'syslog',
    logOptions: { tag: 'someorg', 'syslog-facility': 'local0' },
    pull: 'missing',
    healthcheck: {
      http: 'http://127.0.0.1:8080/health',
      interval: 500,
      timeout: 1000,
      retries: 5,
      startPeriod: 10_000,
    },
    drain: true,
    files: [{ source: 'files/web.conf', target: '/etc/web.conf', mode: 0o640, reload: { signal: 'SIGHUP' } }],
    file: 'services/web.yml',
  });
  for (const [key, f] of FIELD_LIST) assert.notEqual(s[f.spec], undefined, `this test's file sets ${key}`);
});

test("the reference design's keyed fragments are read unchanged", () => {
  const s = only({
    'services/foo.yaml': [
      'foo:',
      '  name: foo-svc',
      '  image: 127.0.0.1:5000/team/foo:7',
      '  gitCommit: 3f2a1c9d',
      "  buildNumber: '123'",
      '  env_vars:',
      '    BAR: baz',
      '',
    ].join('\n'),
  });
  assert.equal(s.name, 'foo-svc');
  assert.equal(s.buildNumber, '123');
  assert.deepEqual(s.env, { BAR: 'baz' });
  assert.equal(s.file, 'services/foo.yaml');
  assert.equal(only({ 'services/x.yaml': 'bar:\n  image: nginx\n  buildNumber: 42\n' }).name, 'bar');
  assert.equal(only({ 'services/x.yaml': 'bar:\n  image: nginx\n  buildNumber: 42\n' }).buildNumber, '42');
});

test('berth.yaml defaults merge under every service; maps key by key, the service wins', () => {
  const r = load({
    'berth.yaml': [
      'env_dir: /srv/berth/env',
      'defaults:',
      '  log_driver: syslog',
      '  log_options: { tag: someorg, syslog-facility: local0 }',
      '  env_vars: { TZ: UTC, LEVEL: info }',
      '  restart_policy: unless-stopped',
      '  healthcheck: { docker: true }',
      '',
    ].join('\n'),
    'services/aa.yaml': [
      'image: a',
      'env_vars: { LEVEL: debug }',
      'log_options: { tag: a }',
      'restart_policy: always',
      'healthcheck: { http: "http://localhost/" }',
      '',
    ].join('\n'),
    'services/bb.yaml': 'image: b\n',
  });
  assert.deepEqual(r.issues, []);
  assert.equal(r.repo?.envDir, '/srv/berth/env');
  const [a, b] = r.repo!.services;
  assert.deepEqual(a!.env, { TZ: 'UTC', LEVEL: 'debug' });
  assert.deepEqual(a!.logOptions, { tag: 'a', 'syslog-facility': 'local0' });
  assert.equal(a!.logDriver, 'syslog');
  assert.equal(a!.restartPolicy, 'always');
  // One probe per health check: the service's replaces the default's whole.
  assert.deepEqual(a!.healthcheck, {
    http: 'http://localhost/',
    interval: 2000,
    timeout: 2000,
    retries: 3,
    startPeriod: 0,
  });
  assert.deepEqual(b!.env, { TZ: 'UTC', LEVEL: 'info' });
  assert.equal(b!.restartPolicy, 'unless-stopped');
  assert.deepEqual(b!.healthcheck, {
    docker: true,
    interval: 2000,
    timeout: 2000,
    retries: 3,
    startPeriod: 0,
  });
});

test('services_dir: only direct children with .yaml or .yml; other files ignored', () => {
  const r = load({
    'berth.yaml': 'services_dir: ./deploy/services/\n',
    'deploy/services/aa.yaml': 'image: a\n',
    'deploy/services/bb.yml': 'image: b\n',
    'deploy/services/nested/c.yaml': 'not: a service\n',
    'deploy/services/README.md': '# hi\n',
    'services/dd.yaml': 'not: read\n',
    Makefile: 'all:\n',
  });
  assert.deepEqual(r.issues, []);
  assert.deepEqual(
    r.repo?.services.map((s) => s.file),
    ['deploy/services/aa.yaml', 'deploy/services/bb.yml'],
  );
  assert.equal(r.repo?.settings?.servicesDir, 'deploy/services');
});

test('a repo without service files loads (the apply layer decides what that means)', () => {
  const r = load({});
  assert.deepEqual(r.issues, []);
  assert.deepEqual(r.repo?.services, []);
});

test('type errors name file, line, column and path in words people use', () => {
  assert.deepEqual(
    report({
      'services/api.yaml': [
        'image: nginx', // 1
        'env_vars:', // 2
        '  OK: yes', // 3
        '  LIST: [a]', // 4
        '  EMPTY:', // 5
        '  FOO:', // 6
        '    a: 1', // 7
        'hosts: app', // 8
        'init: "yes"', // 9
        'stop_timeout: 1500ms', // 10
        'healthcheck: { http: "http://x/", tcp: "x:1" }', // 11
        'volumes: [data]', // 12
        'pull: never', // 13
        'restart_policy: sometimes', // 14
        'working_dir: app', // 15
        'command: { run: x }', // 16
        'buildNumber: [1]', // 17
        '',
      ].join('\n'),
    }),
    [
      'services/api.yaml:4:9 env_vars.LIST: expected a string, got a list',
      'services/api.yaml:5:9 env_vars.EMPTY: expected a string, got null (an empty value)',
      'services/api.yaml:7:5 env_vars.FOO: expected a string, got a map',
      'services/api.yaml:8:8 hosts: expected a list, got a string',
      'services/api.yaml:8:8 hosts: warning: ignored: there is no inventory.yaml, so this service runs on every host',
      'services/api.yaml:9:7 init: expected true or false, got a string',
      'services/api.yaml:10:15 stop_timeout: stop_timeout must be whole seconds',
      'services/api.yaml:11:14 healthcheck: a healthcheck takes only one of http, tcp or docker: true',
      'services/api.yaml:12:11 volumes[0]: volume "data" must be SRC:DST[:MODE] or DST, with DST absolute',
      'services/api.yaml:13:7 pull: expected one of "always", "missing", got "never"',
      'services/api.yaml:14:17 restart_policy: invalid restart_policy "sometimes": use no, always, unless-stopped or on-failure[:N]',
      'services/api.yaml:15:14 working_dir: working_dir must be an absolute path',
      'services/api.yaml:16:10 command: expected a string or a list, got a map',
      'services/api.yaml:17:14 buildNumber: expected a string, got a list',
    ],
  );
});

test('unknown keys point at the key and suggest the likely one', () => {
  assert.deepEqual(
    report({
      'services/api.yaml':
        'imgae: nginx\nenv_var: {}\nhealthcheck:\n  docker: true\n  intervall: 5s\nfrobnicate: 1\n',
    }),
    [
      'services/api.yaml:1:1: missing required key "image"',
      'services/api.yaml:1:1: unknown key "imgae" (did you mean "image"?)',
      'services/api.yaml:2:1: unknown key "env_var" (did you mean "env_vars"?)',
      'services/api.yaml:5:3 healthcheck: unknown key "intervall" (did you mean "interval"?)',
      'services/api.yaml:6:1: unknown key "frobnicate"',
    ],
  );
});

test('invalid image references, env names, reserved labels, shell operators', () => {
  assert.deepEqual(
    report({
      'services/api.yaml': [
        'image: Foo:bar',
        'env_vars:',
        '  1BAD: x',
        '  GOOD-NAME: y',
        'labels: { berth.service: x, ok: y }',
        'command: run && rm -rf /',
        '',
      ].join('\n'),
    }),
    [
      'services/api.yaml:1:8 image: invalid image reference "Foo:bar": the repository name must be lowercase',
      'services/api.yaml:3:3 env_vars.1BAD: invalid env name "1BAD": use letters, digits and "_", not starting with a digit',
      'services/api.yaml:4:3 env_vars.GOOD-NAME: invalid env name "GOOD-NAME": use letters, digits and "_", not starting with a digit',
      'services/api.yaml:5:11 labels.berth.service: label "berth.service" is reserved: berth.* labels are how berth knows its containers',
      'services/api.yaml:6:10 command: shell operator "&&" is not supported: berth runs the command without a shell; write it as a list, e.g. ["sh", "-c", "..."], to use one',
    ],
  );
});

test('newlines and NUL are refused in env values and every other string', () => {
  assert.deepEqual(
    report({
      'services/api.yaml': [
        'image: nginx',
        'env_vars:',
        '  KEY: "a\\nb"',
        '  NUL: "a\\0b"',
        '  BLOCK: |',
        '    line one',
        '    line two',
        'user: "root\\r"',
        'command: ["a", "b\\nc"]',
        '',
      ].join('\n'),
    }),
    [
      'services/api.yaml:3:8 env_vars.KEY: contains a line break; use one line',
      'services/api.yaml:4:8 env_vars.NUL: contains a NUL character',
      'services/api.yaml:5:10 env_vars.BLOCK: contains a line break; use one line',
      'services/api.yaml:8:7 user: contains a line break; use one line',
      'services/api.yaml:9:16 command[1]: contains a line break; use one line',
    ],
  );
});

test('service names must be safe file and container names, in both forms', () => {
  const long = 'a'.repeat(64);
  assert.deepEqual(
    report({
      'services/a b.yaml': 'image: nginx\n',
      [`services/${long}.yaml`]: 'image: nginx\n',
      'services/.hidden.yaml': 'image: nginx\n',
      'services/k1.yaml': 'k1:\n  name: ../x\n  image: nginx\n',
      'services/k2.yaml': 'k2:\n  name: a/b\n  image: nginx\n',
      'services/k3.yaml': 'k3:\n  name: ""\n  image: nginx\n',
      'services/k4.yaml': '"-bad":\n  image: nginx\n',
      [`services/${'b'.repeat(63)}.yaml`]: 'image: nginx\n',
    }),
    [
      'services/.hidden.yaml: service name ".hidden" (the file name) is not a safe file and container name: use 2-63 letters, digits, "_", "." or "-", starting with a letter or digit',
      'services/a b.yaml: service name "a b" (the file name) is not a safe file and container name: use 2-63 letters, digits, "_", "." or "-", starting with a letter or digit',
      `services/${long}.yaml: service name "${long}" (the file name) is not a safe file and container name: use 2-63 letters, digits, "_", "." or "-", starting with a letter or digit`,
      'services/k1.yaml:2:9 k1.name: "../x" is not a safe service name: use 2-63 letters, digits, "_", "." or "-", starting with a letter or digit',
      'services/k2.yaml:2:9 k2.name: "a/b" is not a safe service name: use 2-63 letters, digits, "_", "." or "-", starting with a letter or digit',
      'services/k3.yaml:2:9 k3.name: "" is not a safe service name: use 2-63 letters, digits, "_", "." or "-", starting with a letter or digit',
      'services/k4.yaml:1:1: service name "-bad" (the top-level key) is not a safe file and container name: use 2-63 letters, digits, "_", "." or "-", starting with a letter or digit',
    ],
  );
});

test('broken YAML, duplicate keys, empty and non-map files', () => {
  assert.deepEqual(
    report({
      'services/aa.yaml': 'image: nginx\nenv_vars: [a\n',
      'services/bb.yaml': 'image: nginx\nenv_vars:\n  FOO: 1\n  FOO: 2\n',
      'services/cc.yaml': '',
      'services/dd.yaml': '# only a comment\n',
      'services/ee.yaml': '- image: nginx\n',
      'services/ff.yaml': 'nginx:1.27\n',
      'services/gg.yaml': 'image: a\n---\nimage: b\n',
      'services/hh.yaml': 'api:\n  gitCommit: x\nweb:\n  gitCommit: y\n',
    }),
    [
      'services/aa.yaml:3:1: invalid YAML: flow sequence in block collection must be sufficiently indented and end with a ]',
      'services/bb.yaml:4:3: duplicate key "FOO"',
      'services/cc.yaml: the file is empty; a service needs at least `image:`',
      'services/dd.yaml: the file is empty; a service needs at least `image:`',
      'services/ee.yaml:1:1: expected a map of service settings, got a list',
      'services/ff.yaml:1:1: expected a map of service settings, got a string',
      'services/gg.yaml:2:1: more than one YAML document in this file; remove the extra "---"',
      'services/hh.yaml:1:1: missing required key "image"',
      'services/hh.yaml:1:1: unknown key "api"',
      'services/hh.yaml:3:1: unknown key "web"',
    ],
  );
});

test('keyed form errors carry the key in their path; a missing image points at the body', () => {
  assert.deepEqual(
    report({ 'services/foo.yaml': 'foo:\n  name: foo\n  gitCommit: abc\n  env_vars: { A: [1] }\n' }),
    [
      'services/foo.yaml:2:3 foo: missing required key "image"',
      'services/foo.yaml:4:18 foo.env_vars.A: expected a string, got a list',
    ],
  );
});

test('name: in the canonical form is refused rather than silently ignored', () => {
  assert.deepEqual(report({ 'services/api.yaml': 'image: nginx\nname: web\n' }), [
    'services/api.yaml:2:1: "name" is only read in the keyed form; this service is named after its file: "api"',
  ]);
});

test('duplicate service names name both files', () => {
  assert.deepEqual(
    report({
      'services/api.yaml': 'image: nginx\n',
      'services/api.yml': 'image: nginx\n',
      'services/legacy.yaml': 'legacy:\n  name: api\n  image: nginx\n',
    }),
    [
      'services/api.yaml: service "api" is also defined in services/api.yml, services/legacy.yaml',
      'services/api.yml: service "api" is also defined in services/api.yaml, services/legacy.yaml',
      'services/legacy.yaml:2:9: service "api" is also defined in services/api.yaml, services/api.yml',
    ],
  );
});

const INVENTORY = [
  'hosts:',
  '  app-1: { address: 10.0.1.11, groups: [app_server], vars: { lb_server: app1 } }',
  '  app-2: { address: 10.0.1.12, groups: [app_server] }',
  '  proxy-01: { address: 10.0.2.5, groups: [proxy_server] }',
  '  bare:',
  'groups:',
  '  app_server: { vars: { docker_socket: /var/run/docker.sock } }',
  '  empty_group:',
  'ssh: { user: admin, port: 22, bastion: admin@bastion.example.com }',
  '',
].join('\n');

test('inventory: hosts, groups (also those only hosts name), ssh; address defaults to the name', () => {
  const r = load({ 'inventory.yaml': INVENTORY });
  assert.deepEqual(r.issues, []);
  assert.deepEqual(r.repo?.inventory, {
    hosts: [
      { name: 'app-1', address: '10.0.1.11', groups: ['app_server'], vars: { lb_server: 'app1' } },
      { name: 'app-2', address: '10.0.1.12', groups: ['app_server'], vars: {} },
      { name: 'proxy-01', address: '10.0.2.5', groups: ['proxy_server'], vars: {} },
      { name: 'bare', address: 'bare', groups: [], vars: {} },
    ],
    groups: {
      app_server: { vars: { docker_socket: '/var/run/docker.sock' } },
      empty_group: { vars: {} },
      proxy_server: { vars: {} },
    },
    ssh: { user: 'admin', port: 22, bastion: 'admin@bastion.example.com' },
  });
});

test('hosts: entries must name an inventory host or group', () => {
  assert.deepEqual(
    report({
      'inventory.yaml': INVENTORY,
      'services/api.yaml': 'image: nginx\nhosts: [app_server, app-2, proxy_server, app_sever, nowhere]\n',
      'services/web.yaml': 'web:\n  image: nginx\n  hosts:\n    - app-3\n',
    }),
    [
      'services/api.yaml:2:42 hosts[3]: "app_sever" is neither a host nor a group in inventory.yaml (did you mean "app_server"?)',
      'services/api.yaml:2:53 hosts[4]: "nowhere" is neither a host nor a group in inventory.yaml',
      'services/web.yaml:4:7 web.hosts[0]: "app-3" is neither a host nor a group in inventory.yaml (did you mean "app-1"?)',
    ],
  );
});

test('without an inventory, hosts: is a warning and the repo still loads', () => {
  const r = load({ 'services/api.yaml': 'image: nginx\nhosts: [app_server]\n' });
  assert.deepEqual(r.issues.map(formatIssue), [
    'services/api.yaml:2:8 hosts: warning: ignored: there is no inventory.yaml, so this service runs on every host',
  ]);
  assert.equal(r.repo?.services.length, 1);
});

test('inventory.yaml errors', () => {
  assert.deepEqual(
    report({
      'inventory.yaml': [
        'hosts:',
        '  app-1: { adress: 10.0.1.1 }',
        '  app-2: { groups: app }',
        'ssh: { port: 70000, bastion: "a@b@c" }',
        'extra: 1',
        '',
      ].join('\n'),
    }),
    [
      'inventory.yaml:2:12 hosts.app-1: unknown key "adress" (did you mean "address"?)',
      'inventory.yaml:3:20 hosts.app-2.groups: expected a list, got a string',
      'inventory.yaml:4:14 ssh.port: must be at most 65535, got 70000',
      'inventory.yaml:4:30 ssh.bastion: bastion "a@b@c" must be [user@]host[:port]',
      'inventory.yaml:5:1: unknown key "extra"',
    ],
  );
});

test('berth.yaml: settings, environments and smoke checks', () => {
  const r = load({
    'berth.yaml': [
      'project: shop',
      'secrets_dir: /srv/secrets',
      'environments:',
      '  staging:    { branch: staging, promote_to: production }',
      '  production: { branch: production }',
      'load_balancer:',
      '  provider: haproxy',
      '  socket: /run/haproxy/admin.sock',
      '  server: "{{ host.name }}"',
      '  drain_timeout: 30s',
      'smoke:',
      '  staging:',
      '    - { url: "https://staging.example.com/health", status: 200 }',
      '    - { url: "https://staging.example.com/", body: Welcome, timeout: 2.5s }',
      'inventory: { source: static }',
      '',
    ].join('\n'),
  });
  assert.deepEqual(r.issues, []);
  assert.deepEqual(r.repo?.settings, {
    project: 'shop',
    servicesDir: 'services',
    secretsDir: '/srv/secrets',
    environments: {
      staging: { branch: 'staging', promoteTo: 'production' },
      production: { branch: 'production' },
    },
    loadBalancer: {
      provider: 'haproxy',
      socket: '/run/haproxy/admin.sock',
      server: '{{ host.name }}',
      drain_timeout: '30s',
    },
    rollout: { batch: 1, maxUnavailable: 1 },
    smoke: {
      staging: [
        { url: 'https://staging.example.com/health', status: 200, timeoutMs: 10_000 },
        { url: 'https://staging.example.com/', status: 200, body: 'Welcome', timeoutMs: 2_500 },
      ],
    },
    inventory: { source: 'static' },
  });
});

test('berth.yaml: rollout.batch and max_unavailable are read (a number or a percentage)', () => {
  assert.deepEqual(
    report({ 'berth.yaml': 'project: shop\nrollout: { batch: 2, max_unavailable: 1 }\n' }),
    [],
  );
  const settings = (text: string) =>
    loadStateRepo({ files: new Map([['berth.yaml', text]]), ref: 'main' }).repo?.settings?.rollout;
  assert.deepEqual(settings('rollout: { batch: 3 }\n'), { batch: 3, maxUnavailable: 1 });
  assert.deepEqual(settings("rollout: { batch: '25%', max_unavailable: '50%' }\n"), {
    batch: '25%',
    maxUnavailable: '50%',
  });
  assert.deepEqual(report({ 'berth.yaml': "rollout: { batch: '0%' }\n" }), [
    'berth.yaml:1:19 rollout.batch: "0%" is not a number of hosts or a percentage from 1% to 100%',
  ]);
});

test('berth.yaml errors', () => {
  assert.deepEqual(
    report({
      'berth.yaml': [
        'env_dir: etc/env', // 1
        'defaults:', // 2
        '  image: nginx', // 3
        '  env_vars: { A: { b: 1 } }', // 4
        'environments:', // 5
        '  staging: { branch: staging, promote_to: prod }', // 6
        '  a: { branch: a, promote_to: b }', // 7
        '  b: { branch: b, promote_to: a }', // 8
        'rollout: { batch: 0 }', // 9
        'smoke:', // 10
        '  stagin: [{ url: "ftp://x", status: 99 }]', // 11
        'inventory: { source: static, region: eu }', // 12
        'servces_dir: x', // 13
        '',
      ].join('\n'),
    }),
    [
      'berth.yaml:1:10 env_dir: env_dir must be an absolute path',
      'berth.yaml:3:3 defaults: unknown key "image"',
      'berth.yaml:4:18 defaults.env_vars.A: expected a string, got a map',
      'berth.yaml:9:19 rollout.batch: must be at least 1, got 0',
      'berth.yaml:11:19 smoke.stagin[0].url: "ftp://x" is not an http:// or https:// URL',
      'berth.yaml:11:38 smoke.stagin[0].status: must be at least 100, got 99',
      'berth.yaml:12:30 inventory: unknown key "region"',
      'berth.yaml:13:1: unknown key "servces_dir" (did you mean "services_dir"?)',
    ],
  );
  // Cross-key checks run once the shape is right.
  assert.deepEqual(
    report({
      'berth.yaml': [
        'environments:',
        '  staging: { branch: staging, promote_to: prod }',
        '  a: { branch: a, promote_to: b }',
        '  b: { branch: b, promote_to: a }',
        'smoke:',
        '  stagin: []',
        '',
      ].join('\n'),
    }),
    [
      'berth.yaml:2:43 environments.staging.promote_to: no environment named "prod"',
      'berth.yaml:3:31 environments.a.promote_to: the promotion chain loops: a → b → a',
      'berth.yaml:6:3 smoke.stagin: no environment named "stagin" under environments (did you mean "staging"?)',
    ],
  );
});

test('hosts: in berth.yaml defaults are checked against the inventory too', () => {
  assert.deepEqual(report({ 'inventory.yaml': INVENTORY, 'berth.yaml': 'defaults:\n  hosts: [apps]\n' }), [
    'berth.yaml:2:11 defaults.hosts[0]: "apps" is neither a host nor a group in inventory.yaml',
  ]);
});

test('every problem in every file is reported at once, in file order; warnings do not block', () => {
  const r = load({
    'berth.yml': 'env_dir: /x\n',
    'berth.yaml': 'env_dir: x\n',
    'inventory.yaml': 'hosts:\n  app-1: { groups: [web] }\n',
    'services/aa.yaml': 'image: A\n',
    'services/bb.yaml': 'bb:\n  image: nginx\n  hosts: [db]\n',
    'services/cc.yaml': 'image: nginx\nimage: redis\n',
  });
  assert.deepEqual(r.issues.map(formatIssue), [
    'berth.yaml:1:10 env_dir: env_dir must be an absolute path',
    'services/aa.yaml:1:8 image: invalid image reference "A": the repository name must be lowercase',
    'services/bb.yaml:3:11 bb.hosts[0]: "db" is neither a host nor a group in inventory.yaml',
    'services/cc.yaml:2:1: duplicate key "image"',
  ]);
  assert.equal(r.repo, undefined);
  const warned = load({ 'berth.yml': 'env_dir: /x\n', 'services/aa.yaml': 'image: a\n' });
  assert.deepEqual(warned.issues.map(formatIssue), [
    'berth.yml: warning: this file is not read; name it berth.yaml',
  ]);
  assert.equal(warned.repo?.services.length, 1);
});

test('templates are allowed where a URL or volume is expected', () => {
  const s = only({
    'services/api.yaml':
      'image: nginx\nvolumes: ["{{ host.vars.data }}:/data"]\nhealthcheck: { http: "http://{{ host.address }}:8080/" }\n',
  });
  assert.equal(s.healthcheck?.http, 'http://{{ host.address }}:8080/');
});

test('files the reader could not read are reported with every other problem, and the repo is refused', () => {
  const r = loadStateRepo({
    files: new Map([
      ['services/web.yaml', 'image: nginx\nenv_vars: [a\n'],
      ['services/ok.yaml', 'image: nginx\n'],
    ]),
    ref: 'main',
    unreadable: [
      {
        file: 'services/api.yaml',
        message: 'symlink points outside the repo: /etc/passwd',
        severity: 'error',
      },
    ],
  });
  assert.equal(r.repo, undefined);
  assert.deepEqual(r.issues.map(formatIssue), [
    'services/api.yaml: symlink points outside the repo: /etc/passwd',
    'services/web.yaml:3:1: invalid YAML: flow sequence in block collection must be sufficiently indented and end with a ]',
  ]);
});

test('names berth uses itself cannot be service names, in any form', () => {
  assert.deepEqual(
    report({
      'services/web.yaml': 'image: web\n',
      'services/web.berth-old.yaml': 'image: web\n',
      'services/lock.yaml': 'berth.lock:\n  image: web\n',
      'services/state.yaml': 'state:\n  name: Berth.State\n  image: web\n',
    }),
    [
      'services/lock.yaml:1:1: service name "berth.lock" is reserved: berth names its own containers "berth.*" and sets a replaced container aside as "<service>.berth-old"',
      'services/state.yaml:2:9 state.name: service name "Berth.State" is reserved: berth names its own containers "berth.*" and sets a replaced container aside as "<service>.berth-old"',
      'services/web.berth-old.yaml: service name "web.berth-old" is reserved: berth names its own containers "berth.*" and sets a replaced container aside as "<service>.berth-old"',
    ],
  );
});

test('env_dir may not be a system folder; berth.* labels are reserved in any case', () => {
  assert.deepEqual(
    report({
      'berth.yaml': 'env_dir: /etc\n',
      'services/web.yaml': 'image: web\nlabels: { Berth.service: x }\n',
    }),
    [
      'berth.yaml:1:10 env_dir: env_dir "/etc" is a system folder; berth writes and removes files in env_dir, so give it a folder of its own (default /etc/berth/env)',
      'services/web.yaml:2:11 labels.Berth.service: label "Berth.service" is reserved: berth.* labels are how berth knows its containers',
    ],
  );
  assert.deepEqual(report({ 'berth.yaml': 'env_dir: /usr/./local//\n' }).length, 1);
  assert.deepEqual(report({ 'berth.yaml': 'env_dir: /etc/berth/env\n' }), []);
});

test('rollout: max_unavailable is a number of hosts or a percentage; lease_expiry a duration', () => {
  const settings = (yaml: string) =>
    load({ 'berth.yaml': yaml, 'services/aa.yaml': 'image: a\n' }).repo?.settings;
  assert.deepEqual(settings('rollout: { max_unavailable: 25% }\n')?.rollout, {
    batch: 1,
    maxUnavailable: '25%',
  });
  assert.deepEqual(settings('rollout: { max_unavailable: 2, lease_expiry: 1m }\n')?.rollout, {
    batch: 1,
    maxUnavailable: 2,
    leaseExpiryMs: 60_000,
  });
  const errors = (yaml: string) => report({ 'berth.yaml': yaml, 'services/aa.yaml': 'image: a\n' });
  assert.match(
    errors('rollout: { max_unavailable: 0 }\n').join('\n'),
    /berth\.yaml:1:29 rollout\.max_unavailable: .*at least 1/,
  );
  assert.match(
    errors('rollout: { max_unavailable: 150% }\n').join('\n'),
    /rollout\.max_unavailable: .*"150%" is not a number of hosts or a percentage from 1% to 100%/,
  );
  assert.match(
    errors('rollout: { lease_expiry: 500ms }\n').join('\n'),
    /rollout\.lease_expiry: lease_expiry must be at least 1s/,
  );
  assert.match(
    errors('rollout: { lease_expiry: soon }\n').join('\n'),
    /rollout\.lease_expiry: invalid duration "soon"/,
  );
});
