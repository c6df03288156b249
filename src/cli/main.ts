#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { CancelledError, ConfigError, ExternalError, HostBusyError, UsageError } from '../model/errors.js';
import { EXIT, ExitError } from './exit.js';

type Register = (program: Command) => void;

/**
 * Every command, in the order `--help` lists them, each loaded only when needed: a run of one
 * command loads that command's modules alone, so `set-image` in a CI job never pays for the
 * engine client, the record or the secrets code, and `apply` not for the CI side.
 */
const COMMANDS: ReadonlyArray<readonly [string, () => Promise<Register>]> = [
  ['validate', async () => (await import('./commands/validate.js')).registerValidate],
  ['render', async () => (await import('./commands/render.js')).registerRender],
  ['plan', async () => (await import('./commands/plan.js')).registerPlan],
  ['apply', async () => (await import('./commands/apply.js')).registerApply],
  ['agent', async () => (await import('./commands/agent.js')).registerAgent],
  ['deploy', async () => (await import('./commands/deploy.js')).registerDeploy],
  ['status', async () => (await import('./commands/status.js')).registerStatus],
  ['wait', async () => (await import('./commands/wait.js')).registerWait],
  ['history', async () => (await import('./commands/history.js')).registerHistory],
  ['secret', async () => (await import('./commands/secret.js')).registerSecret],
  ['set-image', async () => (await import('./commands/set-image.js')).registerSetImage],
  ['rollback', async () => (await import('./commands/rollback.js')).registerRollback],
  ['diff', async () => (await import('./commands/diff.js')).registerDiff],
  ['promote', async () => (await import('./commands/promote.js')).registerPromote],
  ['smoke', async () => (await import('./commands/smoke.js')).registerSmoke],
];

async function program(argv: string[]): Promise<Command> {
  const p = new Command('berth')
    .description('GitOps continuous delivery for plain Docker hosts')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  // `berth CMD ...` needs CMD alone, `berth --version` none; `berth --help`, `berth help CMD`
  // or a typo need them all.
  const one = COMMANDS.find(([name]) => name === argv[2]);
  const version = argv.length === 3 && (argv[2] === '--version' || argv[2] === '-V');
  for (const [, load] of one ? [one] : version ? [] : COMMANDS) (await load())(p);
  return p;
}

/** The one place berth decides its exit code. */
async function main(argv: string[]): Promise<number> {
  try {
    await (await program(argv)).parseAsync(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (e) {
    if (e instanceof ExitError) return e.code;
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 1;
    if (e instanceof ConfigError) {
      process.stderr.write(
        `${e.message}\n${e.issues.length} problem(s) in the state repo; nothing was applied.\n`,
      );
      return 1;
    }
    if (e instanceof HostBusyError) {
      process.stderr.write(`berth: ${e.message}\n`);
      return EXIT.busy;
    }
    if (e instanceof CancelledError) {
      process.stderr.write(`berth: ${e.message}\n`);
      return EXIT.cancelled;
    }
    if (e instanceof ExternalError || e instanceof UsageError) {
      process.stderr.write(`berth: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`berth: internal error (this is a bug): ${(e as Error)?.stack ?? String(e)}\n`);
    return 70;
  }
}

/**
 * Wait until everything written to `stream` has been handed to the OS. A pipe takes 64 KiB at
 * a time; exiting before the reader has taken the rest would cut the output off (a 1 MB plan
 * through `| jq` would end mid-line while the exit code says success).
 */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) return resolve();
    stream.write('', () => resolve());
  });
}

// A reader that went away (`berth plan | head -1`) is not a reason to stop an apply half-way:
// the output is dropped, the work goes on, the exit code still tells how it went.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
  });
}

main(process.argv).then(async (code) => {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
});
