import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { InventoryHost } from '../model/service.js';
import { FILTERS, urlencode } from './filters.js';
import { parseTemplate } from './parse.js';
import { renderTemplate, type RenderContext } from './render.js';

const host = (
  name: string,
  address: string,
  groups: string[],
  vars: Record<string, unknown> = {},
): InventoryHost => ({
  name,
  address,
  groups,
  vars,
});

const app1 = host('app-1', '10.0.1.11', ['app_server', 'web'], {
  lb_server: 'app1',
  empty: null,
  port: 8080,
});
const app2 = host('app-2', '10.0.1.12', ['app_server']);

const ctx: RenderContext = {
  host: app1,
  groups: { app_server: [app1, app2], empty_group: [] },
  service: { name: 'api', buildNumber: '123', tags: ['a', 'b'] },
  env: 'staging',
  secret: (name) => (name === 'token' ? 'Sécret' : undefined),
};

function render(text: string): string {
  const p = parseTemplate(text);
  if (!p.ok) assert.fail(`${text}: ${p.error.message}`);
  const r = renderTemplate(p.template, ctx);
  if (!r.ok) assert.fail(`${text}: ${r.error.message}`);
  return r.value;
}

function fails(text: string, message: RegExp): void {
  const p = parseTemplate(text);
  if (!p.ok) assert.fail(`${text}: ${p.error.message}`);
  const r = renderTemplate(p.template, ctx);
  assert.equal(r.ok, false, `${text} should fail`);
  if (!r.ok) assert.match(r.error.message, message);
}

test('urlencode encodes every reserved character, space and %, and nothing unreserved', () => {
  for (const c of "/?#[]@:!$&'()*+,;= %") {
    const hex = c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0');
    assert.equal(urlencode(c), `%${hex}`, JSON.stringify(c));
  }
  const unreserved = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~';
  assert.equal(urlencode(unreserved), unreserved);
  assert.equal(urlencode('"<>\\^`{|}'), '%22%3C%3E%5C%5E%60%7B%7C%7D');
  assert.equal(urlencode('é'), '%C3%A9');
  assert.equal(urlencode('🔑'), '%F0%9F%94%91');
  assert.equal(render('{{ host.vars.port | urlencode }}'), '8080');
  assert.equal(render('{{ secrets.token | urlencode }}'), 'S%C3%A9cret');
  // Whatever the input, decoding gives it back.
  const nasty = "p/a@s:s%w?o#r d!$&'()*+,;=[]é";
  assert.equal(decodeURIComponent(urlencode(nasty)), nasty);
});

test('default replaces a missing or null value, keeps an empty string, and is evaluated only when needed', () => {
  assert.equal(render(`{{ host.vars.nope | default('x') }}`), 'x');
  assert.equal(render(`{{ host.vars.empty | default('x') }}`), 'x');
  assert.equal(render(`{{ host.vars.a.b.c | default('deep') }}`), 'deep');
  assert.equal(render(`{{ host.vars.lb_server | default(host.name) }}`), 'app1');
  assert.equal(render(`{{ groups.nope | default(host.name) }}`), 'app-1');
  assert.equal(render(`{{ '' | default('x') }}`), '');
  assert.equal(render('{{ host.vars.nope | default(1) }}'), '1');
  const p = parseTemplate('{{ host.name | default(secrets.token) }}');
  assert.ok(p.ok);
  const r = renderTemplate(p.template, ctx);
  assert.deepEqual(r, { ok: true, value: 'app-1', secretsUsed: [] });
  fails('{{ host.vars.nope | default(host.vars.also_nope) }}', /host.vars.nope \| default.* is not defined/);
});

test('join joins strings and numbers, with no separator by default', () => {
  assert.equal(render(`{{ service.tags | join(', ') }}`), 'a, b');
  assert.equal(render('{{ service.tags | join }}'), 'ab');
  assert.equal(render('{{ host.groups | join(separator="|") }}'), 'app_server|web');
  assert.equal(
    render(`{{ groups.app_server | map(attribute='vars.port', default=80) | join('-') }}`),
    '8080-80',
  );
  assert.equal(render(`{{ groups.empty_group | map(attribute='address') | join(',') }}`), '');
  fails(
    '{{ groups.app_server | join(",") }}',
    /item 1 of groups.app_server is a map; pick one of its keys first/,
  );
  fails(`{{ groups.app_server | map(attribute='vars.lb_server') | join }}`, /item 2 of .* is not defined/);
  fails('{{ host.name | join }}', /join takes a list, but host.name is a string/);
  fails('{{ host.groups | join(host.groups) }}', /separator must be a string, not a list/);
});

test("map takes each item's key, by attribute=, by name, or through a filter", () => {
  assert.equal(
    render(`{{ groups.app_server | map(attribute='address') | join(',') }}`),
    '10.0.1.11,10.0.1.12',
  );
  assert.equal(render(`{{ groups.app_server | map('name') | join(' ') }}`), 'app-1 app-2');
  assert.equal(render(`{{ groups.app_server | map('name') | map('upper') | join(' ') }}`), 'APP-1 APP-2');
  assert.equal(
    render(`{{ groups.app_server | map(attribute='vars.lb_server', default='none') | join(',') }}`),
    'app1,none',
  );
  assert.equal(
    render(`{{ groups.app_server | map('groups') | map('join', '+') | join(',') }}`),
    'app_server+web,app_server',
  );
  assert.equal(
    render(`{{ groups.app_server | map(attribute='groups.0') | join(',') }}`),
    'app_server,app_server',
  );
  fails(`{{ groups.app_server | map('nope', 1) }}`, /no filter "nope" to pass the arguments to/);
  fails(`{{ groups.app_server | map() }}`, /map needs the key to take from each item/);
  fails(`{{ groups.app_server | map('name', attribute='name') }}`, /not both/);
  fails(`{{ host.name | map('upper') }}`, /map takes a list, but host.name is a string/);
  fails(`{{ groups.app_server | map('default') | join }}`, /default needs its argument "value"/);
});

test('lower, upper, trim, b64encode and string work on text, numbers and booleans', () => {
  assert.equal(render(`{{ 'MiXeD' | lower }}`), 'mixed');
  assert.equal(render(`{{ host.name | upper }}`), 'APP-1');
  assert.equal(render(`{{ '  padded \t' | trim }}`), 'padded');
  assert.equal(render(`{{ 'user:pass' | b64encode }}`), 'dXNlcjpwYXNz');
  assert.equal(render(`{{ secrets.token | b64encode }}`), Buffer.from('Sécret').toString('base64'));
  assert.equal(render('{{ host.vars.port | string }}'), '8080');
  assert.equal(render('{{ 1.5 | string }}'), '1.5');
  fails(
    '{{ host.groups | upper }}',
    /upper takes a string, number or boolean, but host.groups is a list; join it first/,
  );
  fails('{{ host.groups | string }}', /join it first/);
  fails('{{ host | b64encode }}', /b64encode takes a string, number or boolean, but host is a map/);
});

test('first, last and length', () => {
  assert.equal(render('{{ (groups.app_server | first).name }}'), 'app-1');
  assert.equal(render('{{ (groups.app_server | last).address }}'), '10.0.1.12');
  assert.equal(render('{{ host.name | first }}{{ host.name | last }}'), 'a1');
  assert.equal(render('{{ groups.app_server | length }}'), '2');
  assert.equal(render('{{ secrets.token | length }}'), '6');
  assert.equal(render('{{ host.vars | length }}'), '3');
  assert.equal(render(`{{ groups.empty_group | first | default('none') }}`), 'none');
  fails('{{ groups.empty_group | first }}', /is not defined \(groups.empty_group is empty\)/);
  fails('{{ host.vars.port | first }}', /first takes a list or a string, but host.vars.port is a number/);
  fails('{{ host.vars.nope | length }}', /host.vars.nope is not defined/);
});

test('the filter registry and the README list the same filters', async () => {
  const { readFile } = await import('node:fs/promises');
  const readme = await readFile(new URL('./README.md', import.meta.url), 'utf8');
  for (const name of FILTERS.keys()) {
    assert.match(readme, new RegExp(`^\\| [^|]*\`${name}[\`(]`, 'm'), `the README's table lacks ${name}`);
  }
});
