import { Option, type Command } from 'commander';
import { UsageError } from '../../model/errors.js';
import { EXIT, ExitError } from '../exit.js';
import { fleetOptions, type FleetFlags } from '../fleet.js';
import { durationFlag } from '../options.js';
import { paint, printJson, useColor } from '../output.js';
import { cancelOnSignals } from '../signals.js';

interface WaitFlags extends FleetFlags {
  commit?: string;
  timeout: number;
  interval: number;
}

export function registerWait(program: Command): void {
  fleetOptions(program.command('wait'), { store: false })
    .description(
      "block until every host of the environment runs its state commit healthy (CI's gate before smoke tests and promotion)",
    )
    .option('--commit <sha>', 'the state commit to wait for (default: the head of --env when wait starts)')
    .requiredOption('--timeout <duration>', 'give up after this long, e.g. 10m', durationFlag('--timeout'))
    .addOption(
      new Option('--interval <duration>', 'time between two looks at a host')
        .argParser(durationFlag('--interval', { positive: true }))
        .default(2_000, '2s'),
    )
    .option('--json', 'print the outcome as JSON')
    .action(async (flags: WaitFlags) => {
      if (!flags.env)
        throw new UsageError('berth wait needs --env ENV (and --commit SHA to wait for a given commit)');
      const [{ loadRepo }, { converged, waitFleet }, { fleetHosts }, { printWarnings }, run, out] =
        await Promise.all([
          import('../../host/desired.js'),
          import('../../fleet/status.js'),
          import('../../fleet/targets.js'),
          import('../context.js'),
          import('../fleet-run.js'),
          import('../fleet-output.js'),
        ]);
      const { fleetRequest, withFleet } = run;
      const { missingList, seconds } = out;
      const req = fleetRequest({ ...flags, ref: flags.commit ?? flags.ref }, 'berth wait');
      const loaded = await loadRepo(req.source);
      if (!flags.json) printWarnings(loaded.warnings);
      const inv = loaded.repo.inventory;
      if (!inv?.hosts.length)
        throw new UsageError(
          'berth wait needs hosts: list them in inventory.yaml, or name an inventory source',
        );
      const hosts = fleetHosts(inv, flags.limit);
      const commit = loaded.repo.commit?.slice(0, 12) ?? loaded.repo.ref;
      const tty = Boolean(process.stderr.isTTY) && !flags.json;
      const started = Date.now();
      if (!flags.json)
        process.stderr.write(
          `Waiting for ${hosts.length} host(s) to run ${flags.env} at ${commit}, healthy…\n`,
        );
      const cancel = cancelOnSignals();
      let result;
      try {
        result = await withFleet(flags, (open) =>
          waitFleet(
            hosts,
            { ...req, loaded },
            {
              open,
              timeoutMs: flags.timeout,
              intervalMs: flags.interval,
              signal: cancel.signal,
              onRound: (statuses) => {
                if (!tty) return;
                const done = statuses.filter(converged).length;
                const next = statuses.find((s) => !converged(s));
                process.stderr.write(
                  `\r\u001b[2K  ${done}/${statuses.length} there after ${seconds(Date.now() - started)}` +
                    (next ? `; waiting for ${next.host}` : ''),
                );
              },
            },
          ),
        );
      } finally {
        cancel.dispose();
        if (tty) process.stderr.write('\n');
      }
      const there = result.statuses.filter(converged).map((s) => s.host);
      if (flags.json) {
        printJson({
          ok: result.ok,
          ref: loaded.repo.ref,
          commit: loaded.repo.commit ?? null,
          waitedMs: Date.now() - started,
          converged: there,
          hosts: result.statuses,
        });
      } else if (result.ok) {
        process.stdout.write(
          paint(
            useColor(),
            'green',
            `All ${hosts.length} host(s) run ${flags.env} at ${commit}, healthy (${seconds(Date.now() - started)}).`,
          ) + '\n',
        );
      } else {
        process.stdout.write(
          paint(
            useColor(),
            'red',
            `${cancel.signal.aborted ? 'Stopped' : 'Timed out'} after ${seconds(Date.now() - started)}: ${there.length} of ${hosts.length} host(s) run ${flags.env} at ${commit}, healthy. Missing:`,
          ) +
            '\n' +
            missingList(result.statuses),
        );
      }
      if (cancel.signal.aborted) throw new ExitError(EXIT.cancelled);
      if (!result.ok) throw new ExitError(EXIT.error);
    });
}
