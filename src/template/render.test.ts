import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { InventoryHost } from '../model/service.js';
import { parseTemplate } from './parse.js';
import { renderRedacted, renderTemplate, type RenderContext, type RenderResult } from './render.js';

const PASSWORD = 'p/w@x:y%z?q#r s';

const app1: InventoryHost = {
  name: 'app-1',
  address: '10.0.1.11',
  groups: ['app_server'],
  vars: { lb_server: 'app1', motd: 'line one\nline two', nul: 'a\0b' },
};
const proxies: InventoryHost[] = [
  { name: 'proxy-01', address: '10.0.2.5', groups: ['proxy_server'], vars: {} },
  { name: 'proxy-02', address: '10.0.2.6', groups: ['proxy_server'], vars: {} },
];

function context(
  secrets: Record<string, string> = { db_password: PASSWORD },
): RenderContext & { asked: string[] } {
  const asked: string[] = [];
  return {
    host: app1,
    groups: { app_server: [app1], proxy_server: proxies },
    service: { name: 'api', image: 'registry/api:1.4.2' },
    env: 'staging',
    secret: (name) => {
      asked.push(name);
      return Object.hasOwn(secrets, name) ? secrets[name] : undefined;
    },
    asked,
  };
}

function run(text: string, ctx: RenderContext = context(), redact = false): RenderResult {
  const p = parseTemplate(text);
  if (!p.ok) assert.fail(`${text}: ${p.error.message}`);
  return (redact ? renderRedacted : renderTemplate)(p.template, ctx);
}

function ok(text: string, ctx?: RenderContext, redact = false): { value: string; secretsUsed: string[] } {
  const r = run(text, ctx, redact);
  if (!r.ok) assert.fail(`${text}: ${r.error.message} at ${r.error.offset}`);
  return r;
}

function fails(text: string, message: RegExp, at: string, ctx?: RenderContext): string {
  for (const redact of [false, true]) {
    const r = run(text, ctx, redact);
    assert.equal(r.ok, false, `${text} should fail`);
    if (r.ok) continue;
    assert.match(r.error.message, message);
    assert.equal(r.error.offset, text.indexOf(at), `offset of ${JSON.stringify(at)}`);
  }
  const r = run(text, ctx);
  return r.ok ? '' : r.error.message;
}

test('the reference case: a password with / @ : % ? # and space survives a URL parser', () => {
  const { value, secretsUsed } = ok(
    'postgres://app:{{ secrets.db_password | urlencode }}@{{ host.address }}:5432/app',
  );
  const url = new URL(value);
  assert.equal(decodeURIComponent(url.password), PASSWORD);
  assert.equal(url.username, 'app');
  assert.equal(url.hostname, '10.0.1.11');
  assert.equal(url.port, '5432');
  assert.equal(url.pathname, '/app');
  assert.deepEqual(secretsUsed, ['db_password']);
});

test('egress proxies: a group projected to its addresses and joined', () => {
  assert.equal(
    ok(`{{ groups.proxy_server | map(attribute='address') | join(',') }}`).value,
    '10.0.2.5,10.0.2.6',
  );
  assert.equal(
    ok(`http://{{ groups.proxy_server | map(attribute='address') | first }}:3128`).value,
    'http://10.0.2.5:3128',
  );
});

test('host, service and env values; numbers and booleans as YAML writes them', () => {
  assert.equal(ok('{{ host.vars.lb_server | default(host.name) }}').value, 'app1');
  assert.equal(ok('{{ service.name }}-{{ env }}').value, 'api-staging');
  assert.equal(ok(`{{ groups['proxy_server'][1].name }}`).value, 'proxy-02');
  assert.equal(ok('{{ groups.proxy_server[-1].name }}').value, 'proxy-02');
  const ctx = { ...context(), service: { replicas: 3, debug: false, ratio: 0.5 } };
  assert.equal(
    ok('{{ service.replicas }} {{ service.debug }} {{ service.ratio }}', ctx).value,
    '3 false 0.5',
  );
  assert.deepEqual(ok('no templates here'), { ok: true, value: 'no templates here', secretsUsed: [] });
});

test('redacted display shows <secret:NAME> for each expression that used a secret, never the value', () => {
  const text = 'postgres://app:{{ secrets.db_password | urlencode }}@{{ host.address }}:5432/app';
  const shown = ok(text, context(), true);
  assert.equal(shown.value, 'postgres://app:<secret:db_password>@10.0.1.11:5432/app');
  assert.deepEqual(shown.secretsUsed, ['db_password']);
  // Derived values are as secret as the secret: its length, its first character, its base64.
  for (const derived of [
    '{{ secrets.db_password | length }}',
    '{{ secrets.db_password | first }}',
    '{{ secrets.db_password | b64encode }}',
    `{{ host.vars.nope | default(secrets.db_password) }}`,
    '{{ secrets.db_password | upper | lower }}',
  ]) {
    const r = ok(derived, context(), true);
    assert.equal(r.value, '<secret:db_password>', derived);
  }
  const two = ok(
    '{{ secrets.a }}:{{ secrets.b | urlencode }}{{ secrets.a }}',
    context({ a: 'A1', b: 'B2' }),
    true,
  );
  assert.equal(two.value, '<secret:a>:<secret:b><secret:a>');
  assert.deepEqual(two.secretsUsed, ['a', 'b']);
});

test('redacted display works without any secret at hand, and names what it would need', () => {
  const { secret: _secret, ...noSecrets } = context();
  const r = ok('u:{{ secrets.db_password | urlencode }}@{{ host.name }}', noSecrets, true);
  assert.deepEqual(r, { ok: true, value: 'u:<secret:db_password>@app-1', secretsUsed: ['db_password'] });
  const clear = run('{{ secrets.db_password }}', noSecrets);
  assert.deepEqual(clear, {
    ok: false,
    error: { offset: 3, message: 'secret db_password is needed, but no secrets are available here' },
  });
});

test('a secret is looked up only when the value needs it', () => {
  const ctx = context();
  assert.deepEqual(ok('{{ host.name | default(secrets.db_password) }}', ctx).secretsUsed, []);
  assert.deepEqual(ctx.asked, []);
});

test('a missing secret is an error naming it; so is a failed lookup, in the lookup’s words', () => {
  fails('x={{ secrets.api_token }}', /^secret api_token is missing$/, 'secrets');
  fails('{{ secrets.api_token | default("fallback") }}', /secret api_token is missing/, 'secrets');
  const ctx = {
    ...context(),
    secret: () => ({ error: 'cannot decrypt secrets/api_token.age with /etc/berth/age.key' }),
  };
  fails('{{ secrets.api_token }}', /^secret api_token: cannot decrypt/, 'secrets', ctx);
});

test('a value that renders a line break or NUL is an error, and a secret one does not show its value', () => {
  fails('MOTD={{ host.vars.motd }}', /host.vars.motd renders a line break or NUL/, 'host');
  fails('{{ host.vars.nul | upper }}', /renders a line break or NUL/, 'host');
  for (const text of ['a\nb {{ host.name }}', '{{ host.name }}\r', 'x\0']) {
    const r = run(text);
    assert.equal(r.ok, false, JSON.stringify(text));
    if (!r.ok) assert.equal(r.error.offset, text.search(/[\n\r\0]/));
  }
  const secretCtx = context({ key: 'BEGIN\nTOPSECRETVALUE\nEND' });
  const message = fails(
    '{{ secrets.key }}',
    /the value of secret key holds a line break/,
    'secrets',
    secretCtx,
  );
  assert.doesNotMatch(message, /TOPSECRETVALUE/);
});

test('lists and maps need a filter to become text', () => {
  fails(
    '{{ groups.proxy_server }}',
    /groups.proxy_server is a list; use join to make it one string, e.g. \| join\(','\)/,
    'groups',
  );
  fails(`{{ groups.proxy_server | map('address') }}`, /is a list; use join/, 'groups');
  fails(
    '{{ host }}',
    /host is a map; pick one of its keys \(name, address, groups, vars\), as host.KEY/,
    'host',
  );
});

test('undefined values say which step found nothing', () => {
  fails(
    '{{ host.vars.nope }}',
    /host.vars.nope is not defined \(host.vars has no key "nope"\); add \| default/,
    'host',
  );
  fails('{{ host.vars.a.b }}', /host.vars.a.b is not defined \(host.vars has no key "a"\)/, 'host');
  fails(
    '{{ groups.web | map(attribute="address") | join }}',
    /groups.web is not defined \(groups has no key "web"\)/,
    'groups',
  );
  fails(
    '{{ groups.proxy_server[5].name }}',
    /groups.proxy_server has 2 item\(s\), so there is no \[5\]/,
    'groups',
  );
  fails('{{ host.name.first }}', /host.name is a string, which has no keys/, 'host');
  fails('{{ host.vars.empty }}', /is not defined/, 'host');
  const nullCtx = { ...context(), service: { note: null } };
  fails('{{ service.note }}', /service.note is null \(an empty value\)/, 'service', nullCtx);
  fails('{{ service.note | upper }}', /service.note is null/, 'service', nullCtx);
});

test('only the data’s own keys are reachable: no prototype, no methods', () => {
  for (const key of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    fails(`{{ host.${key} }}`, /is not defined \(host has no key/, 'host');
    fails(`{{ host.vars['${key}'] }}`, /is not defined/, 'host');
  }
  fails('{{ host.name.length }}', /host.name is a string, which has no keys/, 'host');
  fails('{{ host.groups.length }}', /host.groups is a list: index it with a number/, 'host');
  const fn = { ...context(), service: { run: () => 'ran' } };
  fails('{{ service.run }}', /service.run is a value templates cannot use/, 'service', fn);
});

test('unknown names and filters fail at render as well as at check', () => {
  fails('{{ inventory_hostname }}', /unknown name "inventory_hostname" \(in berth: host.name\)/, 'inventory');
  fails('{{ hots.name }}', /unknown name "hots" \(did you mean "host"\?\)/, 'hots');
  fails('{{ host.name | uper }}', /unknown filter "uper" \(did you mean "upper"\?\)/, 'uper');
  fails('{{ host.name | upper(1) }}', /upper takes no arguments, got 1/, '1');
  fails('{{ secrets }}', /secrets must name one secret, as secrets.NAME/, 'secrets');
  fails('{{ secrets | length }}', /secrets must name one secret/, 'secrets');
});

test('errors from an expression that used a secret never quote the value', () => {
  const ctx = context({ tok: 'CANARY-7f3e' });
  const messages = [
    fails('{{ secrets.tok | join }}', /join takes a list, but secrets.tok is a string/, 'join', ctx),
    fails('{{ secrets.tok.x }}', /secrets.tok is a string, which has no keys/, 'secrets', ctx),
    fails('{{ secrets.tok | map("x") }}', /map takes a list/, 'map', ctx),
    fails(
      '{{ secrets.tok | first | first | upper | b64encode | length | first }}',
      /first takes a list or a string, but .* is a number/,
      'first }}',
      ctx,
    ),
  ];
  for (const m of messages) assert.doesNotMatch(m, /CANARY/);
});
