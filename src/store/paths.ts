import { homedir } from 'node:os';
import path from 'node:path';

/** What decides the default store location; injectable so tests need not run as root. */
export interface StorePathEnv {
  uid?: number;
  env?: NodeJS.ProcessEnv;
  home?: string;
}

/**
 * Where the SQLite deployment record lives when `--store` is not given.
 *
 * Root (the agent, `apply` from a unit) writes the host's shared record under /var/lib/berth, as
 * a system service would. Anyone else gets a per-user file under the XDG state dir, because
 * history is state (not config, not cache) and must survive cache cleaning.
 */
export function defaultStorePath(ctx: StorePathEnv = {}): string {
  const uid = 'uid' in ctx ? ctx.uid : process.getuid?.();
  if (uid === 0) return '/var/lib/berth/berth.db';
  const env = ctx.env ?? process.env;
  // The XDG spec says relative values are invalid and must be ignored.
  const xdg = env.XDG_STATE_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(ctx.home ?? homedir(), '.local', 'state');
  return path.join(base, 'berth', 'berth.db');
}
