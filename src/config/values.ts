import { createRequire } from 'node:module';
import type { parse } from 'shell-quote';

// Loaded on the first command line split, not by every command that reads a duration flag.
let shellParse: typeof parse | undefined;
const splitShell: typeof parse = (...args) =>
  (shellParse ??= (createRequire(import.meta.url)('shell-quote') as { parse: typeof parse }).parse)(...args);

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;

/**
 * A duration in milliseconds: a string such as `500ms`, `5s`, `1m30s`, or a bare number of
 * seconds (YAML gives `30` as a number, and seconds is what docker compose users expect).
 * Returns an error message instead when the value cannot be read.
 */
export function parseDuration(value: number | string): number | { error: string } {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) return { error: `expected a duration, got ${value}` };
    return Math.round(value * 1000);
  }
  if (!DURATION.test(value)) {
    return { error: `invalid duration "${value}": use a number with a unit, e.g. 500ms, 5s, 1m, 1m30s` };
  }
  let ms = 0;
  for (const m of value.matchAll(DURATION_PART)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  return Math.round(ms);
}

// Templates hold spaces and quotes that must survive splitting as one opaque piece.
const TEMPLATE = /\{\{.*?\}\}/g;
const MARK = '\u0001';

/**
 * Split a command line into argv the way a POSIX shell would quote it, without running a shell.
 * `$VAR` stays literal (docker's exec form does not expand it) and `{{ templates }}` stay whole.
 * Shell operators are refused: with no shell to run them they would silently become arguments.
 */
export function splitCommand(line: string): string[] | { error: string } {
  if (line.includes(MARK)) return { error: 'contains a control character' };
  // Each argument is rendered on its own, so a block could not span the arguments it would choose.
  if (line.includes('{%')) {
    return {
      error:
        'a "{% %}" block cannot be used in a one-line command, which is split into arguments before it is ' +
        'rendered; write the command as a list, with the block inside one item, e.g. ' +
        '["serve", "--log={% if host.vars.debug | default(false) %}debug{% else %}info{% endif %}"]',
    };
  }
  const templates: string[] = [];
  const masked = line
    .replace(TEMPLATE, (t) => `${MARK}t${templates.push(t) - 1}${MARK}`)
    .replace(/\$/g, `${MARK}d${MARK}`);
  const unmask = (s: string): string =>
    s.replace(new RegExp(`${MARK}(t(\\d+)|d)${MARK}`, 'g'), (_m, kind: string, i?: string) =>
      kind === 'd' ? '$' : templates[Number(i)]!,
    );
  const argv: string[] = [];
  for (const entry of splitShell(masked)) {
    if (typeof entry === 'string') argv.push(unmask(entry));
    else if ('op' in entry && entry.op === 'glob') argv.push(unmask(entry.pattern));
    else if ('op' in entry) {
      return {
        error:
          `shell operator "${entry.op}" is not supported: berth runs the command without a shell; ` +
          `write it as a list, e.g. ["sh", "-c", "..."], to use one`,
      };
    } else {
      return { error: 'a "#" comment is not supported in a command; quote the "#" if it is an argument' };
    }
  }
  if (argv.length === 0) return { error: 'the command is empty' };
  return argv;
}
