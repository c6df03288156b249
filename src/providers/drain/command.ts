/**
 * The user's own commands drive the load balancer (the reference setup called its load
 * balancer's CLI from Ansible this way). Host values reach the commands only as environment
 * variables, never spliced into the command text, so no value can inject shell syntax.
 */
import { spawn } from 'node:child_process';
import { ExternalError } from '../../model/errors.js';
import { assertValid, durationIssue, hasTemplate, readDurationMs } from './settings.js';
import type {
  DrainOptions,
  DrainProvider,
  DrainProviderPlugin,
  DrainTarget,
  LbState,
  SettingIssue,
} from './types.js';

/** Settings the provider itself reads; any other key is passed to the commands only. */
export const COMMAND_SETTINGS = [
  'drain_command',
  'undrain_command',
  'status_command',
  'drain_timeout',
  'command_timeout',
] as const;

/** Bound on undrain and status, and added to the drain timeout for drain. */
const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;
/** Characters of stderr kept for an error message. */
const STDERR_TAIL = 600;

export function validateCommandSettings(
  s: Record<string, unknown>,
  { base, rendered }: { base: string; rendered: boolean },
): SettingIssue[] {
  const issues: SettingIssue[] = [];
  for (const key of ['drain_command', 'undrain_command', 'status_command']) {
    const v = s[key];
    const path = `${base}.${key}`;
    if (v === undefined) {
      if (key !== 'status_command') issues.push({ path, message: 'required by the command provider' });
    } else if (typeof v !== 'string' || !v.trim()) {
      issues.push({ path, message: 'expected a shell command (a non-empty string)' });
    } else if (hasTemplate(v)) {
      // A value rendered into a shell line is exactly the injection the environment avoids.
      issues.push({
        path,
        message: 'use $BERTH_HOST, $BERTH_ADDRESS or $BERTH_LB_<SETTING> in commands, not {{ }}',
      });
    }
  }
  const envNames = new Map<string, string>();
  for (const [k, v] of Object.entries(s)) {
    if (k === 'provider' || v === undefined) continue;
    const path = `${base}.${k}`;
    if (!/^[A-Za-z0-9_]+$/.test(k)) {
      issues.push({
        path,
        message: 'setting names are letters, digits and _ (each becomes BERTH_LB_<NAME>)',
      });
      continue;
    }
    const envName = envNameOf(k);
    const other = envNames.get(envName);
    if (other) issues.push({ path, message: `both this and ${base}.${other} would be ${envName}` });
    envNames.set(envName, k);
    if (!['string', 'number', 'boolean'].includes(typeof v)) {
      issues.push({ path, message: 'expected a string, number or boolean' });
    } else if (rendered && /[\0]/.test(String(v))) {
      issues.push({ path, message: 'contains a NUL character' });
    }
  }
  issues.push(...durationIssue(s.drain_timeout, `${base}.drain_timeout`, rendered));
  issues.push(...durationIssue(s.command_timeout, `${base}.command_timeout`, rendered));
  return issues;
}

function envNameOf(setting: string): string {
  return `BERTH_LB_${setting.toUpperCase()}`;
}

/** The environment a command sees: BERTH_HOST, BERTH_ADDRESS, BERTH_LB_<SETTING> for each setting. */
export function commandEnv(t: DrainTarget, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, BERTH_HOST: t.host, BERTH_ADDRESS: t.address ?? '' };
  for (const [k, v] of Object.entries(t.settings)) {
    if (k === 'provider' || v === undefined || v === null) continue;
    env[envNameOf(k)] = String(v);
  }
  return { ...env, ...extra };
}

interface RunResult {
  stdout: string;
}

/**
 * Run `line` with /bin/sh -c in its own process group, bounded by `timeoutMs` (the whole group is
 * killed then). A non-zero exit is an ExternalError with the tail of stderr; the environment is
 * never part of a message.
 */
function run(
  what: string,
  line: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', line], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let killedFor: string | undefined;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout = (stdout + d).slice(-64 * 1024)));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-64 * 1024)));
    const killGroup = (why: string) => {
      killedFor ??= why;
      try {
        // The negative PID is the group of the shell we started: its children die with it.
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => killGroup(`timed out after ${timeoutMs} ms`), timeoutMs);
    const onAbort = () => killGroup('aborted');
    signal?.addEventListener('abort', onAbort, { once: true });
    const tail = () => {
      const t = stderr.trim();
      return t ? `: ${t.length > STDERR_TAIL ? '…' + t.slice(-STDERR_TAIL) : t}` : '';
    };
    child.on('error', (e) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      reject(
        new ExternalError('load balancer command', `${what} could not start: ${e.message}`, { cause: e }),
      );
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (killedFor === 'aborted' && signal) return reject(signal.reason ?? new Error('aborted'));
      if (killedFor)
        return reject(new ExternalError('load balancer command', `${what} ${killedFor}${tail()}`));
      if (code !== 0) {
        const how = code === null ? `killed by ${sig}` : `exited with ${code}`;
        return reject(new ExternalError('load balancer command', `${what} ${how}${tail()}`));
      }
      resolve({ stdout });
    });
  });
}

const STATES: readonly LbState[] = ['ready', 'drain', 'maint'];

export class CommandProvider implements DrainProvider {
  readonly name = 'command';

  private settings(t: DrainTarget) {
    assertValid(t, validateCommandSettings(t.settings, { base: 'load_balancer', rendered: true }));
    const s = t.settings;
    return {
      drain: s.drain_command as string,
      undrain: s.undrain_command as string,
      status: s.status_command as string | undefined,
      commandTimeoutMs: readDurationMs(s.command_timeout, DEFAULT_COMMAND_TIMEOUT_MS),
    };
  }

  /**
   * Runs status_command; its stdout must be ready, drain or maint. Without a status_command the
   * state is unknown (and a failed drain then cannot be undone more precisely than by undrain).
   */
  async status(t: DrainTarget): Promise<LbState> {
    const c = this.settings(t);
    if (!c.status) return 'unknown';
    const { stdout } = await run(
      `status_command for ${t.host}`,
      c.status,
      commandEnv(t, {}),
      c.commandTimeoutMs,
    );
    const word = stdout.trim().toLowerCase() as LbState;
    if (!STATES.includes(word)) {
      const shown = stdout.trim().slice(0, 40);
      throw new ExternalError(
        'load balancer command',
        `status_command for ${t.host} printed "${shown}", expected ready, drain or maint`,
      );
    }
    return word;
  }

  /**
   * drain_command does the whole drain, the wait included; it gets BERTH_DRAIN_TIMEOUT_MS and
   * BERTH_STATE=maint and may run that long plus command_timeout before it is killed.
   */
  async drain(t: DrainTarget, opts: DrainOptions): Promise<void> {
    const c = this.settings(t);
    const timeoutMs = Math.max(0, opts.timeoutMs);
    opts.onProgress?.(`${t.host}: running drain_command`);
    await run(
      `drain_command for ${t.host}`,
      c.drain,
      commandEnv(t, { BERTH_STATE: 'maint', BERTH_DRAIN_TIMEOUT_MS: String(timeoutMs) }),
      timeoutMs + c.commandTimeoutMs,
      opts.signal,
    );
  }

  async undrain(t: DrainTarget): Promise<void> {
    const c = this.settings(t);
    await run(
      `undrain_command for ${t.host}`,
      c.undrain,
      commandEnv(t, { BERTH_STATE: 'ready' }),
      c.commandTimeoutMs,
    );
  }

  /**
   * ready runs undrain_command; drain and maint run drain_command with BERTH_STATE set to the
   * state wanted and no time to wait (a command that knows only one way out gives maint for both).
   */
  async restore(t: DrainTarget, state: LbState): Promise<void> {
    const c = this.settings(t);
    if (state === 'unknown') return;
    if (state === 'ready') return this.undrain(t);
    await run(
      `drain_command (restore ${state}) for ${t.host}`,
      c.drain,
      commandEnv(t, { BERTH_STATE: state, BERTH_DRAIN_TIMEOUT_MS: '0' }),
      c.commandTimeoutMs,
    );
  }
}

export const commandPlugin: DrainProviderPlugin = {
  name: 'command',
  create: () => new CommandProvider(),
  validate: validateCommandSettings,
};
