import http from 'node:http';

/**
 * A steady load of GET requests from this process (HTTP, no keep-alive), bounded in count and
 * time, that counts failures and the versions that answered: how the zero-downtime tests see
 * what a client of the load balancer sees.
 */
export function steadyLoad(url: string, opts = { workers: 4, maxRequests: 40_000, maxMs: 180_000 }) {
  let stop = false;
  let sent = 0;
  const failures: string[] = [];
  const versions = new Map<string, number>();
  const started = Date.now();
  const once = () =>
    new Promise<void>((resolve) => {
      const req = http.get(url, { agent: false, timeout: 5_000 }, (res) => {
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
    while (!stop && sent < opts.maxRequests && Date.now() - started < opts.maxMs) {
      sent++;
      await once();
    }
  };
  const running = Promise.all(Array.from({ length: opts.workers }, worker));
  return {
    async finish() {
      stop = true;
      await running;
      return { sent, failures, versions: Object.fromEntries(versions) };
    },
  };
}

/** The steady load on a load balancer's frontend, asking each backend for its `/version`. */
export function load(frontend: string, opts = { workers: 4, maxRequests: 40_000, maxMs: 120_000 }) {
  return steadyLoad(`${frontend}/version`, opts);
}
