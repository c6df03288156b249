import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../../model/errors.js';
import { intOf, renderedWithAddress, settingChecks } from './settings.js';
import type { SettingIssue } from './types.js';

describe('intOf', () => {
  test('a whole number, or digits as a rendered template gives them', () => {
    assert.equal(intOf(8080), 8080);
    assert.equal(intOf(' 443 '), 443);
    assert.equal(intOf(1.5), undefined);
    assert.equal(intOf('-1'), undefined);
    assert.equal(intOf('80a'), undefined);
    assert.equal(intOf(undefined), undefined);
  });
});

describe('settingChecks', () => {
  const run = (s: Record<string, unknown>, rendered: boolean) => {
    const issues: SettingIssue[] = [];
    const { at, text, int } = settingChecks(s, { base: 'load_balancer', rendered }, 'demo', issues);
    const values = {
      pool: text('pool', true),
      region: text('region', false),
      port: int('port', true, 1, 65535),
      weight: int('weight', false, 1, 256),
    };
    return { at, values, issues: issues.map((i) => `${i.path}: ${i.message}`) };
  };

  test('values to check further, and issues naming the provider and the path', () => {
    assert.deepEqual(run({ pool: 'web', region: 'eu', port: '8080', weight: 3 }, true).values, {
      pool: 'web',
      region: 'eu',
      port: 8080,
      weight: 3,
    });
    assert.deepEqual(run({ region: ' ', weight: 0 }, true).issues, [
      'load_balancer.pool: required by the demo provider',
      'load_balancer.region: expected a non-empty string',
      'load_balancer.port: required by the demo provider',
      'load_balancer.weight: expected an integer from 1 to 256',
    ]);
    assert.equal(run({}, true).at('pool'), 'load_balancer.pool');
  });

  test('templates are checked for type only until they are rendered', () => {
    const s = { pool: '{{ host.vars.pool }}', port: '{{ host.vars.port }}' };
    const atValidate = run(s, false);
    assert.deepEqual(atValidate.issues, []);
    assert.deepEqual(Object.values(atValidate.values), [undefined, undefined, undefined, undefined]);
    assert.deepEqual(run(s, true).issues, ['load_balancer.port: expected an integer from 1 to 65535']);
    assert.deepEqual(run({ pool: 3, port: 1 }, false).issues, [
      'load_balancer.pool: expected a non-empty string',
    ]);
  });
});

describe('renderedWithAddress', () => {
  /** A provider's validate that takes only 10.x addresses (and leaves a missing one to the helper). */
  const validate = (s: Record<string, unknown>): SettingIssue[] =>
    s.address === undefined || String(s.address).startsWith('10.')
      ? []
      : [{ path: 'load_balancer.address', message: 'not ours' }];

  test("the setting, else the host's inventory address", () => {
    assert.deepEqual(
      renderedWithAddress({ host: 'a', address: '10.0.0.1', settings: {} }, validate, 'address', 'x'),
      {
        settings: { address: '10.0.0.1' },
        value: '10.0.0.1',
      },
    );
    assert.equal(
      renderedWithAddress(
        { host: 'a', address: '10.0.0.1', settings: { address: '10.0.0.2' } },
        validate,
        'address',
        'x',
      ).value,
      '10.0.0.2',
    );
  });

  test('a ConfigError naming the host when wrong or missing', () => {
    assert.throws(
      () => renderedWithAddress({ host: 'a', address: '192.0.2.1', settings: {} }, validate, 'address', 'x'),
      (e) => e instanceof ConfigError && /load_balancer\.address: not ours \(for host a\)/.test(e.message),
    );
    assert.throws(
      () => renderedWithAddress({ host: 'b', settings: {} }, validate, 'address', 'give one'),
      (e) =>
        e instanceof ConfigError &&
        /load_balancer\.address: required: give one \(for host b\)/.test(e.message),
    );
  });
});
