/** One problem in the state repo, located as precisely as we can. */
export interface ConfigIssue {
  file: string;
  line?: number;
  col?: number;
  /** Dotted path inside the file, e.g. env_vars.FOO. */
  path?: string;
  message: string;
  severity: 'error' | 'warning';
}

export function formatIssue(i: ConfigIssue): string {
  const loc = [i.file, i.line, i.col].filter((x) => x !== undefined).join(':');
  const where = i.path ? `${loc} ${i.path}` : loc;
  return `${where}: ${i.severity === 'warning' ? 'warning: ' : ''}${i.message}`;
}

/** The state repo is wrong: a list of issues, all reported at once. */
export class ConfigError extends Error {
  constructor(public readonly issues: ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
  }
}

/** Something outside berth failed: Docker, git, a registry, SSH. Their fault, not ours. */
export class ExternalError extends Error {
  constructor(
    public readonly system: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${system}: ${message}`, options);
    this.name = 'ExternalError';
  }
}

/** The user asked for something that cannot be done as asked (bad flag, refused operation). */
export class UsageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UsageError';
  }
}

/** Another berth process holds the host (its lock); nothing was done. */
export class HostBusyError extends Error {
  constructor(
    message: string,
    public readonly holder?: { command: string; machine: string; pid: number; user: string; since: string },
  ) {
    super(message);
    this.name = 'HostBusyError';
  }
}

/** The work was stopped at a safe point because it was asked to (SIGINT, SIGTERM, an agent shutting down). */
export class CancelledError extends Error {
  constructor(message = 'cancelled') {
    super(message);
    this.name = 'CancelledError';
  }
}
