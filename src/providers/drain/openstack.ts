/**
 * OpenStack credentials and Keystone v3: where the OpenStack SDK finds a cloud (clouds.yaml and
 * secure.yaml in its search path, or the OS_* variables), a scoped token, and a service's
 * endpoint from the token's catalog. Reading files and the environment goes through `CloudEnv`,
 * so finding a cloud is testable without touching the machine's own config.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { httpJson, HttpUnreachable, mask, shownUrl, type HttpPolicy } from './cloud-http.js';

/** How a cloud is looked up on this machine. */
export interface CloudEnv {
  env: Record<string, string | undefined>;
  cwd: string;
  home: string;
  /** The file's text, or undefined when it does not exist. */
  read(file: string): string | undefined;
}

export function machineCloudEnv(): CloudEnv {
  return {
    env: process.env,
    cwd: process.cwd(),
    home: os.homedir(),
    read(file) {
      try {
        return readFileSync(file, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw e;
      }
    },
  };
}

export type CloudAuth =
  | {
      method: 'password';
      user: { id?: string; name?: string; domainId?: string; domainName?: string };
      password: string;
      project?: { id?: string; name?: string; domainId?: string; domainName?: string };
    }
  | {
      method: 'application_credential';
      id?: string;
      name?: string;
      secret: string;
      user?: { id?: string; name?: string; domainId?: string; domainName?: string };
    };

/** One cloud, resolved: everything needed to get a token. */
export interface Cloud {
  /** Where it came from, for messages: `cloud "prod" in /etc/openstack/clouds.yaml`, `the OS_* variables`. */
  source: string;
  authUrl: string;
  auth: CloudAuth;
  region?: string;
  interface?: string;
  /** A CA bundle path (clouds.yaml `cacert`, OS_CACERT). */
  cacert?: string;
  /** false: do not check the server certificate (clouds.yaml `verify: false`, OS_INSECURE). */
  verify: boolean;
}

/** The places the OpenStack SDK looks for a file, in its order (the first that exists wins). */
export function searchPath(name: 'clouds' | 'secure', e: CloudEnv): string[] {
  const override = e.env[name === 'clouds' ? 'OS_CLIENT_CONFIG_FILE' : 'OS_CLIENT_SECURE_FILE'];
  const dirs = [e.cwd, path.join(e.home, '.config', 'openstack'), '/etc/openstack'];
  const files = dirs.flatMap((d) => [path.join(d, `${name}.yaml`), path.join(d, `${name}.yml`)]);
  return override ? [override, ...files] : files;
}

function firstFile(name: 'clouds' | 'secure', e: CloudEnv): { file: string; text: string } | undefined {
  for (const file of searchPath(name, e)) {
    const text = e.read(file);
    if (text !== undefined) return { file, text };
  }
  return undefined;
}

type Yaml = Record<string, unknown>;
const isMap = (v: unknown): v is Yaml => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `b` merged into `a`, maps key by key (how secure.yaml completes clouds.yaml). */
function deepMerge(a: Yaml, b: Yaml): Yaml {
  const out: Yaml = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = isMap(v) && isMap(out[k]) ? deepMerge(out[k], v) : v;
  return out;
}

function str(v: unknown): string | undefined {
  if (typeof v === 'string' && v !== '') return v;
  if (typeof v === 'number') return String(v);
  return undefined;
}

/** `public`, `internal`, `admin` (the legacy `publicURL` forms too). */
export function normalInterface(v: string | undefined): string | undefined {
  return v?.replace(/URL$/, '').toLowerCase();
}

/** Keys of a clouds.yaml `auth` map (and the OS_* variables, lower-cased without OS_). */
interface AuthKeys {
  auth_url?: string;
  username?: string;
  user_id?: string;
  password?: string;
  project_name?: string;
  project_id?: string;
  tenant_name?: string;
  tenant_id?: string;
  user_domain_name?: string;
  user_domain_id?: string;
  project_domain_name?: string;
  project_domain_id?: string;
  application_credential_id?: string;
  application_credential_name?: string;
  application_credential_secret?: string;
}

const AUTH_KEYS: Array<keyof AuthKeys> = [
  'auth_url',
  'username',
  'user_id',
  'password',
  'project_name',
  'project_id',
  'tenant_name',
  'tenant_id',
  'user_domain_name',
  'user_domain_id',
  'project_domain_name',
  'project_domain_id',
  'application_credential_id',
  'application_credential_name',
  'application_credential_secret',
];

function authFrom(k: AuthKeys, authType: string | undefined, source: string): CloudAuth | { error: string } {
  const type = (authType ?? '').replace(/^v3/, '');
  const user = {
    id: k.user_id,
    name: k.username,
    domainId: k.user_domain_id,
    domainName: k.user_domain_name,
  };
  const appCred = type === 'applicationcredential' || type === 'application_credential';
  if (appCred || (!type && k.application_credential_secret)) {
    if (!k.application_credential_secret) {
      return { error: `${source}: application_credential_secret is missing` };
    }
    if (!k.application_credential_id && !k.application_credential_name) {
      return { error: `${source}: application_credential_id (or _name with the user) is missing` };
    }
    if (!k.application_credential_id && !user.id && !user.name) {
      return { error: `${source}: an application credential given by name needs username or user_id` };
    }
    return {
      method: 'application_credential',
      id: k.application_credential_id,
      name: k.application_credential_name,
      secret: k.application_credential_secret,
      user: user.id || user.name ? user : undefined,
    };
  }
  if (type && type !== 'password') {
    return {
      error: `${source}: auth_type "${authType}" is not supported (use password or v3applicationcredential)`,
    };
  }
  if (!k.password) return { error: `${source}: password is missing` };
  if (!user.id && !user.name) return { error: `${source}: username or user_id is missing` };
  const projectId = k.project_id ?? k.tenant_id;
  const projectName = k.project_name ?? k.tenant_name;
  return {
    method: 'password',
    user,
    password: k.password,
    project:
      projectId || projectName
        ? {
            id: projectId,
            name: projectName,
            domainId: k.project_domain_id,
            domainName: k.project_domain_name,
          }
        : undefined,
  };
}

function cloudFromEnv(e: CloudEnv): Cloud | { error: string } {
  const env = e.env;
  const source = 'the OS_* variables';
  const keys: AuthKeys = {};
  for (const k of AUTH_KEYS) {
    const v = str(env[`OS_${k.toUpperCase()}`]);
    if (v !== undefined) keys[k] = v;
  }
  if (!keys.auth_url) {
    return {
      error:
        'no OpenStack cloud: set load_balancer.cloud (a clouds.yaml entry) or OS_CLOUD, or the OS_* variables (OS_AUTH_URL, ...)',
    };
  }
  const auth = authFrom(keys, str(env.OS_AUTH_TYPE), source);
  if ('error' in auth) return auth;
  return {
    source,
    authUrl: keys.auth_url,
    auth,
    region: str(env.OS_REGION_NAME),
    interface: normalInterface(str(env.OS_INTERFACE) ?? str(env.OS_ENDPOINT_TYPE)),
    cacert: str(env.OS_CACERT),
    verify: !/^(1|true|yes)$/i.test(env.OS_INSECURE ?? ''),
  };
}

/**
 * The cloud to use: `name` (else OS_CLOUD) from the first clouds.yaml in the SDK's search path,
 * completed by secure.yaml; without a name, the OS_* variables. An error says what is missing
 * and where it was looked for, never a credential.
 */
export function findCloud(name: string | undefined, e: CloudEnv): Cloud | { error: string } {
  const wanted = name ?? str(e.env.OS_CLOUD);
  if (!wanted) return cloudFromEnv(e);
  const found = firstFile('clouds', e);
  if (!found) {
    return {
      error: `OpenStack cloud "${wanted}": no clouds.yaml found (looked in ${searchPath('clouds', e).join(', ')})`,
    };
  }
  let doc: unknown;
  try {
    doc = parseYaml(found.text);
  } catch (err) {
    return { error: `${found.file}: not valid YAML: ${(err as Error).message.split('\n')[0]}` };
  }
  const clouds = isMap(doc) && isMap(doc.clouds) ? doc.clouds : undefined;
  let entry = clouds && isMap(clouds[wanted]) ? clouds[wanted] : undefined;
  if (!entry) {
    const known = clouds ? Object.keys(clouds).join(', ') || 'none' : 'none';
    return { error: `OpenStack cloud "${wanted}" is not in ${found.file} (clouds there: ${known})` };
  }
  const secure = firstFile('secure', e);
  if (secure) {
    try {
      const s = parseYaml(secure.text) as unknown;
      const extra = isMap(s) && isMap(s.clouds) && isMap(s.clouds[wanted]) ? s.clouds[wanted] : undefined;
      if (extra) entry = deepMerge(entry, extra);
    } catch (err) {
      return { error: `${secure.file}: not valid YAML: ${(err as Error).message.split('\n')[0]}` };
    }
  }
  const source = `cloud "${wanted}" in ${found.file}`;
  const a = isMap(entry.auth) ? entry.auth : {};
  const keys: AuthKeys = {};
  for (const k of AUTH_KEYS) {
    const v = str(a[k]);
    if (v !== undefined) keys[k] = v;
  }
  if (!keys.auth_url) return { error: `${source}: auth.auth_url is missing` };
  const auth = authFrom(keys, str(entry.auth_type), source);
  if ('error' in auth) return auth;
  return {
    source,
    authUrl: keys.auth_url,
    auth,
    region: str(entry.region_name),
    interface: normalInterface(str(entry.interface) ?? str(entry.endpoint_type)),
    cacert: str(entry.cacert),
    verify: entry.verify !== false && entry.insecure !== true,
  };
}

/** The JSON body of POST /v3/auth/tokens for `auth`. */
export function tokenRequest(auth: CloudAuth): unknown {
  const userRef = (u: NonNullable<Extract<CloudAuth, { method: 'password' }>['user']>) => {
    if (u.id) return { id: u.id };
    const domain = u.domainId ? { id: u.domainId } : u.domainName ? { name: u.domainName } : undefined;
    return domain ? { name: u.name, domain } : { name: u.name };
  };
  if (auth.method === 'application_credential') {
    const cred: Record<string, unknown> = auth.id
      ? { id: auth.id, secret: auth.secret }
      : { name: auth.name, secret: auth.secret, user: userRef(auth.user ?? {}) };
    // An application credential carries its own scope; asking for another is an error.
    return { auth: { identity: { methods: ['application_credential'], application_credential: cred } } };
  }
  const identity = {
    methods: ['password'],
    password: { user: { ...userRef(auth.user), password: auth.password } },
  };
  const p = auth.project;
  if (!p) return { auth: { identity } };
  const domain = p.domainId ? { id: p.domainId } : p.domainName ? { name: p.domainName } : undefined;
  const project = p.id ? { id: p.id } : domain ? { name: p.name, domain } : { name: p.name };
  return { auth: { identity, scope: { project } } };
}

/** Keystone's `/v3/auth/tokens` for an auth_url given with or without its version. */
export function tokensUrl(authUrl: string): string {
  const base = authUrl.replace(/\/+$/, '');
  return /\/v3$/.test(base) ? `${base}/auth/tokens` : `${base}/v3/auth/tokens`;
}

export interface CatalogEntry {
  type?: string;
  name?: string;
  endpoints?: Array<{ interface?: string; region?: string; region_id?: string; url?: string }>;
}

/** The URL of service `type` in a token's catalog for `iface` (default public) and `region`. */
export function endpointFrom(
  catalog: CatalogEntry[],
  type: string,
  iface: string | undefined,
  region: string | undefined,
): string | { error: string } {
  const service = catalog.find((c) => c.type === type);
  if (!service) {
    const types = catalog.map((c) => c.type).filter(Boolean);
    return { error: `no ${type} service in the token's catalog (services: ${types.join(', ') || 'none'})` };
  }
  const want = iface ?? 'public';
  const eps = (service.endpoints ?? []).filter(
    (e) =>
      normalInterface(e.interface) === want &&
      (!region || e.region === region || e.region_id === region) &&
      typeof e.url === 'string',
  );
  if (eps.length === 0) {
    const have = (service.endpoints ?? []).map(
      (e) => `${e.interface ?? '?'}@${e.region ?? e.region_id ?? '?'}`,
    );
    return {
      error: `no ${want} ${type} endpoint${region ? ` in region ${region}` : ''} in the catalog (endpoints: ${have.join(', ') || 'none'})`,
    };
  }
  const regions = new Set(eps.map((e) => e.region ?? e.region_id));
  if (!region && regions.size > 1) {
    return {
      error: `${type} has ${want} endpoints in several regions (${[...regions].join(', ')}); set load_balancer.region`,
    };
  }
  return eps[0]!.url!.replace(/\/+$/, '');
}

/** A Keystone failure: its own message when it gave one, with the HTTP status. */
export class KeystoneError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeystoneError';
  }
}

/** The secrets a cloud holds, to keep them out of every message. */
export function cloudSecrets(c: Cloud): string[] {
  return c.auth.method === 'password' ? [c.auth.password] : [c.auth.secret];
}

function whoAuth(c: Cloud): string {
  const a = c.auth;
  if (a.method === 'application_credential') return `application credential ${a.id ?? a.name}`;
  return `user ${a.user.name ?? a.user.id}`;
}

/** A token for one cloud and the endpoint of one service, fetched once and kept until near expiry. */
export class KeystoneSession {
  private current?: { token: string; catalog: CatalogEntry[]; expiresAt: number };

  constructor(
    readonly cloud: Cloud,
    /** How every call for this cloud is made (its TLS settings included). */
    readonly policy: HttpPolicy,
    private readonly now: () => number = Date.now,
  ) {}

  get secrets(): string[] {
    return [...cloudSecrets(this.cloud), ...(this.current ? [this.current.token] : [])];
  }

  /** Forget the token (the service said 401: it was revoked or expired early). */
  invalidate(): void {
    this.current = undefined;
  }

  async token(): Promise<{ token: string; catalog: CatalogEntry[] }> {
    // A minute of margin, so a token does not expire between two calls of one change.
    if (this.current && this.current.expiresAt - 60_000 > this.now()) return this.current;
    const url = tokensUrl(this.cloud.authUrl);
    const secrets = cloudSecrets(this.cloud);
    let answer;
    try {
      answer = await httpJson(
        { method: 'POST', url, body: tokenRequest(this.cloud.auth) },
        { ...this.policy, secrets },
      );
    } catch (e) {
      if (e instanceof HttpUnreachable) throw new KeystoneError(`cannot reach Keystone: ${e.message}`);
      throw e;
    }
    if (answer.status !== 201 && answer.status !== 200) {
      const body = answer.json as { error?: { message?: string } } | undefined;
      const said = body?.error?.message ?? (answer.text.slice(0, 200) || 'no message');
      throw new KeystoneError(
        mask(
          `Keystone refused a token for ${whoAuth(this.cloud)} (${this.cloud.source}) at ${shownUrl(url)}: HTTP ${answer.status}: ${said}`,
          secrets,
        ),
      );
    }
    const header = answer.headers['x-subject-token'];
    const token = Array.isArray(header) ? header[0] : header;
    const body = answer.json as { token?: { expires_at?: string; catalog?: CatalogEntry[] } } | undefined;
    if (!token || !body?.token) {
      throw new KeystoneError(`Keystone at ${shownUrl(url)} answered without a token`);
    }
    const expiresAt = Date.parse(body.token.expires_at ?? '') || this.now() + 3_600_000;
    this.current = { token, catalog: body.token.catalog ?? [], expiresAt };
    return this.current;
  }

  /** The endpoint of service `type`, from settings' interface and region or the cloud's. */
  async endpoint(type: string, iface?: string, region?: string): Promise<string> {
    const { catalog } = await this.token();
    const url = endpointFrom(
      catalog,
      type,
      normalInterface(iface) ?? this.cloud.interface,
      region ?? this.cloud.region,
    );
    if (typeof url !== 'string') throw new KeystoneError(`${this.cloud.source}: ${url.error}`);
    return url;
  }
}
