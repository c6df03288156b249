import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type Dockerode from 'dockerode';
import { ExternalError } from '../model/errors.js';
import type { ObservedContainer, ObservedImage } from '../model/observed.js';
import type { ContainerCreateSpec, ContainerState, Engine, PullProgress } from './engine.js';
import { dockerHostState, type DockerStateOptions } from './docker-state.js';
import type { HostState } from './host-state.js';
import { registryKey, registryOf, resolveAuth, type AuthConfig, type AuthEnv } from './registry-auth.js';

/** Where docker itself looks when DOCKER_HOST is unset. */
export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';

export interface DockerEngineOptions {
  /** DOCKER_HOST-style endpoint: unix:///path or tcp://host:port. Defaults to $DOCKER_HOST. */
  host?: string;
  /** Where registry credentials are read from (defaults as the docker CLI). */
  auth?: AuthEnv;
  /**
   * How messages name this engine when `host` is not what the user wrote (an SSH-forwarded
   * socket): e.g. `app-1 (admin@10.0.1.11) /var/run/docker.sock`. Default: the endpoint.
   */
  label?: string;
  /**
   * Longest wait for one answer from the engine (default DEFAULT_ENGINE_TIMEOUT_MS). A stop may
   * take its stop timeout more; a pull may take as long as it keeps making progress.
   */
  timeoutMs?: number;
}

/** How long berth waits for one answer from the engine unless told otherwise (`--engine-timeout`). */
export const DEFAULT_ENGINE_TIMEOUT_MS = 60_000;
/** How much of an exec'd command's output is kept (its tail). */
const EXEC_OUTPUT_KEEP = 4096;

/** The endpoint as a dockerode connection; TLS for tcp:// follows DOCKER_TLS_VERIFY as docker does. */
function connection(endpoint: string): Dockerode.DockerOptions {
  const url = new URL(endpoint);
  switch (url.protocol) {
    case 'unix:':
      return { socketPath: decodeURIComponent(url.pathname) };
    case 'tcp:':
    case 'http:':
    case 'https:': {
      const tls = url.protocol === 'https:' || !!process.env.DOCKER_TLS_VERIFY;
      const options: Dockerode.DockerOptions = {
        host: url.hostname,
        port: Number(url.port || (tls ? 2376 : 2375)),
        protocol: tls ? 'https' : 'http',
      };
      if (tls) {
        // As the docker CLI: client certificate and CA from DOCKER_CERT_PATH (default ~/.docker).
        const dir = process.env.DOCKER_CERT_PATH || path.join(homedir(), '.docker');
        const read = (f: string) =>
          existsSync(path.join(dir, f)) ? readFileSync(path.join(dir, f)) : undefined;
        Object.assign(options, { ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem') });
      }
      return options;
    }
    default:
      throw new ExternalError(
        'docker',
        `DOCKER_HOST ${endpoint}: only unix:// and tcp:// engines are supported`,
      );
  }
}

interface EngineApiError extends Error {
  statusCode?: number;
  code?: string;
  json?: { message?: string } | null;
}

/**
 * The Docker engine at DOCKER_HOST (or `opts.host`), through its HTTP API. dockerode is loaded
 * on first use, so commands that never talk to Docker do not pay for it.
 */
export function dockerEngine(opts: DockerEngineOptions = {}): Engine {
  return dockerConnection(opts).engine;
}

/** One engine's containers, and the host state kept beside them (see docker-state.ts), over one client. */
export interface DockerConnection {
  engine: Engine;
  state(opts?: DockerStateOptions): HostState;
}

/**
 * Two parts of the engine client load large libraries when the client loads, for features
 * berth never uses: docker-modem's ssh:// protocol (ssh2) — berth refuses ssh:// (host/target.ts)
 * and reaches remote engines through its own SSH transport, a socket forwarded by OpenSSH — and
 * dockerode's BuildKit build sessions (gRPC and protobuf) — berth pulls images, it never builds
 * them. Together they are a good part of the client's start-up and resident memory. So before
 * the client loads, both modules are entered in node's module cache as already loaded, with
 * stand-ins that refuse; the client then never loads those libraries.
 */
function withoutUnusedParts(): void {
  const fromDockerode = createRequire(createRequire(import.meta.url).resolve('dockerode'));
  const stub = (file: string, what: string) => {
    const cache = fromDockerode.cache;
    if (cache[file]) return;
    const refuse = () => {
      throw new ExternalError('docker', `berth does not use the engine client's ${what}`);
    };
    cache[file] = { id: file, filename: file, loaded: true, exports: refuse } as unknown as NodeJS.Module;
  };
  stub(fromDockerode.resolve('docker-modem/lib/ssh.js'), 'ssh:// protocol (it has its own SSH transport)');
  stub(fromDockerode.resolve('./session.js'), 'BuildKit build sessions (it never builds images)');
}

export function dockerConnection(opts: DockerEngineOptions = {}): DockerConnection {
  const endpoint = opts.host ?? (process.env.DOCKER_HOST || DEFAULT_DOCKER_HOST);
  const shown = opts.label ?? endpoint;
  let client: Promise<Dockerode> | undefined;
  const docker = () =>
    (client ??= (async () => {
      const options = connection(endpoint);
      withoutUnusedParts();
      const { default: Docker } = await import('dockerode');
      return new Docker(options);
    })());

  /** Every failure, as an ExternalError that says which engine and what we were doing. */
  const fail = (what: string, e: unknown): ExternalError => {
    if (e instanceof ExternalError) return e;
    const err = e as EngineApiError;
    if (
      err.code === 'ENOENT' ||
      err.code === 'ECONNREFUSED' ||
      err.code === 'EACCES' ||
      err.code === 'EHOSTUNREACH'
    ) {
      return new ExternalError(
        'docker',
        `cannot reach the Docker engine at ${opts.label ?? `${endpoint} (DOCKER_HOST)`}: ${err.message}`,
        {
          cause: e,
        },
      );
    }
    // Streamed endpoints (pull) leave json empty and put the engine's words in dockerode's
    // "(HTTP code 404) unexpected - ..." message; keep only the engine's words.
    const detail = (err.json?.message ?? err.message).replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
    const status = err.statusCode ? ` (HTTP ${err.statusCode})` : '';
    return new ExternalError('docker', `${what}: ${detail}${status} [${shown}]`, { cause: e });
  };
  const timeoutMs = opts.timeoutMs ?? DEFAULT_ENGINE_TIMEOUT_MS;
  const noAnswer = (what: string, ms: number) =>
    new ExternalError(
      'docker',
      `the Docker engine at ${opts.label ?? `${endpoint} (DOCKER_HOST)`} did not answer within ${seconds(ms)} (${what}); ` +
        `--engine-timeout sets the limit`,
    );
  /** One request to the engine, bounded in time, every failure an ExternalError naming the engine. */
  const call = async <T>(what: string, fn: (d: Dockerode) => Promise<T>, limitMs = timeoutMs): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      if (Number.isFinite(limitMs)) timer = setTimeout(() => reject(noAnswer(what, limitMs)), limitMs);
    });
    try {
      return await Promise.race([docker().then(fn), late]);
    } catch (e) {
      throw fail(what, e);
    } finally {
      clearTimeout(timer);
    }
  };
  const isStatus = (e: unknown, ...codes: number[]) => codes.includes((e as EngineApiError).statusCode ?? -1);

  // One credential lookup per registry and run: a helper may be slow, and a plan asks for
  // every service's tag.
  const auths = new Map<string, Promise<AuthConfig | undefined>>();
  const authFor = (image: string) => {
    const key = registryKey(registryOf(image));
    let a = auths.get(key);
    if (!a) {
      a = resolveAuth(image, opts.auth);
      auths.set(key, a);
    }
    return a;
  };

  const engine: Engine = {
    endpoint,

    ping: () => call('ping', async (d) => void (await d.ping())),

    listContainers: () =>
      call('list containers', async (d) => {
        const list = await d.listContainers({ all: true });
        return Promise.all(
          list.map(async (c): Promise<ObservedContainer> => {
            let image = c.Image;
            // The list shows the image ID instead of Config.Image once the tag has moved to
            // another image (a re-pushed tag pulled again); the ref is what berth compares.
            if (image === c.ImageID || image.startsWith('sha256:')) {
              try {
                image = (await d.getContainer(c.Id).inspect()).Config.Image;
              } catch (e) {
                // Removed between list and inspect: keep what the list said.
                if ((e as EngineApiError).statusCode !== 404) throw e;
              }
            }
            return {
              id: c.Id,
              name: (c.Names[0] ?? '').replace(/^\//, ''),
              state: c.State,
              image,
              imageId: c.ImageID,
              labels: c.Labels ?? {},
            };
          }),
        );
      }),

    listImages: () =>
      call('list images', async (d) => {
        const list = await d.listImages();
        return list.map((i): ObservedImage => ({
          id: i.Id,
          repoTags: (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>'),
          repoDigests: (i.RepoDigests ?? []).filter((t) => !t.startsWith('<none>@')),
        }));
      }),

    remoteDigest: (image) =>
      call(`ask the registry for ${image}`, async (d) => {
        const authconfig = await authFor(image);
        const info = await d.getImage(image).distribution(authconfig ? { authconfig } : {});
        const digest = info?.Descriptor?.digest;
        if (!digest) throw new Error('the engine answered without a digest');
        return digest;
      }),

    pull: (image, onProgress, signal) =>
      call(
        `pull ${image}`,
        async (d) => {
          const authconfig = await authFor(image);
          const pullOpts: Record<string, unknown> = authconfig ? { authconfig } : {};
          if (signal) pullOpts.abortSignal = signal;
          // The request itself gets the usual limit; the transfer after it, its progress watchdog.
          const stream = (await call(`pull ${image}`, (dd) =>
            dd.pull(image, pullOpts),
          )) as NodeJS.ReadableStream;
          const stop = (why: string) =>
            (stream as unknown as { destroy?: (e?: Error) => void }).destroy?.(new Error(why));
          if (signal) {
            if (signal.aborted) stop('pull cancelled');
            else signal.addEventListener('abort', () => stop('pull cancelled'), { once: true });
          }
          // A pull may take minutes, but not minutes without a word: the engine reports progress
          // continually, so a silence as long as the engine timeout means it is stuck.
          let idle: NodeJS.Timeout | undefined;
          const stillGoing = () => {
            clearTimeout(idle);
            idle = setTimeout(
              () => stop(`no progress for ${seconds(timeoutMs)} (--engine-timeout sets the limit)`),
              timeoutMs,
            );
          };
          stillGoing();
          // A failed pull still answers 200: the error arrives as a message inside the stream.
          let streamError: string | undefined;
          try {
            await new Promise<void>((resolve, reject) => {
              d.modem.followProgress(
                stream,
                (err: Error | null) => (err ? reject(err) : resolve()),
                (event: PullEvent) => {
                  stillGoing();
                  if (event.error || event.errorDetail) {
                    streamError ??= event.errorDetail?.message ?? event.error;
                    return;
                  }
                  if (onProgress && event.status) {
                    const p: PullProgress = { status: event.status };
                    if (event.id) p.id = event.id;
                    if (event.progressDetail?.current !== undefined) p.current = event.progressDetail.current;
                    if (event.progressDetail?.total !== undefined) p.total = event.progressDetail.total;
                    onProgress(p);
                  }
                },
              );
            });
          } finally {
            clearTimeout(idle);
          }
          if (streamError) {
            throw new Error(streamError);
          }
        },
        Infinity,
      ),

    create: (spec) =>
      call(`create container ${spec.name}`, async (d) => (await d.createContainer(createOptions(spec))).id),

    start: (id) =>
      call(`start container ${id}`, async (d) => {
        try {
          await d.getContainer(id).start();
        } catch (e) {
          if (!isStatus(e, 304)) throw e; // already running
        }
      }),

    unpause: (id) =>
      call(`unpause container ${id}`, async (d) => {
        await d.getContainer(id).unpause();
      }),

    stop: (id, timeoutSeconds) =>
      call(
        `stop container ${id}`,
        async (d) => {
          try {
            await d.getContainer(id).stop(timeoutSeconds === undefined ? {} : { t: timeoutSeconds });
          } catch (e) {
            if (!isStatus(e, 304)) throw e; // already stopped
          }
        },
        // The engine answers once the container has stopped: up to its stop timeout (10 s by default).
        (timeoutSeconds ?? 10) * 1000 + timeoutMs,
      ),

    remove: (id, o) =>
      call(`remove container ${id}`, async (d) => {
        try {
          await d.getContainer(id).remove({ force: !!o?.force });
        } catch (e) {
          if (!isStatus(e, 404)) throw e; // already gone
        }
      }),

    rename: (id, newName) =>
      call(`rename container ${id} to ${newName}`, async (d) => {
        await d.getContainer(id).rename({ name: newName });
      }),

    kill: (id, signal) =>
      call(`send ${signal} to container ${id}`, async (d) => {
        await d.getContainer(id).kill({ signal });
      }),

    exec: (id, argv, limitMs) =>
      call(
        `run ${JSON.stringify(argv[0] ?? '')} in container ${id}`,
        async (d) => {
          const exec = await d.getContainer(id).exec({ Cmd: argv, AttachStdout: true, AttachStderr: true });
          const stream = await exec.start({ hijack: true, stdin: false });
          let output = '';
          const sink = new Writable({
            write(chunk: Buffer, _enc, done) {
              // Only the tail is kept: a chatty command cannot fill memory.
              output = (output + chunk.toString('utf8')).slice(-EXEC_OUTPUT_KEEP);
              done();
            },
          });
          d.modem.demuxStream(stream, sink, sink);
          await new Promise<void>((resolve, reject) => {
            stream.on('end', resolve);
            stream.on('close', resolve);
            stream.on('error', reject);
          });
          const info = await exec.inspect();
          return { exitCode: info.ExitCode ?? -1, output };
        },
        limitMs,
      ),

    inspect: (id) =>
      call(`inspect container ${id}`, async (d) => {
        const c = await d.getContainer(id).inspect();
        const state: ContainerState = {
          id: c.Id,
          name: c.Name.replace(/^\//, ''),
          status: c.State.Status,
          running: c.State.Running,
          exitCode: c.State.ExitCode,
          imageId: c.Image,
          env: c.Config.Env ?? [],
          labels: c.Config.Labels ?? {},
        };
        if (c.State.Health?.Status) state.health = c.State.Health.Status;
        const log = (c.State.Health as { Log?: Array<{ Output?: string }> } | undefined)?.Log;
        const last = log?.[log.length - 1]?.Output?.trim();
        if (last) state.healthOutput = last;
        return state;
      }),
  };
  return { engine, state: (stateOpts) => dockerHostState(docker, call, shown, stateOpts) };
}

function seconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 100) / 10} s`;
}

interface PullEvent {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
}

/** ContainerCreateSpec in Engine API terms (POST /containers/create). */
export function createOptions(spec: ContainerCreateSpec): Dockerode.ContainerCreateOptions {
  const hostConfig: Dockerode.HostConfig = {
    NetworkMode: spec.networkMode,
    RestartPolicy: {
      Name: spec.restartPolicy.name,
      MaximumRetryCount: spec.restartPolicy.maximumRetryCount ?? 0,
    },
    Init: spec.init,
    Binds: spec.binds,
  };
  if (spec.fileMounts?.length) {
    // Mounts, not Binds: a missing source is an error, where a bind would make it a folder.
    hostConfig.Mounts = spec.fileMounts.map((m) => ({
      Type: 'bind' as const,
      Source: m.source,
      Target: m.target,
      ReadOnly: true,
    }));
  }
  if (spec.logDriver !== undefined || Object.keys(spec.logOptions).length > 0) {
    // An empty Type means the engine's default driver, with these options.
    hostConfig.LogConfig = { Type: spec.logDriver ?? '', Config: spec.logOptions };
  }
  const options: Dockerode.ContainerCreateOptions = {
    name: spec.name,
    Image: spec.image,
    Env: spec.env,
    Labels: spec.labels,
    HostConfig: hostConfig,
  };
  if (spec.cmd) options.Cmd = spec.cmd;
  if (spec.entrypoint) options.Entrypoint = spec.entrypoint;
  if (spec.user !== undefined) options.User = spec.user;
  if (spec.workingDir !== undefined) options.WorkingDir = spec.workingDir;
  if (spec.stopSignal !== undefined) options.StopSignal = spec.stopSignal;
  if (spec.stopTimeout !== undefined) options.StopTimeout = spec.stopTimeout;
  return options;
}
