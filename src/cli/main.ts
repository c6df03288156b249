#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { CancelledError, ConfigError, ExternalError, HostBusyError, UsageError } from '../model/errors.js';
import { registerApply } from './commands/apply.js';
import { registerDeploy } from './commands/deploy.js';
import { registerStatus } from './commands/status.js';
import { registerWait } from './commands/wait.js';
import { registerHistory } from './commands/history.js';
import { registerPlan } from './commands/plan.js';
import { registerRender } from './commands/render.js';
import { registerSecret } from './commands/secret.js';
import { registerValidate } from './commands/validate.js';
import { EXIT, ExitError } from './exit.js';

function program(): Command {
  const p = new Command('berth')
    .description('GitOps continuous delivery for plain Docker hosts')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  registerValidate(p);
  registerRender(p);
  registerPlan(p);
  registerApply(p);
  registerDeploy(p);
  registerStatus(p);
  registerWait(p);
  registerHistory(p);
  registerSecret(p);
  return p;
}

/** The one place berth decides its exit code. */
async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv);
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
