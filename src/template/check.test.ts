import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkTemplate, templateSecrets, type TemplateSchema } from './check.js';
import { parseTemplate } from './parse.js';

const schema: TemplateSchema = {
  groups: ['app_server', 'proxy_server'],
  serviceFields: ['name', 'image', 'gitCommit', 'buildNumber'],
};

function template(text: string) {
  const p = parseTemplate(text);
  if (!p.ok) assert.fail(`${text}: ${p.error.message}`);
  return p.template;
}

/** Each issue as [the text at its offset, its message], to read which token it points at. */
function issues(text: string, s: TemplateSchema = schema): Array<[string, string]> {
  return checkTemplate(template(text), s).map((i) => [text.slice(i.offset, i.offset + 6), i.message]);
}

function one(text: string, at: string, message: RegExp, s: TemplateSchema = schema): void {
  const found = checkTemplate(template(text), s);
  assert.equal(found.length, 1, JSON.stringify(found));
  assert.match(found[0]!.message, message);
  assert.equal(found[0]!.offset, text.indexOf(at), `should point at ${JSON.stringify(at)}`);
}

test('the templates berth users write check clean', () => {
  for (const text of [
    'postgres://app:{{ secrets.db_password | urlencode }}@{{ host.address }}:5432/app',
    `{{ groups.proxy_server | map(attribute='address') | join(',') }}`,
    `{{ groups.proxy_server | map('name') | map('upper') | join(' ') }}`,
    '{{ host.vars.lb_server | default(host.name) }}',
    `{{ host.vars.anything.deep[0] | default('x') }}`,
    '{{ service.name }}-{{ env | upper }}-{{ service.buildNumber }}',
    `{{ (groups.app_server | first).address }}`,
    `{{ groups['proxy_server'][0].vars.port | default(3128) }}`,
    `{{ host.groups | join(',') }}`,
    `{{ groups.app_server | length }}`,
    'no template at all',
  ]) {
    assert.deepEqual(issues(text), [], text);
  }
});

test('unknown root names, with a suggestion or the Ansible equivalent', () => {
  one(
    '{{ hots.name }}',
    'hots',
    /^unknown name "hots" \(did you mean "host"\?\); a template can use host, groups, service, env, secrets$/,
  );
  one('{{ inventory_hostname }}', 'inventory', /\(in berth: host.name\)/);
  one('{{ hostvars["x"].y }}', 'hostvars', /in berth: host.vars \(this host\) or groups.NAME/);
  one('{{ none }}', 'none', /unknown name "none"/);
});

test('unknown filters, with a suggestion, and the rest of the expression still checked', () => {
  one(
    '{{ host.name | uper }}',
    'uper',
    /^unknown filter "uper" \(did you mean "upper"\?\); filters are urlencode, default/,
  );
  assert.deepEqual(
    issues('{{ host.name | regex_replace("a", hots.name) }}').map(([at]) => at),
    ['regex_', 'hots.n'],
  );
});

test('wrong argument counts and names', () => {
  one('{{ host.name | upper(1) }}', '1', /^upper takes no arguments, got 1: upper$/);
  one(
    `{{ host.groups | join(',', ';') }}`,
    "';'",
    /join takes at most 1 argument, got 2: join\(separator=''\)/,
  );
  one('{{ host.vars.x | default }}', 'default', /default needs its argument "value": default\(value\)/);
  one('{{ host.vars.x | default() }}', 'default', /default needs its argument "value"/);
  one(
    `{{ groups.app_server | map(attr='name') }}`,
    'attr',
    /map has no argument "attr"; it takes attribute, default/,
  );
  one(
    `{{ groups.app_server | map(attribute='name', 'x') }}`,
    "'x'",
    /positional argument cannot follow a keyword/,
  );
  one(`{{ groups.app_server | map(attribute='a', attribute='b') }}`, "attribute='b'", /given twice/);
  one('{{ groups.app_server | map }}', 'map', /map needs the key to take from each item/);
  one(`{{ groups.app_server | map('upper', 1) | join }}`, '1', /upper takes at most 0 argument/);
  one(`{{ groups.app_server | map('default') | join }}`, "'default'", /default needs arguments/);
  one(`{{ groups.app_server | map('nope', 1) | join }}`, "'nope'", /no filter "nope"/);
});

test('groups.X for a group the inventory does not have, when the caller knows the groups', () => {
  one(
    '{{ groups.proxy_servers | map(attribute="address") | join }}',
    'proxy_servers',
    /^unknown group "proxy_servers" \(did you mean "proxy_server"\?\); groups are app_server, proxy_server$/,
  );
  one(`{{ groups['db'] | length }}`, "'db'", /unknown group "db"/);
  one('{{ groups.db | length }}', 'db', /there are no groups/, { groups: [] });
  assert.deepEqual(issues('{{ groups.db | length }}', {}), [], 'not checked without the group names');
});

test("a host's fields and a service's fields are checked; host vars are the inventory's business", () => {
  one(
    '{{ host.adress }}',
    'adress',
    /^host has no key "adress" \(did you mean "address"\?\); a host has name, address, groups and vars/,
  );
  one('{{ host.lb_server }}', 'lb_server', /its inventory values are under vars/);
  one(
    `{{ groups.app_server | map(attribute='adress') | join }}`,
    "'adress'",
    /each item of groups.app_server has no key "adress" \(did you mean "address"\?\)/,
  );
  assert.deepEqual(issues(`{{ groups.app_server | map(attribute='vars.port') | join }}`), []);
  assert.deepEqual(issues('{{ host.vars.whatever.it.holds }}'), []);
});

test('service fields only when the caller lists them', () => {
  one(
    '{{ service.imgae }}',
    'imgae',
    /cannot read service.imgae \(did you mean "image"\?\); it can read service.name, service.image/,
  );
  assert.deepEqual(issues('{{ service.anything }}', {}), []);
});

test('kinds that cannot work are caught before any host is at hand', () => {
  one('{{ groups.app_server }}', 'groups', /^groups.app_server is a list; use join to make it one string/);
  one('{{ host }}', 'host', /host is a map; pick one of its keys, as host.KEY/);
  one('{{ host.vars }}', 'host', /host.vars is a map/);
  one(`{{ groups.app_server | map(attribute='address') }}`, 'groups', /is a list; use join/);
  one(
    '{{ host.groups | upper }}',
    'upper',
    /upper takes a string, number or boolean, but host.groups is a list; join it first/,
  );
  one('{{ host.name | join }}', 'join', /join takes a list, but host.name is a string/);
  one('{{ env.name }}', 'name', /env is a string, which has no keys/);
  one('{{ host.groups.first }}', 'first', /host.groups is a list: index it with a number/);
  one(
    `{{ groups.app_server | map(attribute='name') | map('b64encode') | first | join }}`,
    'join',
    /join takes a list, but .* is a string/,
  );
  one(
    `{{ groups.app_server | map('name') | map('join') | join }}`,
    "'join'",
    /join takes a list, but each item is a string/,
  );
});

test('secrets: named one at a time, with names that are safe file names', () => {
  one('{{ secrets }}', 'secrets', /secrets must name one secret, as secrets.NAME/);
  one('{{ secrets | length }}', 'secrets', /secrets must name one secret/);
  one(`{{ secrets['../etc/shadow'] }}`, "'../", /secret name "..\/etc\/shadow" is not a safe file name/);
  one('{{ secrets[0] }}', '0', /a secret is named by a string/);
  one('{{ secrets.db_password | join }}', 'join', /join takes a list, but secrets.db_password is a string/);
  assert.deepEqual(
    templateSecrets(
      template(`{{ secrets.b }}{{ host.x | default(secrets.a | upper) }}{{ secrets['c.d'] }}{{ secrets.b }}`),
    ),
    ['a', 'b', 'c.d'],
  );
  assert.deepEqual(templateSecrets(template('{{ host.name }}')), []);
});

test('every problem is reported, in the order of the text', () => {
  const text = '{{ hots.name | uper }} and {{ groups.nope | join(1, 2) }}';
  assert.deepEqual(
    checkTemplate(template(text), schema).map((i) => i.offset),
    [text.indexOf('hots'), text.indexOf('uper'), text.indexOf('nope'), text.indexOf('2')],
  );
});
