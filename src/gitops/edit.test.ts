import assert from 'node:assert/strict';
import { test } from 'node:test';
import { editServiceFile, EditError, readRelease } from './edit.js';

/**
 * The text outside the changed region must be the old text byte for byte: the edit replaced
 * exactly `from` by `to` once, and nothing else moved.
 */
function assertOnlyReplaced(before: string, after: string, from: string, to: string): void {
  let p = 0;
  while (p < before.length && before[p] === after[p]) p++;
  let s = 0;
  while (
    s < before.length - p &&
    s < after.length - p &&
    before[before.length - 1 - s] === after[after.length - 1 - s]
  )
    s++;
  const oldMid = before.slice(p, before.length - s);
  const newMid = after.slice(p, after.length - s);
  assert.ok(
    from.includes(oldMid) && to.includes(newMid),
    `changed ${JSON.stringify(oldMid)} → ${JSON.stringify(newMid)}`,
  );
  assert.equal(before.replace(from, to), after);
}

const CANONICAL = `# api: the public API
# owned by team payments
image: 127.0.0.1:5000/team/api:1.4.2     # bumped by CI
gitCommit: 3f2a1c9d   # CI metadata
buildNumber: '123'

env_vars: {BAR: baz,  QUX: "1.10"}   # flow map, odd spacing kept
hosts:
    - app_server      # four-space list indent
healthcheck: { http: 'http://127.0.0.1:8080/health', interval: 2s }
`;

test('canonical form: each value replaced in its own style, every other byte kept', () => {
  const out = editServiceFile(CANONICAL, {
    image: '127.0.0.1:5000/team/api:1.4.3',
    gitCommit: '4b5c6d7e',
    buildNumber: '124',
  });
  assert.equal(
    out,
    CANONICAL.replace('api:1.4.2', 'api:1.4.3').replace('3f2a1c9d', '4b5c6d7e').replace("'123'", "'124'"),
  );
  assert.deepEqual(readRelease(out), {
    image: '127.0.0.1:5000/team/api:1.4.3',
    gitCommit: '4b5c6d7e',
    buildNumber: '124',
  });
});

test('an unchanged value leaves the text identical', () => {
  assert.equal(
    editServiceFile(CANONICAL, { image: '127.0.0.1:5000/team/api:1.4.2', buildNumber: '123' }),
    CANONICAL,
  );
});

const KEYED = `# reference design fragment
api:
  name: api
  image: >-
    123456789012.dkr.ecr.eu-west-2.amazonaws.com/someorg/api:1a2b3c4
  gitCommit: somesha
  buildNumber: '123'
  env_vars:
    BAR: baz   # keep me
`;

test('keyed form with a folded image: header and indentation kept, only the value line changes', () => {
  const img = '123456789012.dkr.ecr.eu-west-2.amazonaws.com/someorg/api:5d6e7f8';
  const out = editServiceFile(KEYED, { image: img });
  assertOnlyReplaced(KEYED, out, 'api:1a2b3c4', 'api:5d6e7f8');
  assert.equal(readRelease(out).image, img);
});

test('keyed form: buildNumber and gitCommit replaced, quotes as they were', () => {
  const out = editServiceFile(KEYED, { gitCommit: 'abcdef1', buildNumber: '124' });
  assert.equal(out, KEYED.replace('somesha', 'abcdef1').replace("'123'", "'124'"));
});

test('a missing key goes on its own line after its neighbour, with the same indentation', () => {
  const text = `api:\n  image: reg/api:1   # first\n  env_vars: { A: b }\n`;
  const out = editServiceFile(text, { gitCommit: '3f2a1c9', buildNumber: '7' });
  assert.equal(
    out,
    `api:\n  image: reg/api:1   # first\n  gitCommit: 3f2a1c9\n  buildNumber: '7'\n  env_vars: { A: b }\n`,
  );
  const canonical = editServiceFile('image: reg/api:1\n', { buildNumber: '12' });
  assert.equal(canonical, "image: reg/api:1\nbuildNumber: '12'\n");
  // No trailing newline at the end of the file: one is put between, none added at the end.
  assert.equal(
    editServiceFile('image: reg/api:1', { gitCommit: 'abc1234' }),
    'image: reg/api:1\ngitCommit: abc1234\n',
  );
});

test('values that would read as something else are quoted', () => {
  // A commit id of digits only, or one that reads as a float (12e4567), must stay a string.
  assert.equal(
    editServiceFile('image: a:1\n', { gitCommit: '1234567' }),
    "image: a:1\ngitCommit: '1234567'\n",
  );
  assert.equal(
    editServiceFile('image: a:1\ngitCommit: abc\n', { gitCommit: '12e4567' }),
    "image: a:1\ngitCommit: '12e4567'\n",
  );
  // A plain number stays a plain number when it was one.
  assert.equal(
    editServiceFile('image: a:1\nbuildNumber: 41\n', { buildNumber: '42' }),
    'image: a:1\nbuildNumber: 42\n',
  );
  assert.equal(
    editServiceFile('image: "a:1"\n', { image: 'reg/a:2' }),
    'image: "reg/a:2"\n',
    'double quotes are kept',
  );
});

test('flow-map bodies and CRLF files are edited in place', () => {
  const flow = '{image: reg/a:1, gitCommit: abc}   # one line\n';
  assert.equal(
    editServiceFile(flow, { image: 'reg/a:2' }),
    '{image: reg/a:2, gitCommit: abc}   # one line\n',
  );
  assert.equal(
    editServiceFile(flow, { buildNumber: '3' }),
    "{image: reg/a:1, gitCommit: abc, buildNumber: '3'}   # one line\n",
  );
  assert.equal(editServiceFile(flow, { gitCommit: null }), '{image: reg/a:1}   # one line\n');
  const crlf = 'image: reg/a:1\r\nenv_vars:\r\n  A: b\r\n';
  assert.equal(
    editServiceFile(crlf, { image: 'reg/a:2', gitCommit: 'abc1234' }),
    'image: reg/a:2\r\ngitCommit: abc1234\r\nenv_vars:\r\n  A: b\r\n',
  );
});

test('removing a key takes its whole line and nothing else', () => {
  const out = editServiceFile(CANONICAL, { gitCommit: null });
  assert.equal(out, CANONICAL.replace('gitCommit: 3f2a1c9d   # CI metadata\n', ''));
  assert.equal(editServiceFile(KEYED, { gitCommit: null }), KEYED.replace('  gitCommit: somesha\n', ''));
});

test('refuses what it cannot edit safely', () => {
  assert.throws(() => editServiceFile('image: [a, b]\n', { image: 'reg/a:1' }), EditError);
  assert.throws(() => editServiceFile('- a\n', { image: 'reg/a:1' }), EditError);
  assert.throws(() => editServiceFile('image: a\nimage: b\n', { image: 'reg/a:1' }), EditError);
  assert.throws(() => editServiceFile('image: "unterminated\n', { image: 'reg/a:1' }), /not valid YAML/);
});
