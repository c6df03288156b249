#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { ConfigError, ExternalError, UsageError } from '../model/errors.js';
import { registerApply } from './commands/apply.js';
import { registerDiff } from './commands/diff.js';
import { registerHistory } from './commands/history.js';
import { registerPlan } from './commands/plan.js';
import { registerPromote } from './commands/promote.js';
import { registerRender } from './commands/render.js';
import { registerRollback } from './commands/rollback.js';
import { registerSecret } from './commands/secret.js';
import { registerSetImage } from './commands/set-image.js';
import { registerSmoke } from './commands/smoke.js';
import { registerValidate } from './commands/validate.js';
import { ExitError } from './exit.js';

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
  registerHistory(p);
  registerSecret(p);
  registerSetImage(p);
  registerRollback(p);
  registerDiff(p);
  registerPromote(p);
  registerSmoke(p);
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
    if (e instanceof ExternalError || e instanceof UsageError) {
      process.stderr.write(`berth: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`berth: internal error (this is a bug): ${(e as Error)?.stack ?? String(e)}\n`);
    return 70;
  }
}

main(process.argv).then((code) => process.exit(code));
