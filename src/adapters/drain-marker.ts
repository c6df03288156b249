import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { LbState } from '../providers/drain/types.js';
import { hostFiles } from './fs.js';

/**
 * A note that berth took this host out of rotation, written before the drain and removed after
 * the host is back. If berth dies in between, the next apply finds it and puts the host back
 * into the state it had before, so no host stays drained by berth.
 */
export interface DrainMarker {
  read(): Promise<LbState | undefined>;
  write(previous: LbState): Promise<void>;
  clear(): Promise<void>;
}

export function drainMarker(stateDir: string, endpoint: string): DrainMarker {
  const file = path.join(
    stateDir,
    'drained',
    `${createHash('sha256').update(endpoint).digest('hex').slice(0, 16)}.json`,
  );
  return {
    async read() {
      try {
        const v = JSON.parse(await fsp.readFile(file, 'utf8')) as { previous?: LbState };
        return v.previous ?? 'ready';
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        return 'ready'; // a torn marker still means berth drained this host
      }
    },
    write: (previous) => hostFiles.writeAtomic(file, JSON.stringify({ previous, endpoint }) + '\n', 0o600),
    clear: () => hostFiles.remove(file),
  };
}
