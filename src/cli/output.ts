import type { PullProgress } from '../adapters/engine.js';
import type { Reporter } from '../apply/execute.js';

/** Colours only for a person at a terminal; NO_COLOR and pipes get plain text. */
export function useColor(stream: NodeJS.WriteStream = process.stdout): boolean {
  return Boolean(stream.isTTY) && !process.env.NO_COLOR && process.env.TERM !== 'dumb';
}

const codes = { red: 31, green: 32, yellow: 33, cyan: 36, dim: 2, bold: 1 } as const;
export type Color = keyof typeof codes;

export function paint(on: boolean, color: Color, text: string): string {
  return on ? `\u001b[${codes[color]}m${text}\u001b[0m` : text;
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Colour the kind column of plan text lines so a person sees the shape of a plan at a glance. */
export function colorPlan(text: string, on: boolean): string {
  if (!on) return text;
  const kindColor: Record<string, Color> = {
    create: 'green',
    recreate: 'yellow',
    adopt: 'yellow',
    start: 'cyan',
    unpause: 'cyan',
    'remove-env': 'red',
    remove: 'red',
    pull: 'dim',
    'write-env': 'dim',
  };
  return text
    .split('\n')
    .map((line) => {
      if (line.startsWith('warning:')) return paint(on, 'yellow', line);
      if (line.startsWith('blocked:')) return paint(on, 'red', line);
      const m = /^( {2}\S+\s+)(\S+)(.*)$/.exec(line);
      const color = m ? kindColor[m[2]!] : undefined;
      return m && color ? m[1] + paint(on, color, m[2]!) + m[3] : line;
    })
    .join('\n');
}

/**
 * Progress for apply. On a terminal, pulls show one live line each (they can take minutes);
 * piped output gets one plain line per finished step, so logs stay readable.
 */
export function consoleReporter(stream: NodeJS.WriteStream = process.stderr): Reporter {
  const tty = Boolean(stream.isTTY);
  const color = useColor(stream);
  const layers = new Map<string, Map<string, { current: number; total: number; done: boolean }>>();
  let lastDraw = 0;
  return {
    pullProgress(image: string, p: PullProgress) {
      if (!tty || !p.id) return;
      const l = layers.get(image) ?? new Map();
      layers.set(image, l);
      const prev = l.get(p.id) ?? { current: 0, total: 0, done: false };
      if (p.total) prev.total = p.total;
      if (p.current !== undefined) prev.current = p.current;
      if (/complete|already exists/i.test(p.status)) prev.done = true;
      l.set(p.id, prev);
      const now = Date.now();
      if (now - lastDraw < 100) return;
      lastDraw = now;
      const all = [...l.values()];
      const cur = all.reduce((a, x) => a + (x.done ? x.total : x.current), 0);
      const tot = all.reduce((a, x) => a + x.total, 0);
      const pct = tot ? Math.floor((cur / tot) * 100) : 0;
      stream.write(
        `\r\u001b[2K  pulling ${image}  ${all.filter((x) => x.done).length}/${all.length} layers  ${pct}%`,
      );
    },
    step(service, kind, status, message) {
      if (status === 'start') {
        if (tty) stream.write(`\r\u001b[2K  ${service}  ${kind} …`);
        return;
      }
      const mark = status === 'ok' ? paint(color, 'green', 'ok') : paint(color, 'red', 'failed');
      const line = `  ${service}  ${kind}  ${mark}${message ? `: ${message}` : ''}`;
      stream.write(tty ? `\r\u001b[2K${line}\n` : `${line}\n`);
    },
  };
}
