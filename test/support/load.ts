import http from 'node:http';

/** What a steady load saw. */
export interface LoadResult {
  sent: number;
  failures: string[];
  /** Answers by body (the version a server reported) and how many. */
  versions: Record<string, number>;
}

/**
 * A steady load of GET `path` through `frontend` from this process, each request on a connection
 * of its own: bounded in count and time, counting every failure (a non-200 or a broken
 * connection). `finish()` stops it and says what it saw.
 */
export function steadyLoad(
  frontend: string,
  opts: { path?: string; workers?: number; maxRequests?: number; maxMs?: number } = {},
): { finish(): Promise<LoadResult> } {
  const { path = '/version', workers = 4, maxRequests = 40_000, maxMs = 180_000 } = opts;
  let stop = false;
  let sent = 0;
  const failures: string[] = [];
  const versions = new Map<string, number>();
  const started = Date.now();
  const once = () =>
    new Promise<void>((resolve) => {
      const req = http.get(`${frontend}${path}`, { agent: false, timeout: 5_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          if (res.statusCode === 200) versions.set(body.trim(), (versions.get(body.trim()) ?? 0) + 1);
          else failures.push(`HTTP ${res.statusCode}`);
          resolve();
        });
        res.on('error', (e) => {
          failures.push(e.message);
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (e) => {
        failures.push(e.message);
        resolve();
      });
    });
  const worker = async () => {
    while (!stop && sent < maxRequests && Date.now() - started < maxMs) {
      sent++;
      await once();
    }
  };
  const running = Promise.all(Array.from({ length: workers }, worker));
  return {
    async finish() {
      stop = true;
      await running;
      return { sent, failures, versions: Object.fromEntries(versions) };
    },
  };
}
