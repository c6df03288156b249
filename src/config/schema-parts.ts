import * as z from 'zod';
import { parseDuration, splitCommand } from './values.js';

// The zod building blocks that both the service field table (fields.ts) and the other files'
// schemas (schema.ts) are made of.

// A berth process parses each schema a few hundred times at most and then exits; generating and
// compiling a specialised parser for every object schema (zod's default) costs more than it saves.
z.config({ jitless: true });

const SINGLE_LINE = /^[^\n\r\0]*$/;

/** Whether a string holds a template; such values are checked when rendered, not here. */
export const hasTemplate = (s: string): boolean => s.includes('{{');

// An env file or a docker flag cannot carry a line break or NUL; catching it here beats a
// truncated value on the host.
export const line = () =>
  z.string().regex(SINGLE_LINE, {
    error: (iss) =>
      String(iss.input).includes('\0') ? 'contains a NUL character' : 'contains a line break; use one line',
  });

export const nonEmptyLine = () => line().min(1, { error: 'must not be empty' });

// CI and people write `buildNumber: 123` and `FOO: 1`; the loader has already replaced such
// YAML numbers and booleans by their source text, so `1.10` stays "1.10".
export const stringish = () => z.union([line(), z.number(), z.boolean()]).transform((v) => String(v));

export const absPath = (what: string) =>
  nonEmptyLine().refine((s) => s.startsWith('/'), { error: `${what} must be an absolute path` });

/** A command: a list, or one line split like a shell would. */
export const argv = () =>
  z.union([line(), z.array(stringish())]).transform((v, ctx): string[] => {
    if (Array.isArray(v)) return v;
    const r = splitCommand(v);
    if (!Array.isArray(r)) {
      ctx.issues.push({ code: 'custom', message: r.error, input: v });
      return z.NEVER;
    }
    return r;
  });

/** A duration in milliseconds, written `500ms`, `1m30s` or as seconds. */
export const duration = (desc?: string) => {
  const d = z.union([z.number().nonnegative(), line()]).transform((v, ctx): number => {
    const ms = parseDuration(v);
    if (typeof ms === 'number') return ms;
    ctx.issues.push({ code: 'custom', message: ms.error, input: v });
    return z.NEVER;
  });
  return desc === undefined ? d : d.describe(desc);
};

/** An http:// or https:// URL, or a template that renders one. */
export const httpUrl = () =>
  line().refine((s) => /^https?:\/\/./.test(s) && (hasTemplate(s) || URL.canParse(s)), {
    error: (iss) => `${JSON.stringify(iss.input)} is not an http:// or https:// URL`,
  });

/**
 * Folders that belong to the system: never a folder berth owns (env_dir, files_dir), whose files
 * berth writes and removes. A folder below them (`/etc/berth/env`) is fine.
 */
const SYSTEM_DIRS = new Set([
  '/',
  '/bin',
  '/boot',
  '/dev',
  '/etc',
  '/home',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/opt',
  '/proc',
  '/root',
  '/run',
  '/sbin',
  '/srv',
  '/sys',
  '/tmp',
  '/usr',
  '/usr/bin',
  '/usr/lib',
  '/usr/local',
  '/usr/local/bin',
  '/usr/local/sbin',
  '/usr/sbin',
  '/usr/share',
  '/var',
  '/var/lib',
  '/var/log',
  '/var/run',
  '/var/tmp',
  '/etc/ssh',
  '/etc/systemd',
  '/etc/default',
  '/etc/cron.d',
  '/etc/sudoers.d',
  '/etc/security',
  '/etc/ssl',
]);

/**
 * Why `dir` may not be a folder berth owns, set by `setting` (`env_dir`, `files_dir`), whose
 * default is `dflt`; undefined when it may.
 */
export function ownedDirProblem(setting: string, dir: string, dflt: string): string | undefined {
  const norm = `/${dir
    .split('/')
    .filter((p) => p && p !== '.')
    .join('/')}`;
  if (dir.split('/').includes('..')) return `${setting} ${JSON.stringify(dir)} must not contain ".."`;
  if (SYSTEM_DIRS.has(norm))
    return `${setting} ${JSON.stringify(dir)} is a system folder; berth writes and removes files in ${setting}, so give it a folder of its own (default ${dflt})`;
  return undefined;
}

/** Why `dir` may not be berth's env folder, or undefined when it may. */
export function envDirProblem(dir: string): string | undefined {
  return ownedDirProblem('env_dir', dir, '/etc/berth/env');
}

/** Why `dir` may not be berth's files folder, or undefined when it may. */
export function filesDirProblem(dir: string): string | undefined {
  return ownedDirProblem('files_dir', dir, '/etc/berth/files');
}

/**
 * Why the env folder and the files folder cannot be these two: one inside the other (or the
 * same) would put a service's env file and its files folder on one path.
 */
export function envAndFilesDirProblem(envDir: string, filesDir: string): string | undefined {
  const norm = (d: string) =>
    `/${d
      .split('/')
      .filter((p) => p && p !== '.')
      .join('/')}/`.replace(/^\/\/$/, '/');
  const [e, f] = [norm(envDir), norm(filesDir)];
  if (!e.startsWith(f) && !f.startsWith(e)) return undefined;
  return `the env folder ${JSON.stringify(envDir)} and the files folder ${JSON.stringify(filesDir)} must be apart, neither inside the other: a service's env file and its files folder would share a path`;
}
