/**
 * AWS Elastic Load Balancing v2 (ALB and NLB target groups) through the AWS SDK v3 and its
 * standard credential chain. A host is a target (an instance id or an IP address, on a port)
 * of one target group: drain deregisters it and waits while the group shows it `draining`;
 * undrain registers it and waits for `healthy`.
 *
 * ELBv2 keeps a deregistered target `draining` for the group's whole deregistration delay, even
 * once its connections are done, so a drain waits for that delay (at most its timeout); there is
 * no per-target connection count to watch.
 *
 * The SDK is imported on first use only: other berth commands do not pay for loading it.
 */
import { ExternalError } from '../../model/errors.js';
import { mask } from './cloud-http.js';
import { pollUntil } from './poll.js';
import {
  durationIssue,
  intOf,
  readDurationMs,
  renderedWithAddress,
  settingChecks,
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

export const ELBV2_SETTINGS = [
  'region',
  'target_group_arn',
  'target',
  'port',
  'availability_zone',
  'endpoint',
  'drain_timeout',
  'healthy_timeout',
] as const;

const DEFAULT_DRAIN_MS = 30_000;
/** ALB's default health check (5 checks 30 s apart) needs 2.5 min to call a new target healthy. */
const DEFAULT_HEALTHY_MS = 300_000;

/** `arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID` (other partitions too). */
const TG_ARN =
  /^arn:aws[a-z-]*:elasticloadbalancing:([a-z0-9-]+):(\d{12}):targetgroup\/([A-Za-z0-9-]{1,32})\/([0-9a-f]+)$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

export function parseTargetGroupArn(arn: string): { region: string; name: string } | undefined {
  const m = TG_ARN.exec(arn);
  return m ? { region: m[1]!, name: m[3]! } : undefined;
}

export function validateElbv2Settings(
  s: Record<string, unknown>,
  opts: { base: string; rendered: boolean },
): SettingIssue[] {
  const issues = unknownKeys(s, ELBV2_SETTINGS, opts.base);
  const { at, text, int } = settingChecks(s, opts, 'aws-elbv2', issues);
  const arn = text('target_group_arn', true);
  const parsed = arn === undefined ? undefined : parseTargetGroupArn(arn);
  if (arn !== undefined && !parsed) {
    issues.push({
      path: at('target_group_arn'),
      message: 'expected arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID',
    });
  }
  const region = text('region', false);
  if (region !== undefined && !REGION.test(region)) {
    issues.push({ path: at('region'), message: `"${region}" is not an AWS region name (e.g. eu-west-1)` });
  } else if (region !== undefined && parsed && parsed.region !== region) {
    issues.push({
      path: at('region'),
      message: `${region} differs from the target group's region ${parsed.region}`,
    });
  }
  const target = text('target', false);
  if (target !== undefined && /\s/.test(target)) {
    issues.push({ path: at('target'), message: `"${target}" is not an instance id or IP address` });
  }
  int('port', false, 1, 65535);
  text('availability_zone', false);
  const endpoint = text('endpoint', false);
  if (endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(endpoint)) {
    issues.push({ path: at('endpoint'), message: 'expected an http:// or https:// URL' });
  }
  issues.push(...durationIssue(s.drain_timeout, at('drain_timeout'), opts.rendered));
  issues.push(...durationIssue(s.healthy_timeout, at('healthy_timeout'), opts.rendered));
  return issues;
}

interface Resolved {
  arn: string;
  region: string;
  target: { Id: string; Port?: number; AvailabilityZone?: string };
  endpoint?: string;
  drainMs: number;
  healthyMs: number;
  /** `target 10.0.1.11:8080 of target group app (arn:...)`, for messages. */
  where: string;
}

function resolve(t: DrainTarget): Resolved {
  const { settings: s, value: id } = renderedWithAddress(
    t,
    validateElbv2Settings,
    'target',
    'the host has no address in the inventory (set an instance id or IP address)',
  );
  const arn = s.target_group_arn as string;
  const parsed = parseTargetGroupArn(arn)!;
  const port = intOf(s.port);
  const target: Resolved['target'] = { Id: id };
  if (port !== undefined) target.Port = port;
  if (typeof s.availability_zone === 'string') target.AvailabilityZone = s.availability_zone;
  return {
    arn,
    region: (s.region as string | undefined) ?? parsed.region,
    target,
    endpoint: s.endpoint as string | undefined,
    drainMs: readDurationMs(s.drain_timeout, DEFAULT_DRAIN_MS),
    healthyMs: readDurationMs(s.healthy_timeout, DEFAULT_HEALTHY_MS),
    where: `target ${id}${port === undefined ? '' : `:${port}`} of target group ${parsed.name} (${arn})`,
  };
}

/** What DescribeTargetHealth says of one target. */
export interface TargetHealth {
  State?: string;
  Reason?: string;
  Description?: string;
}

/**
 * A target's health to our states: deregistering (`draining`) is drain, not registered is
 * maint; every other state is a registered target (in rotation or on its way there).
 */
export function targetState(h: TargetHealth): LbState {
  switch (h.State) {
    case 'draining':
      return 'drain';
    case 'unused':
      return h.Reason === 'Target.NotRegistered' ? 'maint' : 'ready';
    case undefined:
      return 'unknown';
    default:
      return 'ready';
  }
}

function describeHealth(h: TargetHealth): string {
  return [h.State ?? 'no state', h.Reason, h.Description].filter(Boolean).join(': ');
}

/** The three calls berth makes, over the SDK. */
interface Elbv2Api {
  health(r: Resolved): Promise<TargetHealth>;
  register(r: Resolved): Promise<void>;
  deregister(r: Resolved): Promise<void>;
}

export interface Elbv2Options {
  /** Time between two looks at a target's health while waiting. */
  pollIntervalMs?: number;
  /** Bound on each HTTP request, from connect to the last byte. */
  requestTimeoutMs?: number;
  /** Tries per call in all; the SDK's standard mode retries throttling, 5xx and dropped connections with backoff. */
  maxAttempts?: number;
}

type Sdk = typeof import('@aws-sdk/client-elastic-load-balancing-v2');
let sdkLoading: Promise<Sdk> | undefined;
function loadSdk(): Promise<Sdk> {
  return (sdkLoading ??= import('@aws-sdk/client-elastic-load-balancing-v2'));
}

export class Elbv2Provider implements DrainProvider {
  readonly name = 'aws-elbv2';
  private readonly pollIntervalMs: number;
  private readonly requestTimeoutMs: number;
  private readonly maxAttempts: number;
  private readonly apis = new Map<string, Elbv2Api>();

  constructor(opts: Elbv2Options = {}) {
    this.pollIntervalMs = opts.pollIntervalMs ?? 2_000;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.maxAttempts = opts.maxAttempts ?? 4;
  }

  /** A client per region and endpoint; the SDK reads AWS_ENDPOINT_URL* and the credential chain. */
  private async api(r: Resolved): Promise<Elbv2Api> {
    const key = `${r.region} ${r.endpoint ?? ''}`;
    const known = this.apis.get(key);
    if (known) return known;
    const sdk = await loadSdk();
    const client = new sdk.ElasticLoadBalancingV2Client({
      region: r.region,
      ...(r.endpoint ? { endpoint: r.endpoint } : {}),
      maxAttempts: this.maxAttempts,
      retryMode: 'standard',
      requestHandler: {
        connectionTimeout: Math.min(5_000, this.requestTimeoutMs),
        requestTimeout: this.requestTimeoutMs,
        throwOnRequestTimeout: true,
      },
    });
    const fail = async (what: string, r: Resolved, e: unknown): Promise<never> => {
      // AWS's own error code (`Code`, as in its documentation) rather than the SDK's class name.
      const err = e as Error & { code?: string; Code?: string };
      // The SDK's messages hold no credentials; masking them anyway costs nothing.
      const secrets: string[] = [];
      try {
        const c = await client.config.credentials();
        secrets.push(c.accessKeyId, c.secretAccessKey, c.sessionToken ?? '');
      } catch {
        // No credentials at all: nothing to mask.
      }
      const name = err.Code ?? (err.name && err.name !== 'Error' ? err.name : err.code);
      const said = `${name ? `${name}: ` : ''}${err.message ?? String(e)}`;
      throw new ExternalError('aws-elbv2', mask(`${what} ${r.where}: ${said}`, secrets), { cause: e });
    };
    const api: Elbv2Api = {
      async health(r) {
        try {
          const out = await client.send(
            new sdk.DescribeTargetHealthCommand({ TargetGroupArn: r.arn, Targets: [r.target] }),
          );
          const d = (out.TargetHealthDescriptions ?? []).find((x) => x.Target?.Id === r.target.Id);
          return d?.TargetHealth ?? {};
        } catch (e) {
          return fail('DescribeTargetHealth for', r, e);
        }
      },
      async register(r) {
        try {
          await client.send(new sdk.RegisterTargetsCommand({ TargetGroupArn: r.arn, Targets: [r.target] }));
        } catch (e) {
          await fail('RegisterTargets for', r, e);
        }
      },
      async deregister(r) {
        try {
          await client.send(new sdk.DeregisterTargetsCommand({ TargetGroupArn: r.arn, Targets: [r.target] }));
        } catch (e) {
          await fail('DeregisterTargets for', r, e);
        }
      },
    };
    this.apis.set(key, api);
    return api;
  }

  async status(t: DrainTarget): Promise<LbState> {
    const r = resolve(t);
    return targetState(await (await this.api(r)).health(r));
  }

  /**
   * Poll until `done` says so or `timeoutMs` passes; the last health seen. An aborted signal
   * rejects at once.
   */
  private async waitFor(
    api: Elbv2Api,
    r: Resolved,
    timeoutMs: number,
    done: (h: TargetHealth) => boolean,
    opts: { signal?: AbortSignal; onProgress?: (m: string) => void; waiting: string },
  ): Promise<{ health: TargetHealth; done: boolean }> {
    const waited = await pollUntil({
      deadline: Date.now() + timeoutMs,
      intervalMs: this.pollIntervalMs,
      look: () => api.health(r),
      done,
      onWait: (health) => opts.onProgress?.(`${r.where}: ${describeHealth(health)}; ${opts.waiting}`),
      signal: opts.signal,
    });
    return { health: waited.last, done: waited.done };
  }

  async drain(t: DrainTarget, opts: DrainOptions): Promise<void> {
    const { signal, onProgress } = opts;
    if (signal?.aborted) throw signal.reason ?? new Error('aborted');
    const r = resolve(t);
    const api = await this.api(r);
    const state = targetState(await api.health(r));
    if (state === 'maint') {
      onProgress?.(`${r.where}: not registered, already out of rotation`);
      return;
    }
    if (state !== 'drain') await api.deregister(r);
    const timeoutMs = Math.max(0, opts.timeoutMs);
    const { done } = await this.waitFor(api, r, timeoutMs, (h) => targetState(h) === 'maint', {
      signal,
      onProgress,
      waiting: 'waiting for the deregistration delay to end',
    });
    if (signal?.aborted) throw signal.reason ?? new Error('aborted');
    if (!done) {
      onProgress?.(
        `${r.where}: drain timeout after ${timeoutMs} ms; deregistered, the target group is still draining it`,
      );
    }
  }

  /** Register and wait for `healthy` (or `unavailable` when the group has no health checks). */
  async undrain(t: DrainTarget): Promise<void> {
    const r = resolve(t);
    const api = await this.api(r);
    const before = await api.health(r);
    if (before.State === 'healthy') return;
    const state = targetState(before);
    if (state === 'maint' || state === 'drain') await api.register(r);
    const settled = (h: TargetHealth) =>
      h.State === 'healthy' ||
      (h.State === 'unavailable' && h.Reason === 'Target.HealthCheckDisabled') ||
      h.State === 'unhealthy' ||
      h.State === 'unhealthy.draining' ||
      (h.State === 'unused' && h.Reason !== 'Target.NotRegistered');
    const { health, done } = await this.waitFor(api, r, r.healthyMs, settled, {
      waiting: 'waiting for it to become healthy',
    });
    if (health.State === 'healthy' || health.State === 'unavailable') return;
    if (!done) {
      throw new ExternalError(
        'aws-elbv2',
        `${r.where}: registered but not healthy after the healthy_timeout (${r.healthyMs} ms): ${describeHealth(health)}`,
      );
    }
    throw new ExternalError('aws-elbv2', `${r.where}: registered but ${describeHealth(health)}`);
  }

  async restore(t: DrainTarget, state: LbState): Promise<void> {
    if (state === 'unknown') return;
    if (state === 'ready') return this.undrain(t);
    const r = resolve(t);
    const api = await this.api(r);
    const now = targetState(await api.health(r));
    if (now === state) return;
    if (state === 'drain') {
      // Draining is how a target leaves; one that is out already has to come in to leave again.
      if (now === 'maint') await api.register(r);
      await api.deregister(r);
      return;
    }
    if (now !== 'drain') await api.deregister(r);
    await this.waitFor(api, r, r.drainMs, (h) => targetState(h) === 'maint', {
      waiting: 'waiting for the deregistration delay to end',
    });
  }
}

export const elbv2Plugin: DrainProviderPlugin = {
  name: 'aws-elbv2',
  create: () => new Elbv2Provider(),
  validate: validateElbv2Settings,
};
