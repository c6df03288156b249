import type { Command } from 'commander';
import { stringify } from 'yaml';
import type { ServiceSpec } from '../../model/service.js';
import { UsageError } from '../../model/errors.js';
import { loadDesired, printWarnings } from '../context.js';
import type { RepoFlags } from '../context.js';
import { repoOptions } from '../options.js';
import { printJson } from '../output.js';

/** The service in the words of its file (snake_case), as berth will run it on this host. */
export function serviceAsFile(s: ServiceSpec): Record<string, unknown> {
  const hc = s.healthcheck;
  return {
    image: s.image,
    gitCommit: s.gitCommit,
    buildNumber: s.buildNumber,
    // Values that use a secret are shown in their redacted form; only the env file holds them.
    env_vars: { ...s.env, ...s.redactedEnv },
    hosts: s.hosts,
    command: s.command,
    entrypoint: s.entrypoint,
    user: s.user,
    working_dir: s.workingDir,
    volumes: s.volumes,
    labels: s.labels,
    stop_signal: s.stopSignal,
    stop_timeout: s.stopTimeout,
    network_mode: s.networkMode,
    restart_policy: s.restartPolicy,
    init: s.init,
    log_driver: s.logDriver,
    log_options: s.logOptions,
    pull: s.pull,
    healthcheck: hc && {
      http: hc.http,
      tcp: hc.tcp,
      docker: hc.docker,
      interval: `${hc.interval}ms`,
      timeout: `${hc.timeout}ms`,
      retries: hc.retries,
      start_period: `${hc.startPeriod}ms`,
    },
    drain: s.drain,
  };
}

export function registerRender(program: Command): void {
  repoOptions(program.command('render').argument('<service>', 'service name'))
    .description('print one service as berth will run it on this host (defaults merged)')
    .option('--json', 'print JSON')
    .action(async (name: string, flags: RepoFlags & { json?: boolean }) => {
      const { desired, warnings } = await loadDesired(flags);
      printWarnings(warnings);
      const s = desired.services.find((x) => x.name === name);
      if (!s) {
        const known = desired.services.map((x) => x.name).join(', ') || 'none';
        const where = desired.host ? ` on host ${desired.host}` : '';
        throw new UsageError(`no service "${name}"${where} (services: ${known})`);
      }
      if (flags.json) printJson({ name: s.name, file: s.file, ...serviceAsFile(s) });
      else process.stdout.write(`# ${s.name} from ${s.file}\n` + stringify(serviceAsFile(s)));
    });
}
