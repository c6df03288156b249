import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';

/** Thrown by a `waitUntil` check to stop waiting at once (the process we wait for died). */
export class GiveUp extends Error {}

/**
 * Wait for `check` to return true, polling; gives up after `timeoutMs` with `what` in the error.
 * A check that throws counts as "not yet", except for GiveUp, which ends the wait.
 */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean> | boolean,
  { timeoutMs = 30_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // Bounded in count too, so a clock jump cannot turn this into an endless loop.
  const maxTries = Math.ceil(timeoutMs / intervalMs) + 1;
  for (let i = 0; i < maxTries && Date.now() <= deadline; i++) {
    let ok = false;
    try {
      ok = await check();
    } catch (e) {
      if (e instanceof GiveUp) throw e;
    }
    if (ok) return;
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Whether a process with this PID exists (and is not a zombie we could reap). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers signal 0; it is as good as gone.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone: that is what we wanted.
  }
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL and wait again: the process is gone afterwards. */
export async function stopPid(pid: number, graceMs = 15_000): Promise<void> {
  if (!alive(pid)) return;
  signal(pid, 'SIGTERM');
  try {
    await waitUntil(`pid ${pid} to exit`, () => !alive(pid), { timeoutMs: graceMs, intervalMs: 50 });
    return;
  } catch {
    signal(pid, 'SIGKILL');
  }
  await waitUntil(`pid ${pid} to die after SIGKILL`, () => !alive(pid), { timeoutMs: 5_000, intervalMs: 50 });
}

/** SIGKILL now, without waiting: for the process-exit safety net. */
export function killNow(pid: number): void {
  signal(pid, 'SIGKILL');
}

interface ProcInfo {
  pid: number;
  ppid: number;
  cmdline: string;
}

/** Every process on the machine with its parent and command line (from /proc). */
export function processes(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      out.push({ pid: Number(entry), ppid, cmdline });
    } catch {
      // Exited while we looked.
    }
  }
  return out;
}

/**
 * Kill, by PID, every process whose command line mentions `marker` (a private temp dir) and all
 * their descendants, deepest first. Used when a daemon died without cleaning up after itself,
 * e.g. containerd shims whose containers would keep loopback ports bound.
 */
export async function killTree(marker: string): Promise<void> {
  const all = processes();
  const roots = all.filter((p) => p.cmdline.includes(marker) && p.pid !== process.pid);
  const doomed = new Set<number>();
  const visit = (pid: number) => {
    if (doomed.has(pid)) return;
    for (const c of all.filter((p) => p.ppid === pid)) visit(c.pid);
    doomed.add(pid);
  };
  for (const r of roots) visit(r.pid);
  for (const pid of doomed) signal(pid, 'SIGKILL');
  await waitUntil(`processes under ${marker} to die`, () => [...doomed].every((p) => !alive(p)), {
    timeoutMs: 5_000,
    intervalMs: 50,
  }).catch(() => undefined);
}

/** Unmount everything mounted at or below `dir`, deepest first; errors are ignored. */
export async function unmountUnder(dir: string): Promise<void> {
  let mountinfo: string;
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return;
  }
  const points = mountinfo
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p && (p === dir || p.startsWith(dir + '/')))
    // mountinfo escapes spaces etc. as octal; our paths have none, but decode to be exact.
    .map((p) => p.replace(/\\(\d{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))))
    .sort((a, b) => b.length - a.length);
  for (const p of points) {
    await new Promise<void>((resolve) => execFile('umount', ['-l', p], { timeout: 5_000 }, () => resolve()));
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** One bounded HTTP request: over a unix socket when `socketPath` is given, else to `url`'s host. */
export function httpRequest(opts: {
  socketPath?: string;
  url: string;
  method?: string;
  timeoutMs?: number;
}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(opts.url);
    const req = http.request(
      {
        socketPath: opts.socketPath,
        host: opts.socketPath ? undefined : u.hostname,
        port: opts.socketPath ? undefined : u.port,
        path: u.pathname + u.search,
        method: opts.method ?? 'GET',
        timeout: opts.timeoutMs ?? 5_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${opts.url}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

const exitKills = new Set<number>();
let exitHookInstalled = false;

/**
 * Remember a PID to SIGKILL if the test process exits without stopping it (a crashed or
 * interrupted test run), so no daemon outlives its test. `stop()` forgets it again.
 */
export function killOnExit(pid: number): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const p of exitKills) killNow(p);
    });
  }
  exitKills.add(pid);
  return () => exitKills.delete(pid);
}
