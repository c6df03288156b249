import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FIELD_LIST, SERVICE_TEMPLATE_FIELDS } from './fields.js';
import { defaultsSchema, serviceSchema } from './schema.js';

test('the schemas take exactly the fields of the table; defaults all but the required ones', () => {
  assert.deepEqual(
    Object.keys(serviceSchema.shape),
    FIELD_LIST.map(([k]) => k),
  );
  assert.deepEqual(
    Object.keys(defaultsSchema.shape),
    FIELD_LIST.filter(([, f]) => !f.required).map(([k]) => k),
  );
});

test('every field has its own spec key', () => {
  const keys: string[] = FIELD_LIST.map(([, f]) => f.spec);
  assert.equal(new Set(keys).size, keys.length);
  assert.ok(!keys.includes('name') && !keys.includes('file'), 'name and file are not fields of the table');
});

test('only env_vars may use secrets: secretEnv and redactedEnv are keyed by its keys', () => {
  const withSecrets = FIELD_LIST.filter(([, f]) => f.template?.shape === 'map' && f.template.secrets);
  assert.deepEqual(
    withSecrets.map(([k, f]) => [k, f.spec]),
    [['env_vars', 'env']],
  );
});

test('templates read only fields that are never templated themselves', () => {
  assert.deepEqual(SERVICE_TEMPLATE_FIELDS, ['name', 'image', 'gitCommit', 'buildNumber']);
  for (const [key, f] of FIELD_LIST) if (f.readable) assert.equal(f.template, undefined, key);
});
