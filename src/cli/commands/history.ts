import type { Command } from 'commander';
import { formatHistory } from '../../store/format.js';
import { defaultStorePath } from '../../store/paths.js';
import { printJson, useColor } from '../output.js';

export function registerHistory(program: Command): void {
  program
    .command('history')
    .argument('[service]', 'only this service')
    .description('what was applied on this host, when, from what to what, and how it ended')
    .option('--store <path>', `deployment record (SQLite); default ${defaultStorePath()}`)
    .option('--limit <n>', 'newest N records', (v) => Number.parseInt(v, 10), 50)
    .option('--json', 'print the records as JSON')
    .action(async (service: string | undefined, flags: { store?: string; limit: number; json?: boolean }) => {
      // The record (and SQLite) is loaded only when the command runs.
      const { openSqliteStore } = await import('../../store/sqlite.js');
      const store = openSqliteStore(flags.store ?? defaultStorePath());
      try {
        const rows = await store.history({ service, limit: flags.limit });
        if (flags.json) printJson(rows);
        else process.stdout.write(formatHistory(rows, { color: useColor() }));
      } finally {
        await store.close();
      }
    });
}
