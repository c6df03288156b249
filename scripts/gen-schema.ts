// Writes schema/*.schema.json from the zod schemas, for editors (yaml-language-server etc.).
// src/config/schema.test.ts fails when the committed files are out of date.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsonSchemaFiles } from '../src/config/schema.js';

const outDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'schema');
mkdirSync(outDir, { recursive: true });
for (const [name, text] of Object.entries(jsonSchemaFiles())) {
  writeFileSync(path.join(outDir, name), text);
  process.stdout.write(`wrote schema/${name}\n`);
}
