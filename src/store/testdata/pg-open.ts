/**
 * A separate berth process opening a PostgreSQL record and writing one apply, for the test of
 * migrations raced by several processes: `node --import tsx pg-open.ts URL TAG`, then "go" on stdin.
 */
import { openPostgresStore } from '../postgres.js';

const [url, tag] = process.argv.slice(2);
process.stdout.write('ready\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
process.stdin.pause();
try {
  const store = await openPostgresStore(url!);
  const id = await store.beginApply({
    host: tag,
    ref: 'main',
    repo: 'repo',
    startedAt: new Date().toISOString(),
  });
  await store.finishApply(id, { result: 'succeeded', finishedAt: new Date().toISOString() });
  await store.close();
  process.stdout.write(JSON.stringify({ ok: true }) + '\n');
} catch (e) {
  process.stdout.write(JSON.stringify({ ok: false, message: (e as Error).message }) + '\n');
}
