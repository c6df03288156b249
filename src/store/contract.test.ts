import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { storeContract } from './contract.js';
import { openSqliteStore } from './sqlite.js';

// The store contract against the embedded SQLite store; postgres.test.ts runs the same against
// a real PostgreSQL.
const temps: string[] = [];
after(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));

storeContract({
  name: 'sqlite',
  open: async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'berth-store-'));
    temps.push(dir);
    return openSqliteStore(path.join(dir, 'berth.db'));
  },
});
