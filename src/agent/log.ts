import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The agent's log: pino, one JSON object a line when the output is not a terminal (journald,
 * docker logs, a collector), a short readable line on a terminal. What is logged is commits,
 * services, plans' causes and reasons, never an env value; the redaction below is a second
 * line of defence for fields that must never be printed should one slip into a log call.
 */
export function agentLogger(
  opts: {
    level?: string;
    stream?: NodeJS.WritableStream;
    pretty?: boolean;
    base?: Record<string, unknown>;
  } = {},
): Logger {
  const out = opts.stream ?? process.stdout;
  const pretty = opts.pretty ?? Boolean((out as NodeJS.WriteStream).isTTY);
  return pino(
    {
      level: opts.level ?? 'info',
      base: { ...opts.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: [
          'token',
          '*.token',
          'password',
          '*.password',
          'secret',
          '*.secret',
          'authorization',
          '*.authorization',
        ],
        censor: '<redacted>',
      },
    },
    pretty ? readable(out) : out,
  );
}

const SKIP = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

/** One readable line per record for a person at a terminal: time, level, message, key=value. */
function readable(out: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        let rec: Record<string, unknown>;
        try {
          rec = JSON.parse(line) as Record<string, unknown>;
        } catch {
          out.write(`${line}\n`);
          continue;
        }
        const time = typeof rec.time === 'string' ? rec.time.slice(11, 19) : '';
        const fields = Object.entries(rec)
          .filter(([k]) => !SKIP.has(k))
          .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
          .join(' ');
        out.write(
          `${time} ${String(rec.level).padEnd(5)} ${String(rec.msg ?? '')}${fields ? `  ${fields}` : ''}\n`,
        );
      }
      done();
    },
  });
}
