import { Option, type Command } from 'commander';
import { UsageError } from '../../model/errors.js';
import { formatDeploys, formatHistory } from '../../store/format.js';
import { defaultStorePath } from '../../store/paths.js';
import type { ApplyResult, HistoryQuery } from '../../store/types.js';
import { spoolDirOption, storeOption } from '../options.js';
import { printJson, useColor } from '../output.js';
import { withWorkspace } from './gitops-options.js';

interface HistoryFlags {
  git?: boolean;
  repo: string;
  cacheDir?: string;
  store?: string;
  spoolDir?: string;
  env?: string;
  host?: string;
  service?: string;
  commit?: string;
  result?: ApplyResult;
  since?: string;
  until?: string;
  deploy?: string;
  steps?: boolean;
  limit: number;
  json?: boolean;
}

const RESULTS = ['succeeded', 'failed', 'cancelled', 'running'];
const AGO_UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * A point in time for `--since` / `--until`: an ISO date or time (`2026-11-26`, UTC unless it
 * names an offset), or how long ago (`30m`, `12h`, `7d`, `2w`).
 */
export function parseWhen(flag: string, value: string, now: () => number = Date.now): string {
  const ago = /^(\d+)([mhdw])$/.exec(value);
  if (ago) return new Date(now() - Number(ago[1]) * AGO_UNITS[ago[2]!]!).toISOString();
  const t = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(t)) {
    throw new UsageError(
      `${flag} "${value}": give a date or time (2026-11-26, 2026-11-26T18:30Z) or how long ago (30m, 12h, 7d, 2w)`,
    );
  }
  return new Date(t).toISOString();
}

function positive(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new UsageError(`--limit takes a whole number of at least 1, not "${v}"`);
  return n;
}

export function registerHistory(program: Command): void {
  program
    .command('history')
    .argument('[service]', 'only this service (same as --service)')
    .description(
      'what was applied where and when: one entry per deploy (its hosts beneath), or every step with --steps',
    )
    .addOption(storeOption())
    .addOption(spoolDirOption())
    .option('--env <name>', 'only this environment')
    .option('--host <name>', 'only this host')
    .option('--service <name>', 'only applies that acted on this service (with --steps: its steps)')
    .option('--commit <sha>', 'only this state commit or service gitCommit (a prefix will do)')
    .addOption(
      new Option('--result <result>', "only what ended so (with --steps: the step's result)").choices(
        RESULTS,
      ),
    )
    .option('--since <when>', 'started at or after: a date or time (UTC), or how long ago (30m, 12h, 7d)')
    .option('--until <when>', 'started at or before: a date or time (UTC), or how long ago')
    .option('--deploy <id>', 'only the applies of this deploy id')
    .option('--steps', 'one line per step (pull, lease, drain, recreate, health, …) with its timing')
    .option('--limit <n>', 'newest N entries (with --steps: steps)', positive, 50)
    .option('--json', 'print the entries (with --steps: the steps) as JSON')
    .option(
      '--git',
      "instead of the record: the branch's own story of SERVICE (each build that entered it, when, by whom); --env names the branch's environment",
    )
    .addOption(new Option('--repo <path|url>', 'with --git: the state repo').env('BERTH_REPO').default('.'))
    .option('--cache-dir <dir>', 'with --git: where cached clones of remote repos live')
    .addHelpText(
      'after',
      `\nThe record is ${defaultStorePath()} unless --store or BERTH_STORE names another (a postgres:// URL for a fleet).`,
    )
    .action(async (service: string | undefined, flags: HistoryFlags) => {
      if (flags.git) return gitHistory(service, flags);
      if (service !== undefined && flags.service !== undefined && service !== flags.service) {
        throw new UsageError(`two services named: "${service}" and --service "${flags.service}"; give one`);
      }
      const q: HistoryQuery = { limit: flags.limit };
      const svc = service ?? flags.service;
      if (svc !== undefined) q.service = svc;
      if (flags.env !== undefined) q.env = flags.env;
      if (flags.host !== undefined) q.host = flags.host;
      if (flags.commit !== undefined) q.commit = flags.commit;
      if (flags.result !== undefined) q.result = flags.result;
      if (flags.since !== undefined) q.since = parseWhen('--since', flags.since);
      if (flags.until !== undefined) q.until = parseWhen('--until', flags.until);
      if (flags.deploy !== undefined) q.deployId = flags.deploy;
      // The record (SQLite, or PostgreSQL's client) is loaded only when the command runs.
      const { openStore } = await import('../../store/registry.js');
      const store = await openStore(flags.store ?? defaultStorePath(), {
        spoolDir: flags.spoolDir,
        onNotice: (m) => process.stderr.write(`berth: ${m}\n`),
      });
      try {
        if (flags.steps) {
          const rows = await store.history(q);
          if (flags.json) printJson(rows);
          else process.stdout.write(formatHistory(rows, { color: useColor() }));
        } else {
          const entries = await store.deploys(q);
          if (flags.json) printJson(entries);
          else process.stdout.write(formatDeploys(entries, { color: useColor() }));
        }
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
  const [{ formatStory, serviceStory }, { resolveEnv }, { loadChecked }] = await Promise.all([
    import('../../gitops/history.js'),
    import('../../gitops/repo.js'),
    import('../../host/checked.js'),
  ]);
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
