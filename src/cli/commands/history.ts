import { Option, type Command } from 'commander';
import { formatHistory } from '../../store/format.js';
import { defaultStorePath } from '../../store/paths.js';
import { openSqliteStore } from '../../store/sqlite.js';
import { UsageError } from '../../model/errors.js';
import { formatStory, serviceStory } from '../../gitops/history.js';
import { resolveEnv } from '../../gitops/repo.js';
import { loadChecked } from '../checked.js';
import { printJson, useColor } from '../output.js';
import { withWorkspace } from './gitops-options.js';

interface HistoryFlags {
  store?: string;
  limit: number;
  json?: boolean;
  git?: boolean;
  repo: string;
  env?: string;
  cacheDir?: string;
}

export function registerHistory(program: Command): void {
  program
    .command('history')
    .argument('[service]', 'only this service')
    .description(
      'what was applied on this host, when, from what to what, and how it ended; --git: what entered the branch',
    )
    .option('--store <path>', `deployment record (SQLite); default ${defaultStorePath()}`)
    .option('--limit <n>', 'newest N records', (v) => Number.parseInt(v, 10), 50)
    .option('--json', 'print the records as JSON')
    .option(
      '--git',
      "instead of the record: the branch's own story of SERVICE (each build that entered it, when, by whom)",
    )
    .addOption(new Option('--repo <path|url>', 'with --git: the state repo').env('BERTH_REPO').default('.'))
    .addOption(new Option('--env <name>', 'with --git: the environment (branch)').env('BERTH_ENV'))
    .option('--cache-dir <dir>', 'with --git: where cached clones of remote repos live')
    .action(async (service: string | undefined, flags: HistoryFlags) => {
      if (flags.git) return gitHistory(service, flags);
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

/** `history SERVICE --git`: read from the branch, never from the record. */
async function gitHistory(service: string | undefined, flags: HistoryFlags): Promise<void> {
  if (!service) throw new UsageError('history --git needs a SERVICE');
  if (!flags.env) throw new UsageError('history --git needs --env (the branch to read)');
  if (!Number.isInteger(flags.limit) || flags.limit < 1)
    throw new UsageError('--limit takes a whole number of at least 1');
  const env = flags.env;
  const story = await withWorkspace(flags, async (ws) => {
    const e = await resolveEnv(ws, env);
    const files = e.files ?? (await ws.read(e.branch));
    // The whole story is read (a service file's log is short) so the oldest row shown is not
    // taken for the file's creation; only the newest --limit rows are printed.
    const s = await serviceStory(ws, files, service, loadChecked);
    return { branch: e.branch, file: s.file, entries: s.entries.slice(0, flags.limit) };
  });
  if (flags.json) printJson({ service, env, branch: story.branch, file: story.file, entries: story.entries });
  else process.stdout.write(formatStory(story.entries));
}
