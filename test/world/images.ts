import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';

/** How a test image behaves when run. */
export type TestImageBehaviour =
  /** busybox httpd on $BIND:$PORT serving /www/version. */
  | 'serve'
  /** Serves, and has a Docker HEALTHCHECK (1 s interval) that passes. */
  | 'healthy'
  /** Serves, but its Docker HEALTHCHECK always fails. */
  | 'unhealthy'
  /** Prints its version and exits at once with `exitCode` (default 1). */
  | 'exit'
  /**
   * A config-driven server: serves the content of the mounted file $CONF (default
   * /etc/web.conf) at /version, and rereads it on SIGHUP; a file that says "broken" takes
   * /version away, so an http health check on it fails.
   */
  | 'reload';

export interface TestImageOptions {
  /** Served at /www/version and printed on start; also the `test.version` label. */
  version: string;
  /** Port used when the container has no PORT env (default 18080). Set PORT per test: engines share the host network. */
  port?: number;
  behaviour?: TestImageBehaviour;
  exitCode?: number;
  labels?: Record<string, string>;
}

const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p)) ?? '/bin/busybox';

/**
 * Build an image FROM scratch holding only busybox-static, with the docker CLI against the
 * engine at `dockerHost` (legacy builder: engine 20.10 without buildx). Nothing is pulled.
 * The server binds $BIND (default 127.0.0.1) so simulated hosts can each use a loopback address.
 */
export async function buildTestImage(dockerHost: string, tag: string, opts: TestImageOptions): Promise<void> {
  const ctx = mkdtempSync('/tmp/bw-img-');
  try {
    mkdirSync(path.join(ctx, 'rootfs/bin'), { recursive: true });
    mkdirSync(path.join(ctx, 'rootfs/www'), { recursive: true });
    mkdirSync(path.join(ctx, 'rootfs/tmp'), { recursive: true });
    copyFileSync(BUSYBOX, path.join(ctx, 'rootfs/bin/busybox'));
    // /bin/sh lets HEALTHCHECK and CMD use the shell form.
    symlinkSync('busybox', path.join(ctx, 'rootfs/bin/sh'));
    writeFileSync(path.join(ctx, 'rootfs/www/version'), `${opts.version}\n`);
    writeFileSync(path.join(ctx, 'Dockerfile'), dockerfile(opts));
    await docker(dockerHost, ['build', '--quiet', '--tag', tag, ctx], 120_000);
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}

function dockerfile(opts: TestImageOptions): string {
  const behaviour = opts.behaviour ?? 'serve';
  const labels = { 'test.version': opts.version, ...opts.labels };
  // sh as PID 1 with a TERM trap: stops at once even without --init (a bare httpd as PID 1
  // would ignore SIGTERM and every stop would wait the full timeout).
  const serve =
    'trap "exit 0" TERM INT; echo "$VERSION listening on $BIND:$PORT"; ' +
    '/bin/busybox httpd -f -p "$BIND:$PORT" -h /www & wait';
  // PID 1 traps HUP and copies the file into what httpd serves (by rename: no reader sees
  // half of it); `wait` returns on each signal, so it waits again until httpd is gone.
  const reload =
    'CONF=${CONF:-/etc/web.conf}; load() { if busybox grep -q broken "$CONF"; then busybox rm -f /www/version; ' +
    'else busybox cp "$CONF" /www/.next && busybox mv /www/.next /www/version; fi; }; ' +
    'trap load HUP; trap "exit 0" TERM INT; load; echo "$VERSION listening on $BIND:$PORT"; ' +
    '/bin/busybox httpd -f -p "$BIND:$PORT" -h /www & pid=$!; ' +
    'while kill -0 $pid 2>/dev/null; do wait $pid; done';
  const run =
    behaviour === 'exit'
      ? `echo "$VERSION exiting"; exit ${opts.exitCode ?? 1}`
      : behaviour === 'reload'
        ? reload
        : serve;
  const lines = [
    'FROM scratch',
    'COPY rootfs/ /',
    `ENV PATH=/bin VERSION=${JSON.stringify(opts.version)} BIND=127.0.0.1 PORT=${opts.port ?? 18080}`,
    `LABEL ${Object.entries(labels)
      .map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`)
      .join(' ')}`,
  ];
  if (behaviour === 'healthy') {
    lines.push(
      'HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD busybox wget -q -O- "http://$BIND:$PORT/version"',
    );
  } else if (behaviour === 'unhealthy') {
    lines.push(
      'HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD busybox sh -c "echo version check failed; exit 1"',
    );
  }
  lines.push(`CMD ["/bin/busybox", "sh", "-c", ${JSON.stringify(run)}]`, '');
  return lines.join('\n');
}

/** `docker push ref` to a loopback registry, through the engine at `dockerHost`. */
export async function pushImage(dockerHost: string, ref: string): Promise<void> {
  await docker(dockerHost, ['push', '--quiet', ref], 120_000);
}

/** `docker tag src dst`. */
export async function tagImage(dockerHost: string, src: string, dst: string): Promise<void> {
  await docker(dockerHost, ['tag', src, dst], 30_000);
}

// The CLI gets an empty config dir of its own so a developer's ~/.docker (credential helpers,
// contexts) cannot change what tests do.
let cliConfigDir: string | undefined;

/** Run the docker CLI against `dockerHost`, bounded in time; rejects with its stderr. */
export function docker(dockerHost: string, args: string[], timeoutMs = 60_000): Promise<string> {
  if (cliConfigDir === undefined) {
    const dir = mkdtempSync('/tmp/bw-cli-');
    cliConfigDir = dir;
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DOCKER_HOST: dockerHost,
    DOCKER_CONFIG: cliConfigDir,
    DOCKER_CLI_HINTS: 'false',
  };
  delete env.DOCKER_CONTEXT;
  return new Promise((resolve, reject) => {
    execFile('docker', args, { env, timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`docker ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}
