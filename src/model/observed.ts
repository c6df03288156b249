import type { ObservedRotation } from './rotation.js';

/** A container as the engine lists it; read once per run. */
export interface ObservedContainer {
  id: string;
  /** Name without the leading slash. */
  name: string;
  /** running, exited, created, restarting, paused, dead */
  state: string;
  /** The image reference the container was created with (Config.Image). */
  image: string;
  imageId: string;
  labels: Record<string, string>;
}

export interface ObservedImage {
  id: string;
  repoTags: string[];
  /** e.g. 127.0.0.1:5000/team/api@sha256:... */
  repoDigests: string[];
}

/** The registry's answer for a tag: the digest it names now, or why we could not tell. */
export type RemoteDigest = { digest: string } | { error: string };

/** One snapshot of a host: the engine's containers and images, registry digests, env files. */
export interface ObservedHost {
  containers: ObservedContainer[];
  images: ObservedImage[];
  /** Keyed by image reference as written in the service (only for `pull: always`). */
  remoteDigests: Record<string, RemoteDigest>;
  /** Keyed by service name: current env file content, or null when missing. */
  envFiles: Record<string, string | null>;
  /**
   * Other files in the env folder that berth wrote (their first line says so), by name: env
   * files of services that are no longer in the repo for this host.
   */
  strayEnvFiles?: string[];
  /**
   * The rendered files (`files:`) on the host, by host path: content, or null when missing.
   * Holds the wanted services' files and the redacted copies beside those that use a secret.
   */
  files?: Record<string, string | null>;
  /** The host's place in its load balancer, when it has one and the caller asked (apply does). */
  rotation?: ObservedRotation;
}
