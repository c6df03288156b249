import type { ContainerCreateSpec } from '../model/container.js';
import { LABEL } from '../model/labels.js';
import type { ServiceSpec } from '../model/service.js';
import { canonicalJson, sha256Hex } from './canonical.js';

/**
 * The part of a service that lives in its container. A change to any of it means the
 * container must be recreated; CI metadata, health checks and host selection are not in it.
 */
export type ContainerConfig = Pick<
  ServiceSpec,
  | 'image'
  | 'env'
  | 'command'
  | 'entrypoint'
  | 'user'
  | 'workingDir'
  | 'volumes'
  | 'labels'
  | 'stopSignal'
  | 'stopTimeout'
  | 'networkMode'
  | 'restartPolicy'
  | 'init'
  | 'logDriver'
  | 'logOptions'
>;

/**
 * The env as it may be written into a label: values that use a secret appear in their
 * redacted form plus a keyed digest (HMAC with a key only this host has), so a changed
 * secret still changes the config hash, yet nobody who reads labels can test guesses.
 */
export function labelEnv(s: ServiceSpec): Record<string, string> {
  if (!s.secretEnv) return s.env;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.env)) {
    if (!s.secretEnv[k]) {
      out[k] = v;
      continue;
    }
    const digest = s.secretDigests?.[k];
    if (!digest) throw new Error(`bug: env ${k} of ${s.name} uses a secret but has no keyed digest`);
    out[k] = `${s.redactedEnv?.[k] ?? '<secret>'} ${digest}`;
  }
  return out;
}

export function containerConfig(s: ServiceSpec): ContainerConfig {
  return {
    image: s.image,
    env: labelEnv(s),
    command: s.command,
    entrypoint: s.entrypoint,
    user: s.user,
    workingDir: s.workingDir,
    volumes: s.volumes,
    labels: s.labels,
    stopSignal: s.stopSignal,
    stopTimeout: s.stopTimeout,
    networkMode: s.networkMode,
    restartPolicy: s.restartPolicy,
    init: s.init,
    logDriver: s.logDriver,
    logOptions: s.logOptions,
  };
}

/** The value of the config-hash label: one comparison decides "unchanged". */
export function configHash(s: ServiceSpec): string {
  return sha256Hex(canonicalJson(containerConfig(s)));
}

/** The env file as written to `<env_dir>/<service>`: docker's env-file format, sorted. */
export function renderEnvFile(s: ServiceSpec): string {
  const lines = Object.keys(s.env)
    .sort()
    .map((k) => `${k}=${s.env[k]}`);
  return `# written by berth for service ${s.name}; edits here are overwritten\n${lines.join('\n')}${lines.length ? '\n' : ''}`;
}

function restartPolicy(p: string): ContainerCreateSpec['restartPolicy'] {
  const m = /^on-failure(?::(\d+))?$/.exec(p);
  if (m) return { name: 'on-failure', maximumRetryCount: m[1] ? Number(m[1]) : 0 };
  return { name: p === 'no' ? '' : p };
}

/** What to ask the engine for, labels included. Pure: the executor only passes it on. */
export function createSpec(s: ServiceSpec, stateCommit: string | undefined): ContainerCreateSpec {
  const cfg = containerConfig(s);
  const labels: Record<string, string> = {
    ...s.labels,
    [LABEL.service]: s.name,
    [LABEL.configHash]: configHash(s),
    [LABEL.spec]: canonicalJson(cfg),
  };
  if (stateCommit) labels[LABEL.stateCommit] = stateCommit;
  if (s.gitCommit) labels[LABEL.gitCommit] = s.gitCommit;
  if (s.buildNumber) labels[LABEL.buildNumber] = s.buildNumber;
  return {
    name: s.name,
    image: s.image,
    env: Object.keys(s.env)
      .sort()
      .map((k) => `${k}=${s.env[k]}`),
    cmd: s.command,
    entrypoint: s.entrypoint,
    user: s.user,
    workingDir: s.workingDir,
    labels,
    stopSignal: s.stopSignal,
    stopTimeout: s.stopTimeout,
    networkMode: s.networkMode,
    restartPolicy: restartPolicy(s.restartPolicy),
    init: s.init,
    logDriver: s.logDriver,
    logOptions: s.logOptions,
    binds: s.volumes,
  };
}
