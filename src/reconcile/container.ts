import { CONTAINER_FIELDS, type ContainerKey } from '../config/fields.js';
import type { ContainerCreateSpec } from '../model/container.js';
import { modeText, type Reload } from '../model/files.js';
import { LABEL } from '../model/labels.js';
import type { ServiceSpec } from '../model/service.js';
import { canonicalJson, sha256Hex } from './canonical.js';

/**
 * The part of a service that lives in its container: the fields the table (src/config/fields.ts)
 * marks `container`. A change to any of it means the container must be recreated; CI metadata,
 * health checks and host selection are not in it.
 */
export type ContainerConfig = Pick<ServiceSpec, ContainerKey>;

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

/** A mounted file as the config hash and the `berth.spec` label keep it: never its content. */
export interface LabelFile {
  target: string;
  /** The host file mounted at `target`. */
  path: string;
  mode: string;
  reload?: Reload;
  /**
   * The content's digest, only for a file without `reload`: its change must recreate the
   * container. A file with `reload` is rewritten and reloaded instead, so its content stays out.
   */
  digest?: string;
  /**
   * With `digest`, for a file that uses a secret: a digest of its redacted text, so that a change
   * of the secret alone can be told (and named) apart from a change of the template.
   */
  shown?: string;
}

/**
 * The files as the label keeps them. A rendered file's content is in neither the hash nor the
 * label: its digest (keyed when it uses a secret) stands for it.
 */
export function labelFiles(s: ServiceSpec): LabelFile[] | undefined {
  if (!s.files) return undefined;
  return s.files.map((f) => {
    const r = f.rendered;
    if (!r?.path || !r.digest)
      throw new Error(`bug: file ${f.target} of ${s.name} is not rendered and placed`);
    const out: LabelFile = { target: f.target, path: r.path, mode: modeText(r.mode) };
    if (f.reload) out.reload = f.reload;
    else {
      out.digest = r.digest;
      if (r.secrets.length) out.shown = `sha256:${sha256Hex(r.shown)}`;
    }
    return out;
  });
}

/** What the config hash covers, as the `berth.spec` label keeps it; env with secrets as `labelEnv` shows them. */
export function containerConfig(s: ServiceSpec): ContainerConfig {
  const cfg: Record<string, unknown> = {};
  for (const [, f] of CONTAINER_FIELDS) cfg[f.spec] = s[f.spec];
  cfg['env' satisfies ContainerKey] = labelEnv(s);
  cfg['files' satisfies ContainerKey] = labelFiles(s);
  return cfg as ContainerConfig;
}

/** The value of the config-hash label: one comparison decides "unchanged". */
export function configHash(s: ServiceSpec): string {
  return sha256Hex(canonicalJson(containerConfig(s)));
}

/**
 * The first line of every env file berth writes. It is how berth knows a file is its own: a
 * file without it is never overwritten or removed, whatever its name.
 */
export function envFileHeader(service: string): string {
  return `# written by berth for service ${service}; edits here are overwritten\n`;
}

/** Whether `content` is an env file berth wrote for `service`. */
export function isBerthEnvFile(service: string, content: string): boolean {
  return content.startsWith(envFileHeader(service));
}

/** The env file as written to `<env_dir>/<service>`: docker's env-file format, sorted. */
export function renderEnvFile(s: ServiceSpec): string {
  const lines = Object.keys(s.env)
    .sort()
    .map((k) => `${k}=${s.env[k]}`);
  return `${envFileHeader(s.name)}${lines.join('\n')}${lines.length ? '\n' : ''}`;
}

function restartPolicy(p: string): ContainerCreateSpec['restartPolicy'] {
  const m = /^on-failure(?::(\d+))?$/.exec(p);
  if (m) return { name: 'on-failure', maximumRetryCount: m[1] ? Number(m[1]) : 0 };
  return { name: p === 'no' ? '' : p };
}

/**
 * How each container field reaches the engine's create call. The compiler asks for one entry per
 * container field of the table, so a field cannot be hashed and yet never reach the engine.
 */
const ENGINE: { [K in ContainerKey]: (v: ServiceSpec[K]) => Partial<ContainerCreateSpec> } = {
  image: (image) => ({ image }),
  env: (env) => ({
    env: Object.keys(env)
      .sort()
      .map((k) => `${k}=${env[k]}`),
  }),
  command: (cmd) => ({ cmd }),
  entrypoint: (entrypoint) => ({ entrypoint }),
  user: (user) => ({ user }),
  workingDir: (workingDir) => ({ workingDir }),
  volumes: (binds) => ({ binds }),
  files: (files) =>
    files
      ? {
          fileMounts: files.map((f) => {
            if (!f.rendered?.path) throw new Error(`bug: file ${f.target} has no place on the host`);
            return { source: f.rendered.path, target: f.target };
          }),
        }
      : {},
  labels: (labels) => ({ labels: { ...labels } }),
  stopSignal: (stopSignal) => ({ stopSignal }),
  stopTimeout: (stopTimeout) => ({ stopTimeout }),
  networkMode: (networkMode) => ({ networkMode }),
  restartPolicy: (p) => ({ restartPolicy: restartPolicy(p) }),
  init: (init) => ({ init }),
  logDriver: (logDriver) => ({ logDriver }),
  logOptions: (logOptions) => ({ logOptions }),
};

/** What to ask the engine for, labels included. Pure: the executor only passes it on. */
export function createSpec(s: ServiceSpec, stateCommit: string | undefined): ContainerCreateSpec {
  const spec = { name: s.name } as ContainerCreateSpec;
  for (const [, f] of CONTAINER_FIELDS) {
    const toEngine = ENGINE[f.spec] as (v: unknown) => Partial<ContainerCreateSpec>;
    Object.assign(spec, toEngine(s[f.spec]));
  }
  const cfg = containerConfig(s);
  spec.labels = {
    ...spec.labels,
    [LABEL.service]: s.name,
    [LABEL.configHash]: configHash(s),
    [LABEL.spec]: canonicalJson(cfg),
  };
  if (stateCommit) spec.labels[LABEL.stateCommit] = stateCommit;
  if (s.gitCommit) spec.labels[LABEL.gitCommit] = s.gitCommit;
  if (s.buildNumber) spec.labels[LABEL.buildNumber] = s.buildNumber;
  return spec;
}
