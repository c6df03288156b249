import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonSchemaFiles } from './schema.js';

const schemaDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'schema');

test('committed JSON Schemas match the zod schemas (run `npm run schema` to update)', () => {
  for (const [name, text] of Object.entries(jsonSchemaFiles())) {
    const committed = readFileSync(path.join(schemaDir, name), 'utf8');
    assert.equal(committed, text, `schema/${name} is out of date: run npm run schema`);
  }
});

test('schemas carry a title and field descriptions for editors', () => {
  for (const [name, text] of Object.entries(jsonSchemaFiles())) {
    const s = JSON.parse(text) as { title?: string; description?: string };
    assert.ok(s.title, `${name} has a title`);
    assert.ok(s.description, `${name} has a description`);
  }
  const berth = JSON.parse(jsonSchemaFiles()['berth.schema.json']!) as {
    properties: Record<string, { description?: string }>;
  };
  assert.match(berth.properties.env_dir?.description ?? '', /env files/);
});
