import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { ExternalError } from '../model/errors.js';

/** Credentials for one registry, in the shape the Docker Engine API takes as X-Registry-Auth. */
export interface AuthConfig {
  username?: string;
  password?: string;
  /** An OAuth refresh token; the engine exchanges it instead of a password. */
  identitytoken?: string;
  serveraddress: string;
}

/** Where to look: defaults to $DOCKER_CONFIG, then ~/.docker, as the docker CLI does. */
export interface AuthEnv {
  dockerConfigDir?: string;
}

/** The key Docker Hub's credentials are stored under, for historical reasons. */
export const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';

const HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

interface ConfigEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

interface DockerConfigFile {
  auths?: Record<string, ConfigEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/**
 * The registry an image reference lives in, as docker decides it: the first path component when
 * it looks like a host (has a dot or a port, or is localhost), else Docker Hub.
 */
export function registryOf(image: string): string {
  const slash = image.indexOf('/');
  if (slash < 0) return 'docker.io';
  const first = image.slice(0, slash);
  if (first.includes('.') || first.includes(':') || first === 'localhost') return first;
  return 'docker.io';
}

/**
 * The key docker uses for a registry in config.json and when asking a credential helper:
 * Docker Hub is `https://index.docker.io/v1/`, any other registry is its host[:port].
 */
export function registryKey(registry: string): string {
  const host = hostnameOf(registry);
  return HUB_HOSTS.has(host) ? DOCKER_HUB_KEY : host;
}

/** `https://host:5000/v2/` → `host:5000`; what docker's ConvertToHostname does to config keys. */
function hostnameOf(key: string): string {
  return key
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
    .split('/')[0]!
    .toLowerCase();
}

/** Whether a key written in config.json names `key` (with or without scheme and path). */
function keyMatches(configKey: string, key: string): boolean {
  if (configKey === key) return true;
  const host = hostnameOf(configKey);
  return key === DOCKER_HUB_KEY ? HUB_HOSTS.has(host) : host === key;
}

function lookup<T>(map: Record<string, T> | undefined, key: string): T | undefined {
  if (!map) return undefined;
  if (key in map) return map[key];
  const found = Object.keys(map).find((k) => keyMatches(k, key));
  return found === undefined ? undefined : map[found];
}

/**
 * The credentials the docker CLI would use to pull `image`: from `credHelpers[registry]`, else
 * `credsStore`, else `auths[registry]` (auth = base64 user:pass, or username/password, or
 * identitytoken). Undefined when there are none (anonymous pull). Secrets are never put in
 * error messages.
 */
export async function resolveAuth(image: string, env: AuthEnv = {}): Promise<AuthConfig | undefined> {
  const key = registryKey(registryOf(image));
  const dir = env.dockerConfigDir ?? process.env.DOCKER_CONFIG ?? path.join(homedir(), '.docker');
  const file = path.join(dir, 'config.json');
  const config = await readConfig(file);
  if (!config) return undefined;

  const helper = lookup(config.credHelpers, key) ?? config.credsStore;
  if (helper) {
    const fromHelper = await askHelper(helper, key);
    if (fromHelper) return fromHelper;
  }
  const entry = lookup(config.auths, key);
  return entry ? fromEntry(entry, key, file) : undefined;
}

async function readConfig(file: string): Promise<DockerConfigFile | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ExternalError('registry auth', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (!parsed || typeof parsed !== 'object') throw new Error('not a JSON object');
    return parsed as DockerConfigFile;
  } catch {
    // No cause: the parser's message quotes the file's text, which holds secrets.
    throw new ExternalError('registry auth', `${file} is not valid JSON`);
  }
}

function fromEntry(entry: ConfigEntry, key: string, file: string): AuthConfig | undefined {
  if (entry.identitytoken) return { identitytoken: entry.identitytoken, serveraddress: key };
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) {
      throw new ExternalError(
        'registry auth',
        `${file}: auths["${key}"].auth is not base64 of user:password`,
      );
    }
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), serveraddress: key };
  }
  if (entry.username !== undefined || entry.password !== undefined) {
    return { username: entry.username, password: entry.password, serveraddress: key };
  }
  // An empty entry is what `docker login` leaves when a credsStore holds the secret.
  return undefined;
}

/** How long a credential helper may take: some talk to a cloud API, none should hang us. */
const HELPER_TIMEOUT_MS = 30_000;

/**
 * Run `docker-credential-<name> get` with the server address on stdin, as the docker CLI does.
 * "credentials not found" is not an error: it means anonymous, or fall back to auths.
 */
async function askHelper(name: string, key: string): Promise<AuthConfig | undefined> {
  const program = `docker-credential-${name}`;
  const fail = (why: string) =>
    new ExternalError('registry auth', `credential helper ${program} for ${key}: ${why}`);
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
    (resolve, reject) => {
      const child = spawn(program, ['get'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(fail(`no answer in ${HELPER_TIMEOUT_MS / 1000} s`));
      }, HELPER_TIMEOUT_MS);
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(e.code === 'ENOENT' ? fail('not found on PATH') : fail(e.message));
      });
      child.on('close', (c) => {
        clearTimeout(timer);
        resolve({ code: c, stdout: out, stderr: err });
      });
      // A helper that exits without reading stdin makes this write fail; its exit code tells why.
      child.stdin.on('error', () => undefined);
      child.stdin.end(key);
    },
  );
  if (code !== 0) {
    // Helpers print their error on stdout; on failure that is a message, never the secret.
    const message = (stdout.trim() || stderr.trim()).split('\n')[0]!.slice(0, 200);
    if (/credentials not found/i.test(message)) return undefined;
    throw fail(`exit ${code}${message ? `: ${message}` : ''}`);
  }
  let answer: { Username?: unknown; Secret?: unknown };
  try {
    answer = JSON.parse(stdout) as typeof answer;
  } catch {
    // Not quoting stdout: it may hold the secret.
    throw fail('answered something that is not JSON');
  }
  if (typeof answer.Secret !== 'string' || typeof answer.Username !== 'string') {
    throw fail('answer lacks Username or Secret');
  }
  if (answer.Username === '<token>') return { identitytoken: answer.Secret, serveraddress: key };
  return { username: answer.Username, password: answer.Secret, serveraddress: key };
}
