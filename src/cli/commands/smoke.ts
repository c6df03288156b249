import { Option, type Command } from 'commander';
import { UsageError } from '../../model/errors.js';
import { ExitError } from '../exit.js';
import { paint, printJson, useColor } from '../output.js';
import { gitopsOptions, withWorkspace, type GitopsFlags } from './gitops-options.js';

interface SmokeFlags extends GitopsFlags {
  env: string;
}

const HELP = `
Runs the checks berth.yaml declares under smoke.ENV on that environment's branch: a GET of each
URL, which must answer the expected status (default 200) and, with body:, contain that text,
within timeout: (default 10s). Exit 0 when all pass, 1 when any fails: the gate before promote.

  smoke:
    staging:
      - { url: "https://staging.example.com/health" }
      - { url: "https://staging.example.com/version", body: "1.4.3", timeout: 5s }`;

export function registerSmoke(program: Command): void {
  gitopsOptions(program.command('smoke'))
    .description("run the environment's smoke checks from berth.yaml: pass/fail report and exit code")
    .addOption(
      new Option('--env <name>', 'environment whose checks run (berth.yaml smoke.ENV)')
        .env('BERTH_ENV')
        .makeOptionMandatory(),
    )
    .option('--json', 'print the results as JSON')
    .addHelpText('after', HELP)
    .action(async (flags: SmokeFlags) => {
      const [{ envLabel, loadOrThrow, resolveEnv }, { formatSmoke, runSmoke }, { loadChecked }] =
        await Promise.all([
          import('../../gitops/repo.js'),
          import('../../gitops/smoke.js'),
          import('../../host/checked.js'),
        ]);
      const { env, commit, checks } = await withWorkspace(flags, async (ws) => {
        const e = await resolveEnv(ws, flags.env);
        const files = e.files ?? (await ws.read(e.branch));
        const repo = loadOrThrow(files, loadChecked);
        return { env: envLabel(e), commit: files.commit, checks: repo.settings?.smoke[flags.env] ?? [] };
      });
      if (!checks.length) {
        throw new UsageError(
          `berth.yaml on ${env} declares no smoke checks for ${flags.env} (smoke.${flags.env})`,
        );
      }
      const results = await runSmoke(checks);
      const failed = results.some((r) => !r.ok);
      if (flags.json) printJson({ env: flags.env, commit, ok: !failed, results });
      else {
        const c = useColor();
        process.stdout.write(formatSmoke(env, commit, results, (ok, t) => paint(c, ok ? 'green' : 'red', t)));
      }
      if (failed) throw new ExitError(1);
    });
}
