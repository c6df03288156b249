/**
 * OpenStack Octavia (Load Balancer API v2) through Keystone v3. A host is a member of a pool:
 * drain sets its weight to 0 (open connections go on, new ones go elsewhere), waits, then sets
 * `admin_state_up: false`; undrain puts its weight and admin state back, creating the member when
 * it is missing. Members are never deleted (the HTTP client cannot even send a DELETE): deleting
 * one is what cut connections in the setup berth replaces.
 *
 * Octavia accepts one change at a time per load balancer: it answers 409 while the load balancer
 * is PENDING_*, so every change waits for ACTIVE before and after itself. Octavia gives no
 * per-member connection count, so a drain waits its whole timeout.
 */
import net from 'node:net';
import { ExternalError } from '../../model/errors.js';
import { httpJson, mask, type HttpAnswer, type HttpMethod, type HttpPolicy } from './cloud-http.js';
import { pollUntil } from './poll.js';
import {
  findCloud,
  KeystoneError,
  KeystoneSession,
  machineCloudEnv,
  type Cloud,
  type CloudEnv,
} from './openstack.js';
import {
  durationIssue,
  intOf,
  readDurationMs,
  renderedWithAddress,
  settingChecks,
  sleep,
  unknownKeys,
} from './settings.js';
import type {
  DrainOptions,
  DrainProvider,
  DrainProviderPlugin,
  DrainTarget,
  LbState,
  SettingIssue,
} from './types.js';

export const OCTAVIA_SETTINGS = [
  'cloud',
  'pool',
  'address',
  'protocol_port',
  'subnet_id',
  'weight',
  'interface',
  'region',
  'drain_timeout',
  'provisioning_timeout',
] as const;

const DEFAULT_DRAIN_MS = 30_000;
const DEFAULT_PROVISIONING_MS = 120_000;
/** The member's weight before berth set it to 0, kept on the member itself (API 2.5+ tags). */
const WEIGHT_TAG = /^berth:weight=(\d+)$/;
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

export function validateOctaviaSettings(
  s: Record<string, unknown>,
  opts: { base: string; rendered: boolean },
): SettingIssue[] {
  const issues = unknownKeys(s, OCTAVIA_SETTINGS, opts.base);
  const { at, text, int } = settingChecks(s, opts, 'octavia', issues);
  text('cloud', false);
  text('pool', true);
  const address = text('address', false);
  if (address !== undefined && net.isIP(address) === 0) {
    issues.push({ path: at('address'), message: `"${address}" is not an IP address` });
  }
  int('protocol_port', true, 1, 65535);
  text('subnet_id', false);
  // 0 would make undrain leave the host without traffic; drain is what sets 0.
  int('weight', false, 1, 256);
  const iface = text('interface', false);
  if (iface !== undefined && !['public', 'internal', 'admin'].includes(iface)) {
    issues.push({ path: at('interface'), message: 'expected public, internal or admin' });
  }
  text('region', false);
  issues.push(...durationIssue(s.drain_timeout, at('drain_timeout'), opts.rendered));
  issues.push(...durationIssue(s.provisioning_timeout, at('provisioning_timeout'), opts.rendered));
  return issues;
}

interface Resolved {
  cloud?: string;
  pool: string;
  address: string;
  port: number;
  subnetId?: string;
  weight?: number;
  interface?: string;
  region?: string;
  drainMs: number;
  provisioningMs: number;
  /** `member 10.0.1.11:443 in pool app-pool`, for messages. */
  where: string;
}

function resolve(t: DrainTarget): Resolved {
  const { settings: s, value: address } = renderedWithAddress(
    t,
    validateOctaviaSettings,
    'address',
    'the host has no address in the inventory to make the member from',
  );
  const port = intOf(s.protocol_port)!;
  return {
    cloud: s.cloud as string | undefined,
    pool: s.pool as string,
    address,
    port,
    subnetId: s.subnet_id as string | undefined,
    weight: intOf(s.weight),
    interface: s.interface as string | undefined,
    region: s.region as string | undefined,
    drainMs: readDurationMs(s.drain_timeout, DEFAULT_DRAIN_MS),
    provisioningMs: readDurationMs(s.provisioning_timeout, DEFAULT_PROVISIONING_MS),
    where: `member ${address}:${port} in pool ${s.pool as string}`,
  };
}

/** An Octavia member as the API shows it (the fields berth reads). */
export interface OctaviaMember {
  id: string;
  name?: string;
  address: string;
  protocol_port: number;
  weight: number;
  admin_state_up: boolean;
  provisioning_status?: string;
  operating_status?: string;
  /** Absent before API 2.5: the previous weight then cannot be kept on the member. */
  tags?: string[];
}

/** Where a member stands: out when admin down, draining at weight 0, else in rotation. */
export function memberState(m: Pick<OctaviaMember, 'admin_state_up' | 'weight'>): LbState {
  if (!m.admin_state_up) return 'maint';
  if (m.weight === 0) return 'drain';
  return 'ready';
}

/** The weight berth kept in the member's tags when it drained it. */
export function rememberedWeight(tags: string[] | undefined): number | undefined {
  for (const tag of tags ?? []) {
    const m = WEIGHT_TAG.exec(tag);
    if (m) return Number(m[1]);
  }
  return undefined;
}

/** `tags` without berth's weight tag, plus one for `weight` when given. */
export function withWeightTag(tags: string[], weight?: number): string[] {
  const rest = tags.filter((t) => !WEIGHT_TAG.test(t));
  return weight === undefined ? rest : [...rest, `berth:weight=${weight}`];
}

/** Octavia's own words from an error body (`faultstring`, or `description` / `message`). */
function saidBy(a: HttpAnswer): string {
  const b = a.json as { faultstring?: string; description?: string; message?: string } | undefined;
  const said = b?.faultstring ?? b?.description ?? b?.message ?? a.text.trim().slice(0, 200);
  return `HTTP ${a.status}${said ? `: ${said}` : ''}`;
}

export interface OctaviaOptions {
  /** Where clouds.yaml and the OS_* variables are read (tests give their own). */
  cloudEnv?: CloudEnv;
  /** Bound on each HTTP call. */
  requestTimeoutMs?: number;
  /** Tries for a call answered 429/5xx or cut (at least 1). */
  attempts?: number;
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Time between two looks at the load balancer's provisioning_status. */
  pollIntervalMs?: number;
}

/** What one call needs: the session, the API's URL, the pool and its load balancer. */
interface Ctx {
  r: Resolved;
  session: KeystoneSession;
  endpoint: string;
  poolId: string;
  lbId: string;
}

export class OctaviaProvider implements DrainProvider {
  readonly name = 'octavia';
  private readonly cloudEnv: CloudEnv;
  private readonly policy: HttpPolicy;
  private readonly pollIntervalMs: number;
  /** One token per cloud for the life of the provider (Keystone tokens last hours). */
  private readonly sessions = new Map<string, KeystoneSession>();

  constructor(opts: OctaviaOptions = {}) {
    this.cloudEnv = opts.cloudEnv ?? machineCloudEnv();
    this.policy = {
      timeoutMs: opts.requestTimeoutMs ?? 10_000,
      attempts: opts.attempts ?? 4,
      backoffMs: opts.backoffMs ?? 250,
      maxBackoffMs: opts.maxBackoffMs ?? 4_000,
    };
    this.pollIntervalMs = opts.pollIntervalMs ?? 1_000;
  }

  private fail(r: Resolved, message: string, cause?: unknown, secrets: string[] = []): ExternalError {
    return new ExternalError('octavia', mask(`${r.where}: ${message}`, secrets), { cause });
  }

  private session(r: Resolved): KeystoneSession {
    const cloud: Cloud | { error: string } = findCloud(r.cloud, this.cloudEnv);
    if ('error' in cloud) throw this.fail(r, cloud.error);
    const key = JSON.stringify(cloud);
    let s = this.sessions.get(key);
    if (!s) {
      const ca = cloud.cacert ? this.cloudEnv.read(cloud.cacert) : undefined;
      if (cloud.cacert && ca === undefined) {
        throw this.fail(r, `${cloud.source}: cacert ${cloud.cacert} does not exist`);
      }
      s = new KeystoneSession(cloud, { ...this.policy, tls: { ca, rejectUnauthorized: cloud.verify } });
      this.sessions.set(key, s);
    }
    return s;
  }

  /** One call to the Octavia API with the session's token; a 401 gets one fresh token. */
  private async call(
    c: Pick<Ctx, 'r' | 'session' | 'endpoint'>,
    method: HttpMethod,
    path: string,
    body?: unknown,
  ): Promise<HttpAnswer> {
    for (let attempt = 0; ; attempt++) {
      let token: string;
      try {
        token = (await c.session.token()).token;
      } catch (e) {
        if (e instanceof KeystoneError) throw this.fail(c.r, e.message, e, c.session.secrets);
        throw e;
      }
      let answer: HttpAnswer;
      try {
        answer = await httpJson(
          { method, url: `${c.endpoint}${path}`, headers: { 'x-auth-token': token }, body },
          { ...c.session.policy, secrets: c.session.secrets },
        );
      } catch (e) {
        throw this.fail(c.r, `cannot reach Octavia: ${(e as Error).message}`, e, c.session.secrets);
      }
      if (answer.status === 401 && attempt === 0) {
        c.session.invalidate();
        continue;
      }
      return answer;
    }
  }

  private async context(t: DrainTarget): Promise<Ctx> {
    const r = resolve(t);
    const session = this.session(r);
    let endpoint: string;
    try {
      endpoint = await session.endpoint('load-balancer', r.interface, r.region);
    } catch (e) {
      if (e instanceof KeystoneError) throw this.fail(r, e.message, e, session.secrets);
      throw e;
    }
    // The catalog may name the API's root or its /v2 (or /v2.0) document.
    endpoint = endpoint.replace(/\/v2(\.0)?$/, '');
    const c = { r, session, endpoint };
    const pool = await this.findPool(c);
    const lbId = pool.loadbalancers?.[0]?.id;
    if (!lbId) throw this.fail(r, `pool ${pool.id} belongs to no load balancer`);
    return { ...c, poolId: pool.id, lbId };
  }

  private async findPool(
    c: Pick<Ctx, 'r' | 'session' | 'endpoint'>,
  ): Promise<{ id: string; loadbalancers?: Array<{ id: string }> }> {
    const { r } = c;
    if (UUID.test(r.pool)) {
      const a = await this.call(c, 'GET', `/v2/lbaas/pools/${encodeURIComponent(r.pool)}`);
      const pool = (a.json as { pool?: { id: string; loadbalancers?: Array<{ id: string }> } })?.pool;
      if (a.status === 200 && pool) return pool;
      if (a.status !== 404) throw this.fail(r, `reading pool ${r.pool}: ${saidBy(a)}`);
    }
    const a = await this.call(c, 'GET', `/v2/lbaas/pools?name=${encodeURIComponent(r.pool)}`);
    if (a.status !== 200) throw this.fail(r, `listing pools named ${r.pool}: ${saidBy(a)}`);
    const pools = ((a.json as { pools?: Array<{ id: string; name?: string }> })?.pools ?? []).filter(
      (p) => p.name === r.pool || p.id === r.pool,
    );
    if (pools.length === 0) throw this.fail(r, `pool "${r.pool}" not found`);
    if (pools.length > 1) {
      throw this.fail(
        r,
        `several pools are named "${r.pool}" (${pools.map((p) => p.id).join(', ')}); use its id`,
      );
    }
    return pools[0]!;
  }

  /** The host's member in the pool, or undefined when it has none. */
  private async member(c: Ctx): Promise<OctaviaMember | undefined> {
    const q = `address=${encodeURIComponent(c.r.address)}&protocol_port=${c.r.port}`;
    const a = await this.call(c, 'GET', `/v2/lbaas/pools/${c.poolId}/members?${q}`);
    if (a.status !== 200) throw this.fail(c.r, `listing members: ${saidBy(a)}`);
    const found = ((a.json as { members?: OctaviaMember[] })?.members ?? []).filter(
      (m) => m.address === c.r.address && m.protocol_port === c.r.port,
    );
    if (found.length > 1) throw this.fail(c.r, `${found.length} members have this address and port`);
    return found[0];
  }

  /** A member in ERROR is a clear failure, before anything is changed. */
  private checkMember(c: Ctx, m: OctaviaMember): void {
    if (m.provisioning_status === 'ERROR') {
      throw this.fail(c.r, `member ${m.id} is in provisioning_status ERROR; an operator must repair it`);
    }
  }

  /**
   * Wait until the load balancer is ACTIVE (it is PENDING_* while Octavia applies a change);
   * ERROR is a failure. Bounded by `deadline` and in tries.
   */
  private async waitActive(c: Ctx, deadline: number, signal?: AbortSignal, onProgress?: (m: string) => void) {
    const { last, done } = await pollUntil({
      deadline,
      intervalMs: this.pollIntervalMs,
      look: async () => {
        const a = await this.call(c, 'GET', `/v2/lbaas/loadbalancers/${c.lbId}`);
        if (a.status !== 200) throw this.fail(c.r, `reading load balancer ${c.lbId}: ${saidBy(a)}`);
        const status =
          (a.json as { loadbalancer?: { provisioning_status?: string } })?.loadbalancer
            ?.provisioning_status ?? '?';
        if (status === 'ERROR' || status === 'DELETED' || status === 'PENDING_DELETE') {
          throw this.fail(c.r, `load balancer ${c.lbId} is ${status}; nothing was changed by this step`);
        }
        return status;
      },
      done: (status) => status === 'ACTIVE',
      onWait: (status) => onProgress?.(`${c.r.where}: load balancer ${c.lbId} is ${status}, waiting`),
      signal,
    });
    if (!done) throw this.fail(c.r, `load balancer ${c.lbId} still ${last} after the provisioning_timeout`);
  }

  /**
   * One change: wait for ACTIVE, send it (a 409 means another change got in first: wait and
   * send again), wait for ACTIVE again, then check the member did not go to ERROR.
   */
  private async change(
    c: Ctx,
    what: string,
    method: 'PUT' | 'POST',
    path: string,
    body: unknown,
    opts: {
      signal?: AbortSignal;
      onProgress?: (m: string) => void;
      onConflict?: () => Promise<boolean>;
    } = {},
  ): Promise<void> {
    const deadline = Date.now() + c.r.provisioningMs;
    const maxTries = Math.ceil(c.r.provisioningMs / this.pollIntervalMs) + 2;
    let sent = false;
    for (let i = 0; i < maxTries && !sent; i++) {
      await this.waitActive(c, deadline, opts.signal, opts.onProgress);
      const a = await this.call(c, method, path, body);
      if (a.status >= 200 && a.status < 300) {
        sent = true;
      } else if (a.status === 409) {
        // A create retried after a lost answer meets its own member: that is success.
        if (opts.onConflict && (await opts.onConflict())) return;
        opts.onProgress?.(`${c.r.where}: ${what} refused for now (${saidBy(a)}), trying again`);
        if (Date.now() >= deadline) break;
        await sleep(Math.min(this.pollIntervalMs, Math.max(0, deadline - Date.now())), opts.signal);
      } else {
        throw this.fail(c.r, `${what}: ${saidBy(a)}`);
      }
    }
    if (!sent)
      throw this.fail(
        c.r,
        `${what}: load balancer ${c.lbId} stayed busy (409) past the provisioning_timeout`,
      );
    await this.waitActive(c, deadline, undefined, opts.onProgress);
    const m = await this.member(c);
    if (m?.provisioning_status === 'ERROR') {
      throw this.fail(c.r, `member ${m.id} went to provisioning_status ERROR after ${what}`);
    }
  }

  private put(c: Ctx, m: OctaviaMember, what: string, fields: Record<string, unknown>, opts?: DrainOptions) {
    return this.change(
      c,
      what,
      'PUT',
      `/v2/lbaas/pools/${c.poolId}/members/${m.id}`,
      { member: fields },
      opts,
    );
  }

  private async create(c: Ctx, host: string, weight: number): Promise<void> {
    const member: Record<string, unknown> = {
      address: c.r.address,
      protocol_port: c.r.port,
      weight,
      admin_state_up: true,
      name: host,
    };
    if (c.r.subnetId) member.subnet_id = c.r.subnetId;
    await this.change(
      c,
      'creating the member',
      'POST',
      `/v2/lbaas/pools/${c.poolId}/members`,
      { member },
      {
        onConflict: async () => (await this.member(c)) !== undefined,
      },
    );
  }

  /** Fields that take weight to 0, keeping the weight it had in a tag (when the API has tags). */
  private toZero(m: OctaviaMember): Record<string, unknown> {
    const fields: Record<string, unknown> = { weight: 0 };
    if (m.tags && m.weight > 0) fields.tags = withWeightTag(m.tags, m.weight);
    return fields;
  }

  /** The weight to come back with: the setting, else the one berth kept, else the member's own (or 1). */
  private weightBack(r: Resolved, m: OctaviaMember): number {
    return r.weight ?? rememberedWeight(m.tags) ?? (m.weight > 0 ? m.weight : 1);
  }

  /** A host without a member is `unknown`: not in the pool yet; undrain creates its member. */
  async status(t: DrainTarget): Promise<LbState> {
    const c = await this.context(t);
    const m = await this.member(c);
    if (!m) return 'unknown';
    this.checkMember(c, m);
    return memberState(m);
  }

  async drain(t: DrainTarget, opts: DrainOptions): Promise<void> {
    const { signal, onProgress } = opts;
    if (signal?.aborted) throw signal.reason ?? new Error('aborted');
    const c = await this.context(t);
    const m = await this.member(c);
    if (!m) {
      onProgress?.(`${c.r.where}: no such member, so nothing to drain`);
      return;
    }
    this.checkMember(c, m);
    const state = memberState(m);
    if (state === 'maint') {
      onProgress?.(`${c.r.where}: already out of rotation`);
      return;
    }
    if (state === 'ready') await this.put(c, m, 'setting weight 0', this.toZero(m), opts);
    const timeoutMs = Math.max(0, opts.timeoutMs);
    // Octavia reports connections per listener, not per member: the wait is the whole timeout.
    onProgress?.(`${c.r.where}: weight 0; letting open connections finish for ${timeoutMs} ms`);
    await sleep(timeoutMs, signal);
    await this.put(c, m, 'setting admin_state_up false', { admin_state_up: false }, opts);
  }

  async undrain(t: DrainTarget): Promise<void> {
    const c = await this.context(t);
    const m = await this.member(c);
    if (!m) return this.create(c, t.host, c.r.weight ?? 1);
    this.checkMember(c, m);
    const weight = this.weightBack(c.r, m);
    const tagged = rememberedWeight(m.tags) !== undefined;
    if (m.admin_state_up && m.weight === weight && !tagged) return;
    const fields: Record<string, unknown> = { weight, admin_state_up: true };
    if (m.tags && tagged) fields.tags = withWeightTag(m.tags);
    await this.put(c, m, `restoring weight ${weight} and admin_state_up true`, fields);
  }

  async restore(t: DrainTarget, state: LbState): Promise<void> {
    if (state === 'unknown') return;
    if (state === 'ready') return this.undrain(t);
    const c = await this.context(t);
    const m = await this.member(c);
    if (!m) {
      // Out already, as maint asks; drain means a member at weight 0.
      if (state === 'drain') await this.create(c, t.host, 0);
      return;
    }
    this.checkMember(c, m);
    const now = memberState(m);
    if (now === state) return;
    if (state === 'maint') {
      await this.put(c, m, 'setting admin_state_up false', { admin_state_up: false });
    } else {
      await this.put(c, m, 'setting weight 0', { ...this.toZero(m), admin_state_up: true });
    }
  }
}

export const octaviaPlugin: DrainProviderPlugin = {
  name: 'octavia',
  create: () => new OctaviaProvider(),
  validate: validateOctaviaSettings,
};
