import type { ObservedContainer, ObservedImage } from '../model/observed.js';

import type { ContainerCreateSpec } from '../model/container.js';

export type { ContainerCreateSpec };

export interface PullProgress {
  /** Layer id, when the message is about one layer. */
  id?: string;
  status: string;
  current?: number;
  total?: number;
}

export interface ContainerState {
  id: string;
  name: string;
  status: string;
  running: boolean;
  exitCode: number;
  /** Docker HEALTHCHECK status when the image has one: starting, healthy, unhealthy. */
  health?: string;
  /** Output of the last Docker HEALTHCHECK run, as the engine keeps it (may be empty). */
  healthOutput?: string;
  imageId: string;
  env: string[];
  labels: Record<string, string>;
}

/**
 * The network as the engine's host sees it, when berth runs elsewhere (over SSH): health checks
 * must test what the host reaches (its own 127.0.0.1, its private network), not what the
 * machine running berth does.
 */
export interface HostNetwork {
  /** The host's name, for check output (`from app-1`). */
  readonly from: string;
  /** A local unix socket whose connections reach HOST:PORT from the host. */
  socketTo(host: string, port: number): Promise<string>;
  /** Whether HOST:PORT accepts a TCP connection from the host, within `timeoutMs`. */
  tcpCheck(host: string, port: number, timeoutMs: number): Promise<{ ok: boolean; output: string }>;
}

/**
 * The Docker engine of one host. The only way berth talks to Docker; every error thrown is an
 * ExternalError that names the engine's endpoint (DOCKER_HOST).
 */
export interface Engine {
  /** Where the engine is, as the user would write DOCKER_HOST. */
  readonly endpoint: string;
  ping(): Promise<void>;
  /** All containers, running or not. */
  listContainers(): Promise<ObservedContainer[]>;
  listImages(): Promise<ObservedImage[]>;
  /** The digest a tag names in its registry now, asked through the engine with the user's credentials. */
  remoteDigest(image: string): Promise<string>;
  /** Pull with the user's registry credentials (Docker config, credential helpers); `signal` abandons it. */
  pull(image: string, onProgress?: (p: PullProgress) => void, signal?: AbortSignal): Promise<void>;
  create(spec: ContainerCreateSpec): Promise<string>;
  start(id: string): Promise<void>;
  /** Let a paused container run again. */
  unpause(id: string): Promise<void>;
  stop(id: string, timeoutSeconds?: number): Promise<void>;
  remove(id: string, opts?: { force?: boolean }): Promise<void>;
  rename(id: string, newName: string): Promise<void>;
  inspect(id: string): Promise<ContainerState>;
  /** Send a signal (`SIGHUP`) to the container's main process. */
  kill(id: string, signal: string): Promise<void>;
  /**
   * Run a command in the running container (the engine's exec API) and wait for it, at most
   * `timeoutMs`; its exit code and the tail of its output (stdout and stderr together).
   */
  exec(id: string, argv: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }>;
  /** The host's network when it is not this machine's (an engine reached over SSH). */
  readonly network?: HostNetwork;
}
