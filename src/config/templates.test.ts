import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIssue } from '../model/errors.js';
import type { DesiredState, StateRepo } from '../model/service.js';
import { loadStateRepo } from './load.js';
import { desiredForHost, type RenderOptions } from './select.js';

function load(files: Record<string, string>, ref = 'staging') {
  return loadStateRepo({ files: new Map(Object.entries(files)), ref });
}

function report(files: Record<string, string>): string[] {
  return load(files).issues.map(formatIssue);
}

function repo(files: Record<string, string>, ref = 'staging'): StateRepo {
  const r = load(files, ref);
  assert.deepEqual(r.issues.map(formatIssue), []);
  return r.repo!;
}

/** The character at a reported line:col of a file, so each expected column is seen to be right. */
function charAt(text: string, issue: string): string {
  const m = /^[^:]+:(\d+):(\d+) /.exec(issue);
  assert.ok(m, issue);
  return text.split('\n')[Number(m[1]) - 1]!.slice(Number(m[2]) - 1);
}

const INVENTORY = [
  'hosts:',
  '  app-1: { address: 10.0.1.11, groups: [app_server], vars: { lb_server: app1, region: eu-west } }',
  '  app-2: { address: 10.0.1.12, groups: [app_server] }',
  '  proxy-01: { address: 10.0.2.5, groups: [proxy_server] }',
  '  proxy-02: { address: 10.0.2.6, groups: [proxy_server] }',
  'groups:',
  '  app_server: { vars: { docker_socket: /var/run/docker.sock, region: eu-central } }',
  '',
].join('\n');

test('validate: a template error points at the offending character in a plain scalar', () => {
  const api = [
    'image: api',
    'env_vars:',
    '  TZ: UTC',
    '  HOST: "{{ host.address }}"',
    '  DB_URL: pg://{{ secrets.db_password | urlencod }}@{{ host.address }}/app',
    '',
  ].join('\n');
  const issues = report({ 'services/api.yaml': api });
  assert.equal(issues.length, 1);
  assert.match(
    issues[0]!,
    /^services\/api\.yaml:5:41 env_vars\.DB_URL: unknown filter "urlencod" \(did you mean "urlencode"\?\)/,
  );
  assert.ok(charAt(api, issues[0]!).startsWith('urlencod }}'));
  assert.equal(
    load({ 'services/api.yaml': api }).repo,
    undefined,
    'nothing is loaded from a repo with errors',
  );
});

test("validate: single-quoted ('' is one character), double-quoted (escapes) and block scalars", () => {
  const api = [
    'image: api',
    'env_vars:',
    "  SQ: 'it''s ''{{ host.nmae }}'''",
    '  DQ: "tab\\there\\u00e9\\x41\\"{{ host.adress }}"',
    '  BLOCK: |-',
    '    {{ nope }}',
    'labels:',
    '  team: "{{ env | lowr }}"',
    'user: "{{ service.owner }}"',
    'working_dir: /srv/{{ service.name',
    'volumes:',
    "  - '/data/{{ host.name }}:/data'",
    "  - '{{ hosts.name }}:/x'",
    '',
  ].join('\n');
  const issues = report({ 'services/api.yaml': api });
  const starts = issues.map((i) => [i.replace(/: .*/s, ''), charAt(api, i)]);
  assert.deepEqual(
    starts.map(([where, at]) => [where, at!.slice(0, 6)]),
    [
      ['services/api.yaml:3:24 env_vars.SQ', 'nmae }'],
      ['services/api.yaml:4:37 env_vars.DQ', 'adress'],
      // A block scalar's template maps to the scalar's start.
      ['services/api.yaml:5:10 env_vars.BLOCK', '|-'],
      ['services/api.yaml:8:19 labels.team', 'lowr }'],
      ['services/api.yaml:9:19 user', 'owner '],
      ['services/api.yaml:10:19 working_dir', '{{ ser'],
      ['services/api.yaml:13:9 volumes[1]', 'hosts.'],
    ],
  );
  assert.match(issues[0]!, /host has no key "nmae" \(did you mean "name"\?\)/);
  assert.match(issues[2]!, /unknown name "nope"/);
  assert.match(issues[4]!, /cannot read service\.owner/);
});

test('validate: a one-line command is checked whole, before it is split; list items one by one', () => {
  const api = [
    'image: api',
    'command: serve --bind "{{ host.adress }}:80" --name \'{{ servce.name }}\'',
    'entrypoint: [/bin/tini, "--", "{{ env | uper }}"]',
    '',
  ].join('\n');
  const issues = report({ 'services/api.yaml': api });
  assert.deepEqual(
    issues.map((i) => [i.replace(/: .*/s, ''), charAt(api, i).slice(0, 6)]),
    [
      ['services/api.yaml:2:32 command', 'adress'],
      ['services/api.yaml:2:57 command', 'servce'],
      ['services/api.yaml:3:41 entrypoint[2]', 'uper }'],
    ],
  );
});

test('validate: groups are checked against the inventory, and without one there are none', () => {
  const api =
    "image: api\nenv_vars:\n  P: \"{{ groups.proxy_servr | map(attribute='address') | join(',') }}\"\n";
  assert.deepEqual(
    report({ 'inventory.yaml': INVENTORY, 'services/api.yaml': api }).map((i) => i.replace(/;.*/, '')),
    ['services/api.yaml:3:17 env_vars.P: unknown group "proxy_servr" (did you mean "proxy_server"?)'],
  );
  assert.deepEqual(
    report({ 'services/api.yaml': api }).map((i) => i.replace(/;.*/, '')),
    ['services/api.yaml:3:17 env_vars.P: unknown group "proxy_servr"'],
  );
  assert.match(report({ 'services/api.yaml': api })[0]!, /there are no groups/);
});

test('validate: secrets only in env_vars; defaults and load_balancer settings are checked in berth.yaml', () => {
  const berth = [
    'defaults:',
    '  env_vars: { REGION: "{{ host.vars.region | defualt(\'eu\') }}" }',
    'load_balancer:',
    '  provider: haproxy',
    '  server: "{{ host.nam }}"',
    '  socket: "/run/{{ secrets.sock }}"',
    '',
  ].join('\n');
  const api = ['image: api', 'labels:', '  pw: "{{ secrets.db_password }}"', ''].join('\n');
  const issues = report({ 'berth.yaml': berth, 'services/api.yaml': api });
  assert.deepEqual(
    issues.map((i) => [i.replace(/: .*/s, ''), charAt(i.startsWith('berth') ? berth : api, i).slice(0, 7)]),
    [
      ['berth.yaml:2:46 defaults.env_vars.REGION', 'defualt'],
      ['berth.yaml:5:20 load_balancer.server', 'nam }}"'],
      ['berth.yaml:6:20 load_balancer.socket', 'secrets'],
      ['services/api.yaml:3:11 labels.pw', 'secrets'],
    ],
  );
  assert.match(issues[2]!, /secrets cannot be used in load_balancer settings yet/);
  assert.match(issues[3]!, /secrets can be used only in env_vars/);
});

test('validate: log_options keep Docker templates as they are; image is never templated', () => {
  const r = repo({ 'services/api.yaml': 'image: api\nlog_options: { tag: "{{.Name}}" }\n' });
  assert.deepEqual(r.services[0]!.logOptions, { tag: '{{.Name}}' });
  assert.equal(r.services[0]!.templates, undefined);
  assert.match(report({ 'services/api.yaml': 'image: "{{ host.name }}"\n' })[0]!, /invalid image reference/);
});

const PASSWORD = 'p/a@s:s%w0rd?#';
const secrets =
  (values: Record<string, string>, asked: string[] = []): RenderOptions['secret'] =>
  (name) => {
    asked.push(name);
    return Object.hasOwn(values, name) ? values[name] : undefined;
  };

function rendered(d: DesiredState, name: string) {
  const s = d.services.find((x) => x.name === name);
  assert.ok(s, `${name} in ${JSON.stringify(d.services.map((x) => x.name))}: ${JSON.stringify(d.failed)}`);
  return s;
}

test('render: host, groups projected and joined, group vars under host vars, service and env', () => {
  const r = repo(
    {
      'berth.yaml': 'environments:\n  staging: { branch: release/stg }\n',
      'inventory.yaml': INVENTORY,
      'services/api.yaml': [
        'image: 127.0.0.1:5000/team/api:1.4.2',
        'buildNumber: 123',
        'hosts: [app_server]',
        'env_vars:',
        '  ADDR: "{{ host.address }}"',
        "  PROXIES: \"{{ groups.proxy_server | map(attribute='address') | join(',') }}\"",
        '  REGION: "{{ host.vars.region }}"',
        '  SOCKET: "{{ host.vars.docker_socket }}"',
        '  LB: "{{ host.vars.lb_server | default(host.name) }}"',
        '  WHO: "{{ service.name }}-{{ service.buildNumber }}@{{ env }}"',
        '  PLAIN: "no template"',
        'command: serve --bind "{{ host.address }}:80" --tag \'{{ host.name | upper }} x\'',
        'volumes: ["/srv/{{ service.name }}:/data"]',
        'labels: { lb: "{{ host.vars.lb_server | default(host.name) }}" }',
        'user: "{{ host.vars.uid | default(1000) }}"',
        'working_dir: "/srv/{{ env }}"',
        'healthcheck: { http: "http://{{ host.address }}:80/health" }',
        '',
      ].join('\n'),
    },
    'release/stg',
  );
  assert.ok(r.services[0]!.templates?.['env_vars.ADDR'], 'the repo-wide spec keeps where its templates are');

  const one = rendered(desiredForHost(r, 'app-1'), 'api');
  assert.deepEqual(one.env, {
    ADDR: '10.0.1.11',
    PROXIES: '10.0.2.5,10.0.2.6',
    REGION: 'eu-west',
    SOCKET: '/var/run/docker.sock',
    LB: 'app1',
    WHO: 'api-123@staging',
    PLAIN: 'no template',
  });
  assert.deepEqual(one.command, ['serve', '--bind', '10.0.1.11:80', '--tag', 'APP-1 x']);
  assert.deepEqual(one.volumes, ['/srv/api:/data']);
  assert.deepEqual(one.labels, { lb: 'app1' });
  assert.equal(one.user, '1000');
  assert.equal(one.workingDir, '/srv/staging');
  assert.equal(one.healthcheck?.http, 'http://10.0.1.11:80/health');
  assert.equal(one.templates, undefined, 'a rendered spec carries no template sources');
  assert.equal(one.secretEnv, undefined);

  const two = rendered(desiredForHost(r, 'app-2', { env: 'canary' }), 'api');
  assert.equal(two.env.REGION, 'eu-central');
  assert.equal(two.env.LB, 'app-2');
  assert.equal(two.env.WHO, 'api-123@canary');
  assert.deepEqual(two.labels, { lb: 'app-2' });
});

test('render without an inventory: the host is --host or "localhost", at 127.0.0.1; env defaults to the ref', () => {
  const r = repo({
    'services/api.yaml': 'image: api\nenv_vars: { H: "{{ host.name }}@{{ host.address }}/{{ env }}" }\n',
  });
  assert.equal(rendered(desiredForHost(r), 'api').env.H, 'localhost@127.0.0.1/staging');
  assert.equal(rendered(desiredForHost(r, 'box'), 'api').env.H, 'box@127.0.0.1/staging');
});

test('render: a password with / @ : % reaches the env value so a URL parser gives it back; shown redacted', () => {
  const r = repo({
    'inventory.yaml': INVENTORY,
    'services/api.yaml': [
      'image: api',
      'env_vars:',
      '  DATABASE_URL: postgres://app:{{ secrets.db_password | urlencode }}@{{ host.address }}:5432/app',
      '  TOKEN: "{{ secrets.token }}"',
      '  MODE: prod',
      '',
    ].join('\n'),
  });
  const asked: string[] = [];
  const d = desiredForHost(r, 'app-1', { secret: secrets({ db_password: PASSWORD, token: 'tok3n' }, asked) });
  const s = rendered(d, 'api');
  const url = new URL(s.env.DATABASE_URL!);
  assert.equal(decodeURIComponent(url.password), PASSWORD);
  assert.equal(url.username, 'app');
  assert.equal(url.hostname, '10.0.1.11');
  assert.equal(url.pathname, '/app');
  assert.deepEqual(s.secretEnv, { DATABASE_URL: ['db_password'], TOKEN: ['token'] });
  assert.deepEqual(s.redactedEnv, {
    DATABASE_URL: 'postgres://app:<secret:db_password>@10.0.1.11:5432/app',
    TOKEN: '<secret:token>',
  });
  assert.deepEqual(asked.sort(), ['db_password', 'token'], 'each secret is asked for once');
  // Everything but the env itself is safe to show.
  const shown = JSON.stringify({ ...d, services: d.services.map((x) => ({ ...x, env: undefined })) });
  for (const leak of [PASSWORD, encodeURIComponent(PASSWORD), 'tok3n'])
    assert.ok(!shown.includes(leak), leak);
});

test('render: a missing secret or a failed lookup holds only that service, at file:line:col', () => {
  const api = [
    'image: api',
    'env_vars:',
    '  DATABASE_URL: postgres://app:{{ secrets.db_password | urlencode }}@db/app',
    '  OTHER: "{{ secrets.other }}"',
    '',
  ].join('\n');
  const r = repo({
    'services/api.yaml': api,
    'services/web.yaml': 'image: web\nenv_vars: { A: "{{ host.name }}" }\n',
    'services/worker.yaml': 'image: worker\nenv_vars: { KEY: "{{ secrets.other }}" }\n',
  });
  const d = desiredForHost(r, 'box', {
    secret: (name) =>
      name === 'other' ? { error: 'cannot decrypt secrets/other.age with this identity' } : undefined,
  });
  assert.deepEqual(
    d.services.map((s) => s.name),
    ['web'],
  );
  assert.deepEqual(d.held, ['api', 'worker']);
  assert.deepEqual(
    d.failed?.map((f) => [f.service, f.issues.map(formatIssue)]),
    [
      [
        'api',
        [
          'services/api.yaml:3:35 env_vars.DATABASE_URL: secret db_password is missing (service api is left as it runs)',
          'services/api.yaml:4:14 env_vars.OTHER: secret other: cannot decrypt secrets/other.age with this identity (service api is left as it runs)',
        ],
      ],
      [
        'worker',
        [
          'services/worker.yaml:2:22 env_vars.KEY: secret other: cannot decrypt secrets/other.age with this identity (service worker is left as it runs)',
        ],
      ],
    ],
  );
  assert.ok(charAt(api, formatIssue(d.failed![0]!.issues[0]!)).startsWith('secrets.db_password'));
  // Without any lookup (a command that does not read secrets), the service is held, never rendered empty.
  assert.deepEqual(desiredForHost(r, 'box').held, ['api', 'worker']);
});

test('render: a missing host var in a one-line command points into the line; defaults point into berth.yaml', () => {
  const berth = 'defaults:\n  env_vars: { LB: "{{ host.vars.lb_server }}" }\n';
  const api = 'image: api\ncommand: run --x "{{ host.vars.missing }}"\n';
  const r = repo({ 'berth.yaml': berth, 'inventory.yaml': INVENTORY, 'services/api.yaml': api });
  const d = desiredForHost(r, 'app-2');
  const issues = d.failed?.[0]?.issues.map(formatIssue) ?? [];
  assert.equal(issues.length, 2);
  assert.match(
    issues[0]!,
    /^berth\.yaml:2:23 defaults\.env_vars\.LB: host\.vars\.lb_server is not defined \(host\.vars has no key "lb_server"\).* \(service api is left as it runs\)$/,
  );
  assert.ok(charAt(berth, issues[0]!).startsWith('host.vars.lb_server'));
  assert.match(issues[1]!, /^services\/api\.yaml:2:22 command: /);
  assert.ok(charAt(api, issues[1]!).startsWith('host.vars.missing'));
  // app-1 has lb_server: only the command fails there.
  assert.deepEqual(
    desiredForHost(r, 'app-1').failed?.[0]?.issues.map((i) => i.path),
    ['command'],
  );
});

test('render: the problems of a held service come in file order, whichever field they are in', () => {
  const r = repo({
    'services/api.yaml': [
      'image: api',
      'command: serve --id "{{ host.vars.a }}"',
      'labels: { b: "{{ host.vars.b }}" }',
      'env_vars: { C: "{{ host.vars.c }}" }',
      '',
    ].join('\n'),
  });
  const failed = desiredForHost(r).failed ?? [];
  assert.deepEqual(
    failed[0]?.issues.map((i) => `${i.line}:${i.col} ${i.path}`),
    ['2:25 command', '3:18 labels.b', '4:20 env_vars.C'],
  );
});

test('validate: blocks in values, each problem at its file:line:col; secrets in a condition are secrets too', () => {
  const api = [
    'image: api',
    'env_vars:',
    `  PROXY: "{% if 'app_server' in host.groups %}{{ groups.proxy_server | map(attribute='adress') | first }}{% endif %}"`,
    "  MODE: '{% if host.vars.debug | default(false) %}debug{% elsif %}info{% endif %}'",
    '  OPEN: "{% for p in groups.proxy_server %}{{ p.name }}"',
    'labels:',
    `  tier: "{% if secrets.tier == 'gold' %}gold{% endif %}"`,
    '',
  ].join('\n');
  const issues = report({ 'services/api.yaml': api, 'inventory.yaml': INVENTORY });
  assert.deepEqual(
    issues.map((i) => [i.replace(/: .*/s, ''), charAt(api, i).slice(0, 8)]),
    [
      ['services/api.yaml:3:86 env_vars.PROXY', "'adress'"],
      ['services/api.yaml:4:59 env_vars.MODE', 'elsif %}'],
      ['services/api.yaml:5:10 env_vars.OPEN', '{% for p'],
      ['services/api.yaml:7:16 labels.tier', 'secrets.'],
    ],
  );
  assert.match(
    issues[0]!,
    /each item of groups.proxy_server has no key "adress" \(did you mean "address"\?\)/,
  );
  assert.match(issues[1]!, /unknown tag "elsif" \(did you mean "elif"\?\)/);
  assert.match(issues[2]!, /unclosed "\{% for p in groups.proxy_server %\}": add \{% endfor %\}/);
  assert.match(issues[3]!, /secrets can be used only in env_vars/);
  // A one-line command is split before each argument is rendered: a block there is refused.
  const web = 'image: web\ncommand: serve {% if host.vars.debug %}--debug{% endif %}\n';
  const [cmd, ...rest] = report({ 'services/web.yaml': web });
  assert.deepEqual(rest, []);
  assert.match(
    cmd!,
    /^services\/web\.yaml:2:10 command: a "\{% %\}" block cannot be used in a one-line command/,
  );
});

test('render: env values with blocks, per host; a secret in a condition is watched and shown redacted', () => {
  const r = repo({
    'inventory.yaml': INVENTORY,
    'services/api.yaml': [
      'image: api',
      'env_vars:',
      // A folded scalar with whitespace control: readable in the file, one line in the env.
      '  HTTPS_PROXY: >-',
      "    {%- if 'app_server' in host.groups -%}",
      '    {%- for p in groups.proxy_server -%}',
      '    http://{{ p.address }}:3128{% if not loop.last %},{% endif %}',
      '    {%- endfor -%}',
      '    {%- endif %}',
      `  LEVEL: "{% if secrets.tier == 'gold' %}high{% else %}low{% endif %}"`,
      '',
    ].join('\n'),
  });
  const opts = { secret: secrets({ tier: 'gold' }) };
  const app = rendered(desiredForHost(r, 'app-1', opts), 'api');
  assert.equal(app.env.HTTPS_PROXY, 'http://10.0.2.5:3128,http://10.0.2.6:3128');
  assert.equal(app.env.LEVEL, 'high');
  assert.deepEqual(app.secretEnv, { LEVEL: ['tier'] });
  assert.deepEqual(app.redactedEnv, { LEVEL: '<secret:tier>' });
  const proxy = rendered(desiredForHost(r, 'proxy-01', opts), 'api');
  assert.equal(proxy.env.HTTPS_PROXY, '');
});
