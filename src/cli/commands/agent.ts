import { setFlagsFromString } from 'node:v8';
import { Option, type Command } from 'commander';
import { UsageError } from '../../model/errors.js';
import { defaultStorePath } from '../../store/paths.js';
import { EXIT, ExitError } from '../exit.js';
import { durationFlag, engineOptions, repoOptions, spoolDirOption, storeOption } from '../options.js';
import { cancelOnSignals } from '../signals.js';
import type { PlanFlags } from './plan.js';

interface AgentFlags extends PlanFlags {
  interval: number;
  listen: string;
  selfHeal: boolean;
  staleAfter?: number;
  backoffMax: number;
  waitLock: number;
  parallel: number;
  verifySignatures?: boolean;
  allowedSigners?: string;
  gpgKeys?: string;
  logLevel: string;
  spoolDir?: string;
}

const DEFAULT_INTERVAL_MS = 30_000;
/** After SIGTERM, the longest the agent takes to stop before it gives up waiting for itself. */
const SHUTDOWN_BOUND_MS = 90_000;

function positiveInt(flag: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1)
      throw new UsageError(`${flag} takes a whole number of at least 1, not "${v}"`);
    return n;
  };
}

export function registerAgent(program: Command): void {
  engineOptions(repoOptions(program.command('agent')))
    .description(
      'converge this host continuously: follow the branch (poll and webhooks), put drift right, serve status and metrics',
    )
    .addOption(
      new Option('--interval <duration>', 'how often to look at the remote and the host')
        .env('BERTH_INTERVAL')
        .argParser(durationFlag('--interval'))
        .default(DEFAULT_INTERVAL_MS, '30s'),
    )
    .addOption(
      new Option('--listen <host:port>', 'where the HTTP API, metrics and webhooks listen')
        .env('BERTH_LISTEN')
        .default('127.0.0.1:7373'),
    )
    .option(
      '--no-self-heal',
      'only report drift (a container stopped, removed or changed by hand); do not put it right',
    )
    .addOption(
      new Option(
        '--stale-after <duration>',
        'mark the source stale when the remote has not answered this long (default: 3 intervals, at least 2m)',
      ).argParser(durationFlag('--stale-after')),
    )
    .addOption(
      new Option('--backoff-max <duration>', 'longest wait before trying a failed commit again')
        .argParser(durationFlag('--backoff-max'))
        .default(600_000, '10m'),
    )
    .addOption(
      new Option('--wait-lock <duration>', 'how long a turn waits for another berth acting on this host')
        .argParser(durationFlag('--wait-lock'))
        .default(600_000, '10m'),
    )
    .option('--parallel <n>', 'how many services change at once', positiveInt('--parallel'), 4)
    .addOption(storeOption())
    .addOption(spoolDirOption())
    .option(
      '--verify-signatures',
      'apply only commits signed by an allowed key (--allowed-signers, --gpg-keys)',
    )
    .option('--allowed-signers <file>', "SSH keys allowed to sign, in git's allowed signers format")
    .option('--gpg-keys <file>', 'GPG public keys allowed to sign (armored or binary export)')
    .addOption(
      new Option('--log-level <level>', 'least level logged')
        .choices(['debug', 'info', 'warn', 'error'])
        .env('BERTH_LOG_LEVEL')
        .default('info'),
    )
    .action(async (flags: AgentFlags) => {
      if (flags.env === undefined) {
        throw new UsageError('berth agent follows a branch: give --env NAME (or BERTH_ENV)');
      }
      if (flags.ref !== undefined)
        throw new UsageError('berth agent follows a branch (--env); --ref is for plan and apply');
      if (flags.verifySignatures && !flags.allowedSigners && !flags.gpgKeys) {
        throw new UsageError(
          '--verify-signatures needs the allowed keys: --allowed-signers FILE and/or --gpg-keys FILE',
        );
      }
      if (!flags.verifySignatures && (flags.allowedSigners || flags.gpgKeys)) {
        throw new UsageError('--allowed-signers and --gpg-keys take effect with --verify-signatures; add it');
      }
      // A daemon that idles most of the time: V8's heuristics for size over speed keep its heap
      // (and so its resident memory) small; set before the heavy modules below are loaded.
      setFlagsFromString('--optimize-for-size');
      // Loaded here, not at the top: `berth --help` lists this command without loading the
      // HTTP server, the logger, the metrics library or the pipeline.
      const [
        { agentLogger },
        { parseListen, startAgent },
        { checkStoreLocation },
        { hostFrom, requestFrom },
      ] = await Promise.all([
        import('../../agent/log.js'),
        import('../../agent/daemon.js'),
        import('../../store/registry.js'),
        import('../context.js'),
      ]);
      const store = flags.store ?? defaultStorePath();
      checkStoreLocation(store);
      const listen = parseListen(flags.listen);
      const log = agentLogger({
        level: flags.logLevel,
        base: { host: flags.host ?? null, env: flags.env },
      });
      const cancel = cancelOnSignals((sig) => {
        log.info({ signal: sig }, 'stopping at the next safe point (a second signal stops at once)');
        setTimeout(() => {
          log.error(`did not stop within ${SHUTDOWN_BOUND_MS / 1000} s; exiting`);
          process.exit(EXIT.error);
        }, SHUTDOWN_BOUND_MS).unref();
      });
      try {
        const running = await startAgent(
          {
            host: await hostFrom(flags),
            request: requestFrom({ ...flags, adopt: false, allowEmpty: false }),
            env: flags.env,
            store,
            listen,
            intervalMs: flags.interval,
            staleAfterMs: flags.staleAfter ?? Math.max(3 * flags.interval, 120_000),
            selfHeal: flags.selfHeal,
            backoffMaxMs: flags.backoffMax,
            waitLockMs: flags.waitLock,
            parallel: flags.parallel,
            spoolDir: flags.spoolDir,
            verify: flags.verifySignatures
              ? { allowedSigners: flags.allowedSigners, gpgKeys: flags.gpgKeys }
              : undefined,
            berthVersion: program.version() ?? 'unknown',
            log,
            environment: process.env,
          },
          cancel.signal,
        );
        await running.done;
      } finally {
        cancel.dispose();
        log.flush();
      }
      if (!cancel.signal.aborted) throw new ExitError(EXIT.error);
    });
}
