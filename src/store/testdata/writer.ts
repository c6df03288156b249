/**
 * A separate berth process writing to the record, for the concurrency test: run as
 * `node --import tsx writer.ts FILE TAG COUNT`, then "go" on stdin. Each apply gets three actions, as a real apply would.
 */
import { openSqliteStore } from '../sqlite.js';

const [file, tag, count] = process.argv.slice(2);
const store = openSqliteStore(file!);
// Wait for the test's "go" so every writer's loop overlaps, rather than racing tsx start-up.
process.stdout.write('ready\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
process.stdin.pause();
const at = (i: number, s: number) => new Date(Date.UTC(2024, 0, 1, 0, 0, i, s)).toISOString();
for (let i = 0; i < Number(count); i++) {
  const applyId = await store.beginApply({ host: tag, ref: 'main', repo: 'repo', startedAt: at(i, 0) });
  for (const service of ['api', 'web', 'worker']) {
    const id = await store.beginAction(applyId, {
      service,
      action: 'recreate',
      cause: `${tag} ${i}`,
      host: tag,
      startedAt: at(i, 1),
    });
    await store.finishAction(id, { result: 'succeeded', finishedAt: at(i, 2) });
  }
  await store.finishApply(applyId, { result: 'succeeded', finishedAt: at(i, 3) });
}
await store.close();
