/**
 * Open a store and report how it went as JSON, for tests that must run as an unprivileged
 * user (root can write anywhere, so "permission denied" needs another process):
 * `node --import tsx open.ts FILE`.
 */
import { ExternalError } from '../../model/errors.js';
import { openSqliteStore } from '../sqlite.js';

try {
  await openSqliteStore(process.argv[2]!).close();
  process.stdout.write(JSON.stringify({ ok: true }));
} catch (e) {
  const system = e instanceof ExternalError ? e.system : undefined;
  process.stdout.write(
    JSON.stringify({ ok: false, name: (e as Error).name, system, message: (e as Error).message }),
  );
}
