import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Expr } from './ast.js';
import { looksLikeTemplate, parseTemplate } from './parse.js';

function parsed(text: string) {
  const r = parseTemplate(text);
  if (!r.ok) assert.fail(`${text}: ${r.error.message} at ${r.error.offset}`);
  return r.template;
}

/** The expression back as a compact string, to compare trees at a glance. */
function show(e: Expr): string {
  switch (e.kind) {
    case 'name':
      return e.name;
    case 'literal':
      return JSON.stringify(e.value);
    case 'field':
      return `${show(e.object)}[${JSON.stringify(e.key)}]`;
    case 'filter': {
      const args = e.args.map((a) => (a.name ? `${a.name}=${show(a.value)}` : show(a.value)));
      return `(${show(e.input)} | ${e.name}(${args.join(', ')}))`;
    }
    case 'list':
      return `[${e.items.map(show).join(', ')}]`;
    case 'compare':
    case 'logic':
      return `(${show(e.left)} ${e.op} ${show(e.right)})`;
    case 'not':
      return `(not ${show(e.operand)})`;
  }
}

function only(text: string): string {
  const parts = parsed(text).parts;
  assert.equal(parts.length, 1);
  assert.equal(parts[0]!.kind, 'expr');
  return show((parts[0] as { expr: Expr }).expr);
}

test('text without templates is one literal part, and an empty value too', () => {
  assert.deepEqual(parsed('plain } { text }}').parts, [
    { kind: 'text', text: 'plain } { text }}', start: 0, end: 17 },
  ]);
  assert.deepEqual(parsed('').parts, [{ kind: 'text', text: '', start: 0, end: 0 }]);
  assert.equal(looksLikeTemplate('a {{ b }}'), true);
  assert.equal(looksLikeTemplate('a { b }'), false);
});

test('text and expressions alternate, with offsets into the text', () => {
  const t = parsed('a{{ host.name }}b{{env}}');
  assert.deepEqual(
    t.parts.map((p) => [p.kind, p.start, p.end]),
    [
      ['text', 0, 1],
      ['expr', 1, 16],
      ['text', 16, 17],
      ['expr', 17, 24],
    ],
  );
  const first = t.parts[1];
  assert.ok(first?.kind === 'expr');
  assert.equal(first.expr.start, 4);
  assert.equal(t.source.slice(first.expr.start, first.expr.end), 'host.name');
});

test('dotted names and [ ] indexing', () => {
  assert.equal(only('{{ host.vars.lb_server }}'), 'host["vars"]["lb_server"]');
  assert.equal(only(`{{ groups['proxy-servers'][0].address }}`), 'groups["proxy-servers"][0]["address"]');
  assert.equal(only('{{ groups.proxy_server.0.name }}'), 'groups["proxy_server"][0]["name"]');
  assert.equal(only('{{ groups.app[-1] }}'), 'groups["app"][-1]');
  assert.equal(only('{{ host.vars["x y"] }}'), 'host["vars"]["x y"]');
  assert.equal(only('{{\n  host.name\n}}'), 'host["name"]');
});

test('literals, escapes, and "}}" inside a string does not close the expression', () => {
  assert.equal(only(`{{ 'it\\'s' }}`), '"it\'s"');
  assert.equal(only(`{{ "a\\\\b\\"c" }}`), '"a\\\\b\\"c"');
  assert.equal(only(`{{ '}}' }}`), '"}}"');
  assert.equal(only('{{ 42 }}'), '42');
  assert.equal(only('{{ 1.5 }}'), '1.5');
});

test('filters chain left to right, with positional, keyword and nested arguments', () => {
  assert.equal(
    only(`{{ groups.proxy_server | map(attribute='address') | join(',') }}`),
    '((groups["proxy_server"] | map(attribute="address")) | join(","))',
  );
  assert.equal(only('{{ host.name | upper }}'), '(host["name"] | upper())');
  assert.equal(only('{{ host.name | upper() }}'), '(host["name"] | upper())');
  assert.equal(
    only('{{ host.vars.x | default(host.name | upper, ) }}'),
    '(host["vars"]["x"] | default((host["name"] | upper())))',
  );
  assert.equal(only(`{{ (host.groups | first) | upper }}`), '((host["groups"] | first()) | upper())');
});

const errors: Array<[string, string, RegExp, string?]> = [
  // [template, the text the error points at (first occurrence), message, which occurrence marker]
  ['{{ }}', '{{', /empty expression/],
  ['x {{ host.name', '{{', /unclosed "\{\{"/],
  ['x {{ host.name | join(","', '{{', /unclosed/],
  ['{{ a + b }}', '+', /operator "\+" is not supported/],
  ['{{ a ~ b }}', '~', /operator "~"/],
  ['{% if x %}y', '{%', /^unclosed "\{% if x %\}": add \{% endif %\}$/],
  ['echo ${#arr}', '{#', /comments .* are not supported.*\{\{ '\{#' \}\}/],
  ['{{+ host.name }}', '+', /"\{\{\+" is not valid/],
  ['{{ host.name +}}', '+', /"\+\}\}" is not valid/],
  ['{{ lookup("file", "/etc/passwd") }}', '(', /calls are not supported/],
  ['{{ host.name | }}', '}}', /expected a filter name after "\|"/],
  ['{{ host.name if x else y }}', 'if', /conditional expressions/],
  ['{{ host.name is defined }}', 'is', /tests .* are not supported/],
  ['{{ host[name] }}', 'name', /inside "\[ \]" write a quoted key or an integer index/],
  ['{{ host[0.5] }}', '0.5', /inside "\[ \]"/],
  ['{{ host. }}', '}}', /expected a field name after "\."/],
  ['{{ host["a" }}', '}}', /expected "\]"/],
  ["{{ 'abc }}", "'", /unterminated string/],
  ["{{ 'a\\nb' }}", '\\', /unsupported escape "\\n"/],
  ["{{ x | join(',' ; }}", ';', /unexpected character ";"/],
  ["{{ x | join(',' 'y') }}", "'y'", /expected "," or "\)"/],
  [
    '{{ host.name host.address }}',
    'host.address',
    /unexpected "host": expected "\|" and a filter, or "\}\}"/,
  ],
  ['{{ {"a": 1} }}', '{"', /unexpected character "\{"/],
  ['ok {{ host.name }} then {{ ( }}', '}}', /expected a name/, 'last'],
];

for (const [text, at, message, which] of errors) {
  test(`parse error: ${text}`, () => {
    const r = parseTemplate(text);
    assert.equal(r.ok, false, 'should not parse');
    if (r.ok) return;
    assert.match(r.error.message, message);
    assert.equal(r.error.offset, which === 'last' ? text.lastIndexOf(at) : text.indexOf(at));
  });
}

test('deep nesting is an error, not a stack overflow', () => {
  const deep = `{{ ${'('.repeat(10_000)}host.name${')'.repeat(10_000)} }}`;
  const r = parseTemplate(deep);
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.error.message, /nested more than 32 deep/);
  assert.equal(only(`{{ ${'('.repeat(20)}host.name${')'.repeat(20)} }}`), 'host["name"]');
});
