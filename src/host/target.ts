import { DEFAULT_DOCKER_HOST, dockerConnection } from '../adapters/docker.js';
import type { Engine } from '../adapters/engine.js';
import { hostFiles, type HostFiles } from '../adapters/fs.js';
import type { HostState } from '../adapters/host-state.js';
import type { SshConnection, SshSettings } from '../adapters/ssh.js';
import { sshHostFiles, sshNetwork, sshPrivateFiles } from '../adapters/ssh-files.js';
import { RemoteShells } from '../adapters/ssh-shell.js';
import { ExternalError, UsageError } from '../model/errors.js';
import { localPrivateFiles, type PrivateFiles } from '../secrets/private.js';

/**
 * How to reach one host: today its Docker engine by a local unix socket or tcp (what
 * DOCKER_HOST says); the fleet adds SSH. Files (env files, secrets) are on the machine berth
 * runs on, which is the host itself in these cases.
 */
export interface HostTarget {
  /** The host's inventory name; absent for "this host" when the repo has no inventory. */
  name?: string;
  /** The engine, as DOCKER_HOST would say it: unix:///path or tcp://host:port. */
  docker: string;
  /** A key file from before host state moved into the engine (see docker-state.ts). */
  legacyKeyFile?: string;
  /** Longest wait for one answer from the engine (default: the docker adapter's 60 s). */
  engineTimeoutMs?: number;
}

/** A host opened for the pipeline: its engine, its state, its files, through one connection. */
export interface Host {
  readonly target: HostTarget;
  readonly engine: Engine;
  readonly state: HostState;
  readonly files: HostFiles;
  /** The host's secrets and age identity (default: this machine's files). */
  readonly private?: PrivateFiles;
}

/** A host of the fleet, reached over SSH (`berth deploy`, `status`, `wait`). */
export interface SshHostTarget {
  /** Its inventory name. */
  name: string;
  /** Where SSH connects. */
  address: string;
  ssh: SshSettings;
  /** The engine's socket on the host (`docker_socket` in its vars; default /var/run/docker.sock). */
  dockerSocket: string;
}

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

/**
 * The engine DOCKER_HOST names (an unset or empty DOCKER_HOST means docker's own default, as
 * for the docker CLI), checked before anything is asked of it.
 */
export function localTarget(name?: string, env: NodeJS.ProcessEnv = process.env): HostTarget {
  const docker = env.DOCKER_HOST || DEFAULT_DOCKER_HOST;
  const t: HostTarget = { docker: checkEndpoint(docker) };
  if (name !== undefined) t.name = name;
  return t;
}

function checkEndpoint(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new UsageError(
      `DOCKER_HOST ${JSON.stringify(endpoint)} is not an engine address: use unix:///path/to/docker.sock or tcp://HOST:PORT`,
    );
  }
  if (!['unix:', 'tcp:', 'http:', 'https:'].includes(url.protocol)) {
    throw new UsageError(
      `DOCKER_HOST ${JSON.stringify(endpoint)}: berth reaches engines by unix:// or tcp:// (ssh:// comes with berth deploy)`,
    );
  }
  if (url.protocol === 'unix:' && !url.pathname) {
    throw new UsageError(`DOCKER_HOST ${JSON.stringify(endpoint)} names no socket path`);
  }
  return endpoint;
}

/** Open a host: nothing is asked of it until the pipeline asks. */
export function openHost(target: HostTarget): Host {
  const conn = dockerConnection({ host: target.docker, timeoutMs: target.engineTimeoutMs });
  return {
    target,
    engine: conn.engine,
    state: conn.state({ legacyKeyFile: target.legacyKeyFile }),
    files: hostFiles,
    private: localPrivateFiles,
  };
}

/**
 * Open a host through its SSH connection: its engine's socket forwarded to a private local
 * socket (so the host's lock, drain marker and key come through the same connection), its env
 * files and secrets read and written on the host, its health checks made from the host. The
 * engine is asked once here, so an engine that is down or a socket the SSH user may not open is
 * an error naming the host before the pipeline starts.
 * @throws ExternalError naming the host.
 */
export async function openSshHost(
  t: SshHostTarget,
  conn: SshConnection,
  opts: { engineTimeoutMs?: number } = {},
): Promise<Host> {
  const local = await conn.forward(t.dockerSocket);
  const docker = `unix://${local}`;
  const dc = dockerConnection({
    host: docker,
    label: `${t.dockerSocket} on ${conn.description}`,
    timeoutMs: opts.engineTimeoutMs,
  });
  const shells = new RemoteShells(conn);
  shells.warm();
  const engine: Engine = { ...dc.engine, network: sshNetwork(conn, shells) };
  try {
    await engine.ping();
  } catch (e) {
    throw new ExternalError(
      'ssh',
      `${conn.description}: the Docker engine at ${t.dockerSocket} does not answer over SSH ` +
        `(is it running, and may the SSH user open its socket? set docker_socket in the host's vars if it is elsewhere)`,
      { cause: e },
    );
  }
  return {
    target: { name: t.name, docker },
    engine,
    state: dc.state(),
    files: sshHostFiles(conn, shells),
    private: sshPrivateFiles(conn, shells, t.name),
  };
}
