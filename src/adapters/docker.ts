import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { ExternalError } from '../model/errors.js';
import type { ObservedContainer, ObservedImage } from '../model/observed.js';
import type { ContainerCreateSpec, ContainerState, Engine, PullProgress } from './engine.js';
import {
  engineApi,
  followProgress,
  registryAuthHeader,
  type ApiContainerInspect,
  type ApiContainerSummary,
  type ApiDistribution,
  type ApiImageSummary,
  type EngineAddress,
  type EngineApi,
} from './engine-api.js';
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
}

/** Where the endpoint listens; TLS for tcp:// follows DOCKER_TLS_VERIFY as docker does. */
function connection(endpoint: string): EngineAddress {
  const url = new URL(endpoint);
  switch (url.protocol) {
    case 'unix:':
      return { socketPath: decodeURIComponent(url.pathname) };
    case 'tcp:':
    case 'http:':
    case 'https:': {
      const tls = url.protocol === 'https:' || !!process.env.DOCKER_TLS_VERIFY;
      const options: EngineAddress = {
        host: url.hostname,
        port: Number(url.port || (tls ? 2376 : 2375)),
      };
      if (tls) {
        // As the docker CLI: client certificate and CA from DOCKER_CERT_PATH (default ~/.docker).
        const dir = process.env.DOCKER_CERT_PATH || path.join(homedir(), '.docker');
        const read = (f: string) =>
          existsSync(path.join(dir, f)) ? readFileSync(path.join(dir, f)) : undefined;
        options.tls = { ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem') };
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

/** A failed call: an answer of the engine (engine-api.ts), or node's own connection error. */
interface CallFailure extends Error {
  statusCode?: number;
  code?: string;
  json?: { message?: string } | null;
}

/** The Docker engine at DOCKER_HOST (or `opts.host`), through its HTTP API (engine-api.ts). */
export function dockerEngine(opts: DockerEngineOptions = {}): Engine {
  return dockerConnection(opts).engine;
}

/** One engine's containers, and the host state kept beside them (see docker-state.ts), over one client. */
export interface DockerConnection {
  engine: Engine;
  state(opts?: DockerStateOptions): HostState;
}

export function dockerConnection(opts: DockerEngineOptions = {}): DockerConnection {
  const endpoint = opts.host ?? (process.env.DOCKER_HOST || DEFAULT_DOCKER_HOST);
  let client: Promise<EngineApi> | undefined;
  const docker = () => (client ??= (async () => engineApi(connection(endpoint)))());

  /** Every failure, as an ExternalError that says which engine and what we were doing. */
  const fail = (what: string, e: unknown): ExternalError => {
    if (e instanceof ExternalError) return e;
    const err = e as CallFailure;
    if (
      err.code === 'ENOENT' ||
      err.code === 'ECONNREFUSED' ||
      err.code === 'EACCES' ||
      err.code === 'EHOSTUNREACH'
    ) {
      return new ExternalError(
        'docker',
        `cannot reach the Docker engine at ${endpoint} (DOCKER_HOST): ${err.message}`,
        {
          cause: e,
        },
      );
    }
    const detail = (err.json?.message ?? err.message).trim();
    const status = err.statusCode ? ` (HTTP ${err.statusCode})` : '';
    return new ExternalError('docker', `${what}: ${detail}${status} [${endpoint}]`, { cause: e });
  };
  const call = async <T>(what: string, fn: (d: EngineApi) => Promise<T>): Promise<T> => {
    try {
      return await fn(await docker());
    } catch (e) {
      throw fail(what, e);
    }
  };
  const isStatus = (e: unknown, ...codes: number[]) => codes.includes((e as CallFailure).statusCode ?? -1);

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

    ping: () => call('ping', async (d) => void (await d.json('GET', '/_ping'))),

    listContainers: () =>
      call('list containers', async (d) => {
        const list = await d.json<ApiContainerSummary[]>('GET', '/containers/json', { query: { all: true } });
        return Promise.all(
          list.map(async (c): Promise<ObservedContainer> => {
            let image = c.Image;
            // The list shows the image ID instead of Config.Image once the tag has moved to
            // another image (a re-pushed tag pulled again); the ref is what berth compares.
            if (image === c.ImageID || image.startsWith('sha256:')) {
              try {
                image = (await d.json<ApiContainerInspect>('GET', `/containers/${c.Id}/json`)).Config.Image;
              } catch (e) {
                // Removed between list and inspect: keep what the list said.
                if ((e as CallFailure).statusCode !== 404) throw e;
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
        const list = await d.json<ApiImageSummary[]>('GET', '/images/json');
        return list.map((i): ObservedImage => ({
          id: i.Id,
          repoTags: (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>'),
          repoDigests: (i.RepoDigests ?? []).filter((t) => !t.startsWith('<none>@')),
        }));
      }),

    remoteDigest: (image) =>
      call(`ask the registry for ${image}`, async (d) => {
        const authconfig = await authFor(image);
        const info = await d.json<ApiDistribution>('GET', `/distribution/${encodeURI(image)}/json`, {
          headers: authconfig ? registryAuthHeader(authconfig) : {},
        });
        const digest = info?.Descriptor?.digest;
        if (!digest) throw new Error('the engine answered without a digest');
        return digest;
      }),

    pull: (image, onProgress, signal) =>
      call(`pull ${image}`, async (d) => {
        const authconfig = await authFor(image);
        const stream = await d.stream('POST', '/images/create', {
          query: fromImage(image),
          headers: authconfig ? registryAuthHeader(authconfig) : {},
          signal,
        });
        if (signal) {
          const stop = () => stream.destroy(new Error('pull cancelled'));
          if (signal.aborted) stop();
          else signal.addEventListener('abort', stop, { once: true });
        }
        // A failed pull still answers 200: the error arrives as a message inside the stream.
        let streamError: string | undefined;
        await followProgress(stream, (e) => {
          const event = e as PullEvent;
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
        });
        if (streamError) {
          throw new Error(streamError);
        }
      }),

    create: (spec) =>
      call(`create container ${spec.name}`, async (d) => {
        const { name, ...body } = createOptions(spec);
        return (await d.json<{ Id: string }>('POST', '/containers/create', { query: { name }, body })).Id;
      }),

    start: (id) =>
      call(`start container ${id}`, async (d) => {
        try {
          await d.json('POST', `/containers/${id}/start`);
        } catch (e) {
          if (!isStatus(e, 304)) throw e; // already running
        }
      }),

    stop: (id, timeoutSeconds) =>
      call(`stop container ${id}`, async (d) => {
        try {
          await d.json('POST', `/containers/${id}/stop`, { query: { t: timeoutSeconds } });
        } catch (e) {
          if (!isStatus(e, 304)) throw e; // already stopped
        }
      }),

    remove: (id, o) =>
      call(`remove container ${id}`, async (d) => {
        try {
          await d.json('DELETE', `/containers/${id}`, { query: { force: !!o?.force } });
        } catch (e) {
          if (!isStatus(e, 404)) throw e; // already gone
        }
      }),

    rename: (id, newName) =>
      call(`rename container ${id} to ${newName}`, async (d) => {
        await d.json('POST', `/containers/${id}/rename`, { query: { name: newName } });
      }),

    inspect: (id) =>
      call(`inspect container ${id}`, async (d) => {
        const c = await d.json<ApiContainerInspect>('GET', `/containers/${id}/json`);
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
        const log = c.State.Health?.Log;
        const last = log?.[log.length - 1]?.Output?.trim();
        if (last) state.healthOutput = last;
        return state;
      }),
  };
  return { engine, state: (stateOpts) => dockerHostState(docker, call, endpoint, stateOpts) };
}

interface PullEvent {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
}

/**
 * An image reference as POST /images/create takes it: the repository, and the tag or digest
 * (`latest` when neither is given), as the docker CLI sends it.
 */
export function fromImage(image: string): { fromImage: string; tag: string } {
  const at = image.indexOf('@');
  if (at >= 0) return { fromImage: image.slice(0, at), tag: image.slice(at + 1) };
  const colon = image.lastIndexOf(':');
  // A colon before the last slash belongs to a registry's port, not to a tag.
  if (colon > image.lastIndexOf('/'))
    return { fromImage: image.slice(0, colon), tag: image.slice(colon + 1) };
  return { fromImage: image, tag: 'latest' };
}

/** The body of POST /containers/create, as far as berth sets it; `name` goes in the query. */
interface ContainerCreateBody {
  name: string;
  Image: string;
  Env: string[];
  Labels: Record<string, string>;
  HostConfig: {
    NetworkMode: string;
    RestartPolicy: { Name: string; MaximumRetryCount: number };
    Init: boolean;
    Binds: string[];
    LogConfig?: { Type: string; Config: Record<string, string> };
  };
  Cmd?: string[];
  Entrypoint?: string[];
  User?: string;
  WorkingDir?: string;
  StopSignal?: string;
  StopTimeout?: number;
}

/** ContainerCreateSpec in Engine API terms (POST /containers/create). */
export function createOptions(spec: ContainerCreateSpec): ContainerCreateBody {
  const hostConfig: ContainerCreateBody['HostConfig'] = {
    NetworkMode: spec.networkMode,
    RestartPolicy: {
      Name: spec.restartPolicy.name,
      MaximumRetryCount: spec.restartPolicy.maximumRetryCount ?? 0,
    },
    Init: spec.init,
    Binds: spec.binds,
  };
  if (spec.logDriver !== undefined || Object.keys(spec.logOptions).length > 0) {
    // An empty Type means the engine's default driver, with these options.
    hostConfig.LogConfig = { Type: spec.logDriver ?? '', Config: spec.logOptions };
  }
  const options: ContainerCreateBody = {
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
