import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultStorePath } from './paths.js';

test('root keeps the shared host record under /var/lib/berth, whatever XDG says', () => {
  assert.equal(
    defaultStorePath({ uid: 0, env: { XDG_STATE_HOME: '/x' }, home: '/root' }),
    '/var/lib/berth/berth.db',
  );
});

test('anyone else uses XDG_STATE_HOME when it is set and absolute', () => {
  assert.equal(
    defaultStorePath({ uid: 1000, env: { XDG_STATE_HOME: '/home/ann/.state' }, home: '/home/ann' }),
    '/home/ann/.state/berth/berth.db',
  );
});

test('otherwise ~/.local/state, ignoring an empty or relative XDG_STATE_HOME as the spec says', () => {
  for (const XDG_STATE_HOME of [undefined, '', 'relative/state']) {
    assert.equal(
      defaultStorePath({ uid: 1000, env: { XDG_STATE_HOME }, home: '/home/ann' }),
      '/home/ann/.local/state/berth/berth.db',
    );
  }
});

test('a platform without uids (Windows) is never root', () => {
  assert.equal(
    defaultStorePath({ uid: undefined, env: {}, home: '/home/ann' }),
    '/home/ann/.local/state/berth/berth.db',
  );
});

test('with nothing injected it reads the real process', () => {
  const p = defaultStorePath();
  assert.ok(p.endsWith('/berth/berth.db'), p);
});
