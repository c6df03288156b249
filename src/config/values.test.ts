import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, splitCommand } from './values.js';

test('durations in milliseconds; a bare number is seconds', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('5s'), 5000);
  assert.equal(parseDuration('1m'), 60_000);
  assert.equal(parseDuration('1m30s'), 90_000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration(30), 30_000);
  assert.deepEqual(parseDuration('30'), {
    error: 'invalid duration "30": use a number with a unit, e.g. 500ms, 5s, 1m, 1m30s',
  });
});

test('a command string is split like a shell quotes it, without expanding anything', () => {
  assert.deepEqual(splitCommand(`serve --name "a b" '$X' $HOME *.txt`), [
    'serve',
    '--name',
    'a b',
    '$X',
    '$HOME',
    '*.txt',
  ]);
  assert.deepEqual(splitCommand('sh -c "echo ${A} && run {{ host.name }}"'), [
    'sh',
    '-c',
    'echo ${A} && run {{ host.name }}',
  ]);
  assert.deepEqual(splitCommand('run --host {{ host.address | default("x y") }}'), [
    'run',
    '--host',
    '{{ host.address | default("x y") }}',
  ]);
});

test('shell operators, comments and empty commands are refused', () => {
  for (const op of ['&&', '|', ';', '>']) {
    assert.deepEqual(splitCommand(`a ${op} b`), {
      error: `shell operator "${op}" is not supported: berth runs the command without a shell; write it as a list, e.g. ["sh", "-c", "..."], to use one`,
    });
  }
  assert.deepEqual(splitCommand('a # b'), {
    error: 'a "#" comment is not supported in a command; quote the "#" if it is an argument',
  });
  assert.deepEqual(splitCommand('  '), { error: 'the command is empty' });
});

test('a block in a one-line command is refused: each argument renders on its own', () => {
  const r = splitCommand('serve {% if host.vars.debug %}--debug{% endif %}');
  assert.ok(!Array.isArray(r));
  assert.match(
    r.error,
    /^a "\{% %\}" block cannot be used in a one-line command, .*write the command as a list/,
  );
});
