import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { InventoryHost } from '../model/service.js';
import { positionOf } from './ast.js';
import { checkTemplate, templateSecrets, type TemplateSchema } from './check.js';
import { parseTemplate } from './parse.js';
import {
  MAX_ITERATIONS,
  renderRedacted,
  renderTemplate,
  type RenderContext,
  type RenderOptions,
  type RenderResult,
} from './render.js';

// Blocks ({% if %}, {% for %}, {% raw %}), operators, literals and whitespace control. The
// template module is pure, so these tests run it directly on plain data.

const host = (name: string, address: string, group: string, vars: Record<string, unknown> = {}) =>
  ({ name, address, groups: [group], vars }) satisfies InventoryHost;

const app1 = host('app-1', '10.0.1.11', 'app_server', { lb_server: 'app1', tier: 'gold', port: 8080 });
const app2 = host('app-2', '10.0.1.12', 'app_server');
const proxy1 = host('proxy-01', '10.0.2.5', 'proxy_server');
const proxy2 = host('proxy-02', '10.0.2.6', 'proxy_server');

function context(
  opts: { host?: InventoryHost; proxies?: InventoryHost[]; secrets?: Record<string, string> } = {},
): RenderContext & { asked: string[] } {
  const asked: string[] = [];
  const secrets = opts.secrets ?? {};
  return {
    host: opts.host ?? app1,
    groups: { app_server: [app1, app2], proxy_server: opts.proxies ?? [proxy1, proxy2], empty: [] },
    service: { name: 'api', note: null },
    env: 'staging',
    secret: (name) => {
      asked.push(name);
      return Object.hasOwn(secrets, name) ? secrets[name] : undefined;
    },
    asked,
  };
}

function template(text: string) {
  const p = parseTemplate(text);
  if (!p.ok) assert.fail(`${JSON.stringify(text)}: ${p.error.message} at ${p.error.offset}`);
  return p.template;
}

const FILE: RenderOptions = { multiline: true };

function run(
  text: string,
  ctx: RenderContext = context(),
  opts: RenderOptions = FILE,
  redact = false,
): RenderResult {
  return (redact ? renderRedacted : renderTemplate)(template(text), ctx, opts);
}

/** The rendered text, with the check clean first: each golden template is also valid at validate time. */
function out(text: string, ctx: RenderContext = context(), opts: RenderOptions = FILE): string {
  assert.deepEqual(checkTemplate(template(text), SCHEMA), [], `check ${JSON.stringify(text)}`);
  const r = run(text, ctx, opts);
  if (!r.ok) assert.fail(`${JSON.stringify(text)}: ${r.error.message} at ${r.error.offset}`);
  return r.value;
}

const SCHEMA: TemplateSchema = {
  groups: ['app_server', 'proxy_server', 'empty'],
  serviceFields: ['name', 'note'],
};

/** `at` as a marker: the offset of its first (or given) occurrence in `text`. */
function offsetOf(text: string, at: string, nth = 0): number {
  let i = -1;
  for (let n = 0; n <= nth; n++) i = text.indexOf(at, i + 1);
  assert.ok(i >= 0, `${JSON.stringify(at)} is in the text`);
  return i;
}

// ---------------------------------------------------------------------------------------------
// Golden rendering, construct by construct

test('if / elif / else: the first branch whose condition holds, else the else', () => {
  const t = `{% if host.vars.tier == 'gold' %}G{% elif host.vars.tier == 'silver' %}S{% else %}B{% endif %}`;
  const withTier = (tier: string) => context({ host: host('h', '10.0.0.1', 'app_server', { tier }) });
  assert.equal(out(t, withTier('gold')), 'G');
  assert.equal(out(t, withTier('silver')), 'S');
  assert.equal(out(t, withTier('bronze')), 'B');
  assert.equal(out(`a{% if false %}b{% endif %}c`), 'ac');
  assert.equal(out(`{% if false %}x{% elif true %}y{% elif true %}z{% endif %}`), 'y');
});

test("conditions use Python's truth: empty lists, maps, strings, 0, false and null are false", () => {
  const cases: Array<[string, 'y' | 'n']> = [
    ['host.groups', 'y'],
    ['groups.empty', 'n'],
    ['host.vars', 'y'],
    ["''", 'n'],
    ["'a'", 'y'],
    ['0', 'n'],
    ['1', 'y'],
    ['true', 'y'],
    ['false', 'n'],
    ['True', 'y'],
    ['service.note', 'n'],
  ];
  for (const [cond, want] of cases) {
    assert.equal(out(`{% if ${cond} %}y{% else %}n{% endif %}`), want, cond);
  }
});

test('comparisons, by value and without conversion', () => {
  const cases: Array<[string, string]> = [
    ['1 < 2', 'true'],
    ['2 <= 2', 'true'],
    ['3 > 4', 'false'],
    ['-1 >= 0', 'false'],
    ["'apple' < 'banana'", 'true'],
    ["host.name == 'app-1'", 'true'],
    ["host.name != 'app-1'", 'false'],
    ["host.groups == ['app_server']", 'true'],
    ['host.vars.port == 8080', 'true'],
    ['host.vars.port > 1024', 'true'],
    ['groups.proxy_server | length >= 2', 'true'],
    ["[1, 'a', true] == [1, 'a', true]", 'true'],
    ['host == groups.app_server | first', 'true'],
  ];
  for (const [expr, want] of cases) assert.equal(out(`{{ ${expr} }}`), want, expr);
  // Different kinds are never equal: no "1" == 1 as in a shell.
  assert.deepEqual(run(`{{ host.vars.port == '8080' }}`), { ok: true, value: 'false', secretsUsed: [] });
});

test('in and not in: an item of a list, a part of a string, a key of a map', () => {
  const cases: Array<[string, string]> = [
    ["'app_server' in host.groups", 'true'],
    ["'web' not in host.groups", 'true'],
    ["'pp-' in host.name", 'true'],
    ["'lb_server' in host.vars", 'true'],
    ["'proxy_server' in groups", 'true'],
    ["host.name in groups.app_server | map(attribute='name')", 'true'],
    ["host.name in groups['proxy_server'] | map(attribute='name')", 'false'],
    ["host in groups['app_server']", 'true'],
    ['host not in groups.proxy_server', 'true'],
    ["'b' in ['a', 'b']", 'true'],
    ['2 in [1, 2]', 'true'],
  ];
  for (const [expr, want] of cases) assert.equal(out(`{{ ${expr} }}`), want, expr);
  // No conversion: the check says it can never hold; rendering agrees.
  assert.deepEqual(run(`{{ '2' in [1, 2] }}`), { ok: true, value: 'false', secretsUsed: [] });
});

test('and, or, not and parentheses: Jinja precedence, the deciding operand as the value', () => {
  const cases: Array<[string, string]> = [
    ['not true', 'false'],
    ['true and false', 'false'],
    ['true or false and false', 'true'],
    ['(true or false) and false', 'false'],
    ['not false and not false', 'true'],
    ["not 'a' in ['a']", 'false'],
    ["'a' or 'b'", 'a'],
    ["'' or 'b'", 'b'],
    ["0 and 'x'", '0'],
    ['host.vars.lb_server and host.vars.lb_server | upper', 'APP1'],
    // The right side is read only when it decides, so a missing value there is no error.
    ['false and host.vars.nope', 'false'],
    ['true or host.vars.nope', 'true'],
  ];
  for (const [expr, want] of cases) assert.equal(out(`{{ ${expr} }}`), want, expr);
});

test('literals: strings, numbers, booleans and lists', () => {
  assert.equal(out(`{{ 'a' }}{{ "b" }}{{ 3 }}{{ 1.5 }}{{ -2 }}{{ true }}{{ false }}`), 'ab31.5-2truefalse');
  assert.equal(out(`{{ ['x', 'y'] | join('+') }}{{ [] | length }}{{ [1, 2,] | length }}`), 'x+y02');
  assert.equal(out(`{{ [host.name, host.address] | join(' ') }}`), 'app-1 10.0.1.11');
});

test('for: items in order, with loop.index, index0, revindex, revindex0, first, last and length', () => {
  assert.equal(
    out(
      `{% for p in groups.proxy_server %}{{ loop.index }}/{{ loop.length }}:{{ p.name }}{% if not loop.last %},{% endif %}{% endfor %}`,
    ),
    '1/2:proxy-01,2/2:proxy-02',
  );
  assert.equal(
    out(
      `{% for x in ['a', 'b', 'c'] %}[{{ x }}{{ loop.index0 }} {{ loop.first }} {{ loop.last }} {{ loop.revindex }}{{ loop.revindex0 }}]{% endfor %}`,
    ),
    '[a0 true false 32][b1 false false 21][c2 false true 10]',
  );
});

test('for: else when the list is empty, nested loops, and loop is the innermost', () => {
  assert.equal(out(`{% for p in groups.empty %}{{ p.name }}{% else %}none{% endfor %}`), 'none');
  assert.equal(
    out(`{% for p in groups.proxy_server %}{{ p.name }} {% else %}none{% endfor %}`),
    'proxy-01 proxy-02 ',
  );
  assert.equal(
    out(
      `{% for a in [1, 2] %}{% for b in ['x', 'y'] %}{{ a }}{{ b }}{{ loop.index }} {% endfor %}{{ loop.index }};{% endfor %}`,
    ),
    '1x1 1y2 1;2x1 2y2 2;',
  );
  assert.equal(
    out(
      `{% for g in host.groups %}{% for h in groups.app_server %}{{ g }}:{{ h.name }} {% endfor %}{% endfor %}`,
    ),
    'app_server:app-1 app_server:app-2 ',
  );
});

test('a loop variable shadows a name inside its loop only, as in Jinja', () => {
  assert.equal(
    out(`{% for host in groups.proxy_server %}{{ host.name }} {% endfor %}{{ host.name }}`),
    'proxy-01 proxy-02 app-1',
  );
});

test('raw: text kept as written, "{{" and "{%" included (a Prometheus rule, say)', () => {
  assert.equal(
    out(`summary: {% raw %}{{ $labels.instance }} {% if %} is down{% endraw %} ({{ env }})`),
    'summary: {{ $labels.instance }} {% if %} is down (staging)',
  );
  assert.equal(out(`{% raw -%}\n  {{ x }}\n{%- endraw %}!`), '{{ x }}!');
  assert.equal(out(`{% raw %}\n{{ x }}\n{% endraw %}\n!`), '{{ x }}\n!');
});

// ---------------------------------------------------------------------------------------------
// Whitespace control

test('whitespace: the newline after a {% %} tag goes (trim_blocks), a {{ }} keeps its own', () => {
  assert.equal(out('a\n{% if true %}\nb\n{% endif %}\nc\n'), 'a\nb\nc\n');
  assert.equal(
    out('{% for p in groups.proxy_server %}\n{{ p.name }}\n{% endfor %}\n'),
    'proxy-01\nproxy-02\n',
  );
  assert.equal(out('{{ host.name }}\nnext'), 'app-1\nnext');
  // Windows line ends: the \r\n after a tag goes as one, the others stay.
  assert.equal(out('{% if true %}\r\nb\r\n{% endif %}\r\n'), 'b\r\n');
  // The text's own last newline stays (Jinja drops it by default, Ansible keeps it).
  assert.equal(out('x\n'), 'x\n');
  assert.equal(out('x\n{% if false %}\ny\n{% endif %}\n'), 'x\n');
});

test('whitespace: "+%}" keeps the newline; indentation before a tag stays (no lstrip_blocks)', () => {
  assert.equal(out('{% if true +%}\nb\n{% endif %}'), '\nb\n');
  assert.equal(out('  {% if true %}\n  b\n  {% endif %}\nc'), '    b\n  c');
  assert.equal(out('  {% if true %}{% endif %}x'), '  x');
  // "{%+" would turn lstrip_blocks off: it is already off, so it changes nothing.
  assert.equal(out('  {%+ if true %}x{% endif %}'), '  x');
});

test('whitespace: "-" strips every space, tab and newline on its side, as in Jinja', () => {
  assert.equal(out('a  \n  {%- if true -%}  \n  b  {%- endif %}'), 'ab');
  assert.equal(out('x = [ {{- host.name -}} ]'), 'x = [app-1]');
  assert.equal(out('{% for x in [1, 2, 3] -%}\n    {{ x }}\n{%- endfor %}'), '123');
  assert.equal(out('{{- host.name }}'), 'app-1');
  assert.equal(out('a\n\n{{- "" -}}\n\nb'), 'ab');
  assert.equal(out('{%- if true -%}{%- endif -%}'), '');
  // "{{-1 }}" is "strip, then 1", in Jinja too.
  assert.equal(out('a {{-1 }}'), 'a1');
});

test('whitespace control makes a readable multi-line template a one-line env value', () => {
  const text = [
    '{%- for p in groups.proxy_server -%}',
    '  http://{{ p.address }}:3128',
    '  {%- if not loop.last %},{% endif %}',
    '{% endfor -%}',
  ].join('\n');
  assert.equal(out(text, context(), {}), 'http://10.0.2.5:3128,http://10.0.2.6:3128');
});

// ---------------------------------------------------------------------------------------------
// The reference design's squid example

// The reference's own text uses Ansible's names; in berth the host is `host`, and groups hold
// hosts (maps), so the names are projected, or the group is asked of the host.
const SQUID_ANSIBLE = `{% if inventory_hostname in groups['app_server'] %}
{% for host in proxy_ips %}
cache_peer {{ host }} parent 3128 0 round-robin
{% endfor %}
never_direct allow all
{% endif %}
`;

const SQUID_BERTH = `{% if host.name in groups['app_server'] | map(attribute='name') %}
{% for address in groups.proxy_server | map(attribute='address') %}
cache_peer {{ address }} parent 3128 0 round-robin
{% endfor %}
never_direct allow all
{% endif %}
`;

// The same, written as berth users would: the host's own groups, and each proxy as a host.
const SQUID_IDIOM = `{% if 'app_server' in host.groups %}
{% for proxy in groups.proxy_server %}
cache_peer {{ proxy.address }} parent 3128 0 round-robin
{% endfor %}
never_direct allow all
{% endif %}
`;

test('squid: each app host lists every proxy, a proxy host gets none of it', () => {
  const forApp = [
    'cache_peer 10.0.2.5 parent 3128 0 round-robin',
    'cache_peer 10.0.2.6 parent 3128 0 round-robin',
    'never_direct allow all',
    '',
  ].join('\n');
  for (const text of [SQUID_BERTH, SQUID_IDIOM]) {
    for (const h of [app1, app2]) assert.equal(out(text, context({ host: h })), forApp, h.name);
    for (const h of [proxy1, proxy2]) assert.equal(out(text, context({ host: h })), '', h.name);
  }
});

test('squid: a third proxy changes the app hosts’ files only', () => {
  const proxy3 = host('proxy-03', '10.0.2.7', 'proxy_server');
  const three = [proxy1, proxy2, proxy3];
  for (const text of [SQUID_BERTH, SQUID_IDIOM]) {
    const before = (h: InventoryHost) => out(text, context({ host: h }));
    const after = (h: InventoryHost) => out(text, context({ host: h, proxies: three }));
    assert.equal(
      after(app1),
      before(app1).replace('never_direct', 'cache_peer 10.0.2.7 parent 3128 0 round-robin\nnever_direct'),
    );
    assert.equal(after(app2), after(app1));
    for (const h of [proxy1, proxy2]) assert.equal(after(h), before(h));
    assert.equal(after(proxy3), '');
  }
});

test("squid: the Ansible text as it is gets berth's names for what it means, at each place", () => {
  const issues = checkTemplate(template(SQUID_ANSIBLE), SCHEMA).map((i) => ({
    ...positionOf(SQUID_ANSIBLE, i.offset),
    message: i.message,
  }));
  assert.deepEqual(
    issues.map((i) => [i.line, i.col]),
    [
      [1, 7],
      [2, 16],
    ],
  );
  assert.match(issues[0]!.message, /^unknown name "inventory_hostname" \(in berth: host.name\)/);
  assert.match(
    issues[1]!.message,
    /^unknown name "proxy_ips" \(a host or group var is host.vars.proxy_ips\)/,
  );
  // After the rename, the Ansible habit of groups holding names is caught too.
  const renamed = SQUID_ANSIBLE.replace('inventory_hostname', 'host.name').replace(
    'proxy_ips',
    "groups.proxy_server | map(attribute='address')",
  );
  const [trap, ...rest] = checkTemplate(template(renamed), SCHEMA);
  assert.deepEqual(rest, []);
  assert.deepEqual(positionOf(renamed, trap!.offset), { line: 1, col: 7 });
  assert.equal(
    trap!.message,
    `host.name is a string and each item of groups['app_server'] is a host (a map), so "in" is always false; ` +
      `compare names: host.name in groups['app_server'] | map(attribute='name'), or test a group: 'app_server' in host.groups`,
  );
});

// ---------------------------------------------------------------------------------------------
// Bad input: parse errors, each at its place

const parseErrors: Array<[string, string, RegExp, number?]> = [
  // [template, the text the error points at, message, which occurrence of it]
  ['a {% if host.name %}b', '{%', /^unclosed "\{% if host.name %\}": add \{% endif %\}$/],
  [
    '{% for p in groups.x %}{% if true %}{% endif %}',
    '{%',
    /^unclosed "\{% for p in groups.x %\}": add \{% endfor %\}$/,
  ],
  [
    '{% if a %}{% for b in c %}{% endif %}',
    '{% endif',
    /^\{% endif %\} cannot close "\{% for b in c %\}": expected \{% endfor %\}$/,
  ],
  [
    '{% if a %}{% endfor %}',
    '{% endfor',
    /^\{% endfor %\} cannot close "\{% if a %\}": expected \{% endif %\}$/,
  ],
  ['x{% endif %}', '{%', /^stray \{% endif %\}: there is no open \{% if %\}$/],
  ['{% if a %}{% endif %}{% endfor %}', '{% endfor', /^stray \{% endfor %\}: there is no open \{% for %\}$/],
  ['{% else %}', '{%', /^stray \{% else %\}: there is no open \{% if %\} or \{% for %\}$/],
  ['{% if a %}{% else %}{% else %}{% endif %}', '{% else', /^"\{% if a %\}" already has an \{% else %\}$/, 1],
  [
    '{% if a %}{% else %}{% elif b %}{% endif %}',
    '{% elif',
    /^\{% elif %\} after the \{% else %\} of "\{% if a %\}": else comes last$/,
  ],
  [
    '{% for a in b %}{% elif c %}{% endfor %}',
    '{% elif',
    /^\{% elif %\} cannot go in "\{% for a in b %\}": close it with \{% endfor %\} first$/,
  ],
  ['{% elif a %}', '{%', /^stray \{% elif %\}/],
  ['{% if a %}{% else if b %}{% endif %}', 'if b', /^"else if" is written \{% elif \.\.\. %\}$/],
  ['{% if a %}{% endif a %}', 'a %}', /^\{% endif %\} takes nothing more, found "a"$/, 1],
  ['{% endraw %}', '{%', /^stray \{% endraw %\}/],
  ['{% raw %}{{ x }}', '{%', /^unclosed \{% raw %\}: add \{% endraw %\}$/],
  [
    '{% set x = 1 %}',
    'set',
    /^unknown tag "set" \(a Jinja tag berth does not support.*\); tags are if, elif, else, endif, for, endfor, raw, endraw$/,
  ],
  ['{% include "x" %}', 'include', /^unknown tag "include" \(a Jinja tag/],
  ['{% endfi %}', 'endfi', /^unknown tag "endfi" \(did you mean "endif"\?\)/],
  ['{% elsif a %}', 'elsif', /\(did you mean "elif"\?\)/],
  ['{% %}', '{%', /^empty tag "\{% %\}"$/],
  ['{%- -%}', '{%', /^empty tag/],
  ['{% if a', '{%', /^unclosed "\{%": the tag has no "%\}"$/],
  ['{% if a }}', '}}', /^this tag began with "\{%", so it ends with "%\}", not "\}\}"$/],
  ['{{ a %}', '%}', /^this tag began with "\{\{", so it ends with "\}\}", not "%\}"$/],
  ['{% if %}', '%}', /^\{% if %\} needs a condition/],
  ['{% if a %}{% elif %}{% endif %}', '%}', /^\{% elif %\} needs a condition/, 1],
  ['{% if a b %}', 'b', /^unexpected "b": expected an operator, "\|" and a filter, or "%\}"$/],
  ['{% if a is defined %}', 'is', /^tests \("x is defined"\) are not supported/],
  ['{% for %}', '%}', /^expected the loop variable's name after "for", found "%\}"$/],
  ['{% for in x %}', 'in', /^expected the loop variable's name/],
  ['{% for p of x %}', 'of', /^expected "in" after "for p", found "of"$/],
  ['{% for p in %}', '%}', /^\{% for p in %\} needs a list to loop over$/],
  ['{% for k, v in x %}', ',', /^unpacking \("for a, b in \.\.\."\) is not supported/],
  ['{% for p in x if p %}', 'if', /^a loop filter .* is not supported; put an \{% if %\} inside the loop$/],
  ['{% for loop in x %}', 'loop', /^"loop" cannot be a loop variable/],
  ['{% for secrets in x %}', 'secrets', /^"secrets" cannot be a loop variable/],
  ['{{ 1 < 2 < 3 }}', '<', /^comparisons do not chain: write "a < b and b < c"$/, 1],
  ['{{ a == }}', '}}', /^expected a name, a quoted string or a number, found "\}\}"$/],
  ['{{ not }}', '}}', /^expected a name/],
  ['{{ a and }}', '}}', /^expected a name/],
  ['{{ in }}', 'in', /^expected a name, a quoted string or a number, found "in"$/],
  ['{{ a ! b }}', '!', /^operator "!" is not supported/],
  ['{{ a = b }}', '=', /^unexpected "=": expected "\|" and a filter, or "\}\}"$/],
  ["{{ ['a' 'b'] }}", "'b'", /^expected "," or "\]" in the list, found a string$/],
  ['{{ [1, 2 }}', '}}', /^expected "," or "\]" in the list, found "\}\}"$/],
  [
    '{{ x if y }}',
    'if',
    /^conditional expressions \("x if y else z"\) are not supported; use \{% if %\} blocks/,
  ],
  [
    '#jinja2: lstrip_blocks: True\n{{ x }}',
    '#',
    /^the "#jinja2:" header of Ansible templates is not supported/,
  ],
];

for (const [text, at, message, nth] of parseErrors) {
  test(`parse error: ${JSON.stringify(text)}`, () => {
    const r = parseTemplate(text);
    assert.equal(r.ok, false, 'should not parse');
    if (r.ok) return;
    assert.match(r.error.message, message);
    assert.equal(r.error.offset, offsetOf(text, at, nth), `points at ${JSON.stringify(at)}`);
  });
}

test('parse errors in a multi-line file are at their line and column', () => {
  const file = [
    '# squid.conf',
    '{% if true %}',
    '  {% for p in groups.proxy_server %}',
    'cache_peer {{ p.address }}',
    '{% endif %}',
    '',
  ].join('\n');
  const r = parseTemplate(file);
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.deepEqual(positionOf(file, r.error.offset), { line: 5, col: 1 });
  assert.match(r.error.message, /\{% endif %\} cannot close "\{% for p in groups.proxy_server %\}"/);
  const unclosed = '{% if true %}\n\n  {{ host.name }}\n  {% for p in x %}\n';
  const u = parseTemplate(unclosed);
  assert.ok(!u.ok);
  if (!u.ok) assert.deepEqual(positionOf(unclosed, u.error.offset), { line: 4, col: 3 });
});

test('blocks nested too deep and over-long expressions are errors, not stack overflows', () => {
  const deep = '{% if true %}'.repeat(40) + '{% endif %}'.repeat(40);
  const r = parseTemplate(deep);
  assert.ok(!r.ok);
  if (!r.ok) {
    assert.equal(r.error.message, 'blocks nested more than 32 deep');
    assert.equal(r.error.offset, '{% if true %}'.length * 32);
  }
  assert.ok(parseTemplate('{% if true %}'.repeat(32) + '{% endif %}'.repeat(32)).ok);
  const long = parseTemplate(`{{ ${'true or '.repeat(500)}true }}`);
  assert.ok(!long.ok);
  if (!long.ok) assert.match(long.error.message, /more than 100 filters, operators and keys deep/);
  assert.ok(!parseTemplate(`{{ ${'not '.repeat(100)}true }}`).ok);
  assert.ok(!parseTemplate(`{{ ${'['.repeat(100)}${']'.repeat(100)} }}`).ok);
  assert.equal(out(`{{ ${'not '.repeat(20)}true }}`), 'true');
});

// ---------------------------------------------------------------------------------------------
// Bad input found by the check, without any host

function issues(text: string): Array<[string, string]> {
  return checkTemplate(template(text), SCHEMA).map((i) => [text.slice(i.offset, i.offset + 8), i.message]);
}

function checkOne(text: string, at: string, message: RegExp, nth = 0): void {
  const found = checkTemplate(template(text), SCHEMA);
  assert.equal(found.length, 1, JSON.stringify(found));
  assert.match(found[0]!.message, message);
  assert.equal(found[0]!.offset, offsetOf(text, at, nth), `points at ${JSON.stringify(at)}`);
}

test('check: unknown names and filters in conditions, loop lists and bodies, every branch', () => {
  checkOne('{% if hots.name %}x{% endif %}', 'hots', /^unknown name "hots" \(did you mean "host"\?\)/);
  checkOne(
    '{% for p in grups.x %}{% endfor %}',
    'grups',
    /^unknown name "grups" \(did you mean "groups"\?\)/,
  );
  checkOne(
    '{% for p in groups.proxy_server %}{{ p.name | uper }}{% endfor %}',
    'uper',
    /^unknown filter "uper"/,
  );
  checkOne(
    '{% for p in groups.proxy %}{% endfor %}',
    'proxy',
    /^unknown group "proxy" \(did you mean "proxy_server"\?\)/,
  );
  assert.deepEqual(
    issues('{% if true %}ok{% elif hots %}{% else %}{{ nope }}{% endif %}').map(([at]) => at),
    ['hots %}{', 'nope }}{'],
  );
  assert.deepEqual(
    issues(
      '{% if false %}{% for x in [1] %}{% if x %}{{ host.adress }}{% endif %}{% endfor %}{% endif %}',
    ).map(([, m]) => m),
    [
      'host has no key "adress" (did you mean "address"?); a host has name, address, groups and vars (its inventory values are under vars)',
    ],
  );
});

test('check: a loop variable is known inside its loop, with what its list holds, and only there', () => {
  checkOne(
    '{% for p in groups.proxy_server %}{{ p.adress }}{% endfor %}',
    'adress',
    /^p has no key "adress" \(did you mean "address"\?\)/,
  );
  checkOne(
    '{% for p in groups.proxy_server | default([]) %}{{ p.adress }}{% endfor %}',
    'adress',
    /^p has no key "adress"/,
  );
  checkOne(
    '{% for p in groups.proxy_server %}{{ p }}{% endfor %}',
    'p }}',
    /^p is a map; pick one of its keys/,
  );
  checkOne('{% for p in groups.proxy_server %}{% endfor %}{{ p.name }}', 'p.name', /^unknown name "p"/);
  checkOne('{% for p in groups.empty %}{% else %}{{ p.name }}{% endfor %}', 'p.name', /^unknown name "p"/);
  checkOne('{{ loop.index }}', 'loop', /^loop is only defined inside \{% for %\} \.\.\. \{% endfor %\}$/);
  checkOne(
    '{% for x in [1] %}{{ loop.indx }}{% endfor %}',
    'indx',
    /^loop has no key "indx" \(did you mean "index"\?\); it has index, index0, revindex, revindex0, first, last, length$/,
  );
});

test('check: a loop over what is surely not a list', () => {
  checkOne(
    '{% for c in host.name %}{% endfor %}',
    'host',
    /^a loop needs a list, but host.name is a string$/,
  );
  checkOne('{% for v in host.vars %}{% endfor %}', 'host', /^a loop needs a list, but host.vars is a map$/);
  checkOne(
    '{% for n in host.groups | length %}{% endfor %}',
    'host',
    /^a loop needs a list, but host.groups \| length is a number$/,
  );
  // What the check cannot know (a host var) is left to rendering.
  assert.deepEqual(issues('{% for p in host.vars.proxies %}{{ p }}{% endfor %}'), []);
});

test('check: comparisons that cannot work, or can only give one answer', () => {
  checkOne(
    '{% if host.groups < 3 %}{% endif %}',
    'host',
    /^< compares two numbers or two strings, but host.groups is a list$/,
  );
  checkOne(
    '{% if host.name > 3 %}{% endif %}',
    '>',
    /^> compares two numbers or two strings, but host.name is a string and 3 is a number$/,
  );
  checkOne(
    "{% for x in [1] %}{% if loop.index == '1' %}{% endif %}{% endfor %}",
    '==',
    /^loop.index is a number and '1' is a string, so "==" is always false$/,
  );
  checkOne('{{ true != 1 }}', '!=', /so "!=" is always true$/);
  checkOne(
    "{% if 'a' in 3 %}{% endif %}",
    '3',
    /^"in" needs a list, a string or a map on its right, but 3 is a number$/,
  );
  checkOne(
    '{% if 1 in host.name %}{% endif %}',
    '1',
    /^"in" looks for a string in a string, but 1 is a number$/,
  );
  checkOne(
    '{% if 1 not in host.vars %}{% endif %}',
    '1',
    /^"not in" looks for a key in a map's keys, which are strings, but 1 is a number$/,
  );
  checkOne(
    '{% if host.name not in groups.app_server %}{% endif %}',
    'host',
    /^host.name is a string and each item of groups.app_server is a host \(a map\), so "not in" is always true; compare names: .*'app_server' not in host.groups$/,
  );
  checkOne(
    "{{ 1 in ['a', 'b'] }}",
    '1',
    /^1 is a number and each item of \['a', 'b'\] is a string, so "in" is always false$/,
  );
});

test('check: the templates berth users write with blocks check clean', () => {
  for (const text of [
    SQUID_BERTH,
    SQUID_IDIOM,
    `{% if host.vars.squid | default(false) %}on{% endif %}`,
    `{% for p in groups.proxy_server %}{{ p.vars.port | default(3128) }}{{ loop.index }}{% endfor %}`,
    `{% if groups.proxy_server | length > 0 and 'app_server' in host.groups %}x{% endif %}`,
    `{% if service.name == 'api' or env == 'prod' %}x{% elif not host.vars %}y{% endif %}`,
    `{% for host in groups.app_server %}{{ host.address }}{% endfor %}`,
    `{% if host.vars.port > 1024 %}{% endif %}`,
    `{{ host.vars.a == host.vars.b }}`,
  ]) {
    assert.deepEqual(issues(text), [], text);
  }
});

// ---------------------------------------------------------------------------------------------
// Bad input found while rendering, with where

function fails(text: string, at: string, message: RegExp, ctx: RenderContext = context(), nth = 0): string {
  for (const redact of [false, true]) {
    const r = run(text, ctx, FILE, redact);
    assert.equal(r.ok, false, `${text} should fail`);
    if (r.ok) continue;
    assert.match(r.error.message, message);
    assert.equal(r.error.offset, offsetOf(text, at, nth), `points at ${JSON.stringify(at)}`);
  }
  const r = run(text, ctx);
  return r.ok ? '' : r.error.message;
}

const withVars = (vars: Record<string, unknown>) =>
  context({ host: host('app-9', '10.0.1.19', 'app_server', vars) });

test('render: a loop over a non-list says what it is and where, line and column in a file', () => {
  const file = 'peers:\n{% for p in host.vars.proxies %}\n- {{ p }}\n{% endfor %}\n';
  const ctx = withVars({ proxies: '10.0.2.5,10.0.2.6' });
  fails(file, 'host.vars', /^a loop needs a list, but host.vars.proxies is a string$/, ctx);
  const r = run(file, ctx);
  assert.ok(!r.ok);
  if (!r.ok) assert.deepEqual(positionOf(file, r.error.offset), { line: 2, col: 13 });
  fails('{% for p in host.vars.proxies %}{% endfor %}', 'host', /is a map/, withVars({ proxies: { a: 1 } }));
  fails(
    '{% for p in service.note %}{% endfor %}',
    'service',
    /^a loop needs a list, but service.note is null \(an empty value\); add \| default\(\[\]\) if it may be empty$/,
  );
  fails(
    '{% for p in host.vars.nope %}{% endfor %}',
    'host',
    /^host.vars.nope is not defined \(host.vars has no key "nope"\); add \| default\(\[\]\) if it may be missing$/,
  );
  assert.equal(out('{% for p in host.vars.nope | default([]) %}x{% else %}none{% endfor %}'), 'none');
});

test('render: a missing value in a condition is an error, as everywhere; default(false) says otherwise', () => {
  fails(
    '{% if host.vars.squid %}x{% endif %}',
    'host',
    /^host.vars.squid is not defined \(host.vars has no key "squid"\); add \| default\(false\) if it may be missing$/,
  );
  fails('{% if not host.vars.squid %}x{% endif %}', 'host', /add \| default\(false\)/);
  fails("{% if host.vars.squid == 'on' %}x{% endif %}", 'host', /add \| default\(\.\.\.\)/);
  fails(
    '{% if true and host.vars.squid %}x{% endif %}',
    'host',
    /^host.vars.squid is not defined .*add \| default/,
  );
  fails('{{ false or host.vars.squid }}', 'host', /^host.vars.squid is not defined/);
  assert.equal(out('{% if host.vars.squid | default(false) %}x{% else %}y{% endif %}'), 'y');
  fails('{{ host.vars.a or host.vars.b }}', 'host', /^host.vars.a is not defined/);
});

test('render: comparisons and "in" of kinds that do not go together', () => {
  fails(
    "{% if host.vars.port > '80' %}{% endif %}",
    '>',
    /^> compares two numbers or two strings, but host.vars.port is a number and '80' is a string$/,
  );
  fails('{% if host.vars.tier < 1 %}{% endif %}', '<', /host.vars.tier is a string and 1 is a number/);
  fails(
    "{{ 'a' in host.vars.port }}",
    'host',
    /^"in" needs a list, a string or a map on its right, but host.vars.port is a number$/,
  );
  fails(
    '{{ host.vars.port in host.name }}',
    'host',
    /^"in" looks for a string in a string, but host.vars.port is a number$/,
  );
  fails('{{ host.vars.port in host.vars }}', 'host', /^"in" looks for a key in a map's keys/);
  fails('{{ [] in service.note }}', 'service', /but service.note is null/);
});

test('render: an error inside a loop says which item it was, by number only', () => {
  const text = '{% for p in groups.proxy_server %}{{ p.vars.port }}{% endfor %}';
  fails(
    text,
    'p.vars',
    /^p.vars.port is not defined \(p.vars has no key "port"\); add \| default\(\.\.\.\) if it may be missing \(item 1 of 2 of groups.proxy_server\)$/,
  );
  fails(
    '{% for a in [1, 2] %}{% for p in groups.proxy_server %}{% if a == 2 %}{{ p.vars.x }}{% endif %}{% endfor %}{% endfor %}',
    'p.vars',
    /\(item 1 of 2 of groups.proxy_server\) \(item 2 of 2 of \[1, 2\]\)$/,
  );
});

test('render: a one-line value (an env value) may not render a line break from a block', () => {
  const r = run('a{% if true %}b\nc{% endif %}', context(), {});
  assert.deepEqual(r, { ok: false, error: { offset: 15, message: 'the value holds a line break or NUL' } });
  const ok = run('a{% if true %}\nb{% endif %}', context(), {});
  assert.deepEqual(ok, { ok: true, value: 'ab', secretsUsed: [] }, 'the newline after a tag is not text');
});

test('render: loops and output are bounded', () => {
  const big = Array.from({ length: 1001 }, (_, i) => host(`h${i}`, `10.9.${i >> 8}.${i & 255}`, 'big'));
  const ctx = { ...context(), groups: { ...context().groups, big } };
  const text = '{% for a in groups.big %}{% for b in groups.big %}{% endfor %}{% endfor %}';
  const r = run(text, ctx);
  assert.ok(!r.ok);
  if (!r.ok) {
    assert.match(r.error.message, new RegExp(`^loops ran more than ${MAX_ITERATIONS} times in one render`));
    assert.equal(r.error.offset, offsetOf(text, '{% for b'));
  }
  const long = run('{% for p in groups.proxy_server %}{{ p.name }}{% endfor %}', context(), {
    multiline: true,
    maxLength: 10,
  });
  assert.deepEqual(long, {
    ok: false,
    error: {
      offset: offsetOf('{% for p in groups.proxy_server %}{{ p.name }}', '{{'),
      message: 'the rendered text is longer than 10 characters (item 2 of 2 of groups.proxy_server)',
    },
  });
});

// ---------------------------------------------------------------------------------------------
// Secrets through blocks

const SECRETS = { flag: 'on', pw: 'CANARY-pw', a: 'CANARY-a', b: 'CANARY-b', tok: 'CANARY-tok' };

test('a secret in a condition counts as used, and the whole block shows as its placeholder', () => {
  const text = `x{% if secrets.flag == 'on' %}ON{% else %}OFF{% endif %}y`;
  const ctx = context({ secrets: SECRETS });
  assert.deepEqual(run(text, ctx), { ok: true, value: 'xONy', secretsUsed: ['flag'] });
  assert.deepEqual(run(text, ctx, FILE, true), { ok: true, value: 'x<secret:flag>y', secretsUsed: ['flag'] });
  // An elif's condition too, once it is evaluated.
  const elif = `{% if false %}a{% elif secrets.flag %}b{% endif %}`;
  assert.deepEqual(run(elif, ctx, FILE, true), { ok: true, value: '<secret:flag>', secretsUsed: ['flag'] });
  assert.deepEqual(run(`{% if true %}a{% elif secrets.flag %}b{% endif %}`, ctx, FILE, true), {
    ok: true,
    value: 'a',
    secretsUsed: [],
  });
});

test('a secret in a loop body is used when the body runs, and redacted as in any {{ }}', () => {
  const ctx = context({ secrets: SECRETS });
  const text = `{% for p in groups.proxy_server %}{{ p.name }}:{{ secrets.pw }} {% endfor %}`;
  assert.deepEqual(run(text, ctx), {
    ok: true,
    value: 'proxy-01:CANARY-pw proxy-02:CANARY-pw ',
    secretsUsed: ['pw'],
  });
  assert.deepEqual(ctx.asked, ['pw'], 'looked up once, however often the loop reads it');
  assert.deepEqual(run(text, ctx, FILE, true), {
    ok: true,
    value: 'proxy-01:<secret:pw> proxy-02:<secret:pw> ',
    secretsUsed: ['pw'],
  });
  const none = context({ secrets: SECRETS });
  assert.deepEqual(
    run(
      `{% for p in groups.empty %}{{ secrets.pw }}{% endfor %}{% if false %}{{ secrets.a }}{% endif %}`,
      none,
    ),
    {
      ok: true,
      value: '',
      secretsUsed: [],
    },
  );
  assert.deepEqual(none.asked, [], 'a branch that does not run reads no secret');
});

test("a loop over a list built from secrets is redacted whole, the body's secrets named too", () => {
  const ctx = context({ secrets: SECRETS });
  const text = `[{% for k in [secrets.a, secrets.b] %}{{ k }}{{ secrets.pw }};{% endfor %}]`;
  assert.deepEqual(run(text, ctx), {
    ok: true,
    value: '[CANARY-aCANARY-pw;CANARY-bCANARY-pw;]',
    secretsUsed: ['a', 'b', 'pw'],
  });
  assert.deepEqual(run(text, ctx, FILE, true), {
    ok: true,
    value: '[<secret:a><secret:b><secret:pw>]',
    secretsUsed: ['a', 'b', 'pw'],
  });
});

test('redacted without a lookup: a secret-driven block is not rendered, but names what it needs', () => {
  const { secret: _none, ...noSecrets } = context();
  const text = `x{% if secrets.flag == 'on' %}{{ secrets.pw }}{{ host.vars.nope }}{% endif %}y{{ host.name }}`;
  assert.deepEqual(run(text, noSecrets, FILE, true), {
    ok: true,
    value: 'x<secret:flag><secret:pw>yapp-1',
    secretsUsed: ['flag', 'pw'],
  });
  // With the secrets at hand the body runs, so the error apply would hit is shown.
  fails(text, 'host.vars', /host.vars.nope is not defined/, context({ secrets: SECRETS }));
  assert.deepEqual(run(text, noSecrets), {
    ok: false,
    error: {
      offset: offsetOf(text, 'secrets'),
      message: 'secret flag is needed, but no secrets are available here',
    },
  });
});

test('errors from blocks never quote a secret', () => {
  const ctx = context({ secrets: SECRETS });
  const messages = [
    fails('{% if secrets.tok > 3 %}{% endif %}', '>', /secrets.tok is a string and 3 is a number/, ctx),
    fails(
      '{% for c in secrets.tok %}{% endfor %}',
      'secrets',
      /a loop needs a list, but secrets.tok is a string/,
      ctx,
    ),
    fails('{% if 1 in secrets.tok %}{% endif %}', '1', /looks for a string in a string/, ctx),
    fails(
      '{% for k in [secrets.tok, 1] %}{{ k.x }}{% endfor %}',
      'k.x',
      /^k.x is not defined \(k is a string, which has no keys\); .* \(item 1 of 2 of \[secrets.tok, 1\]\)$/,
      ctx,
    ),
  ];
  for (const m of messages) assert.doesNotMatch(m, /CANARY/);
});

test('templateSecrets names the secrets of every branch and loop, for fetching before rendering', () => {
  assert.deepEqual(
    templateSecrets(
      template(
        `{% if secrets.a %}{% for x in [secrets.b] %}{{ secrets.c }}{% endfor %}{% elif secrets.e %}{% else %}{{ secrets.d }}{% endif %}`,
      ),
    ),
    ['a', 'b', 'c', 'd', 'e'],
  );
});

test('positionOf: 1-based line and column of an offset in a file', () => {
  const text = 'ab\ncd\r\nef';
  assert.deepEqual(positionOf(text, 0), { line: 1, col: 1 });
  assert.deepEqual(positionOf(text, 2), { line: 1, col: 3 });
  assert.deepEqual(positionOf(text, 3), { line: 2, col: 1 });
  assert.deepEqual(positionOf(text, 7), { line: 3, col: 1 });
  assert.deepEqual(positionOf(text, 99), { line: 3, col: 3 });
});
