/**
 * `source: aws-ec2`: the hosts are EC2 instances found by DescribeInstances with the filters
 * berth.yaml gives (only running ones unless the filters say otherwise), grouped by the values
 * of a tag (the reference setup's `tags.Type`), named and addressed as configured. inventory.yaml
 * may still give groups their vars, the `ssh` settings, and hosts (by the name found here) vars.
 *
 * Through the AWS SDK v3 and its standard credential chain (environment, shared files and
 * profiles, SSO, web identity, the ECS or EC2 role) and endpoint overrides (`AWS_ENDPOINT_URL`,
 * `AWS_ENDPOINT_URL_EC2`). The SDK is loaded on first use only. A call that fails (credentials,
 * network, throttling after the SDK's bounded retries) rejects: berth stops before any host is
 * touched, and no earlier answer is ever used instead.
 */
import { ExternalError } from '../../model/errors.js';
import type { Inventory, InventoryHost } from '../../model/service.js';
import type { InventoryContext, InventorySourcePlugin, SettingIssue } from './types.js';

export const EC2_SETTINGS = ['region', 'filters', 'group_by', 'name', 'address', 'endpoint'] as const;
const ADDRESSES = ['private_ip', 'public_ip', 'private_dns'] as const;
const NAMES = ['instance_id', 'private_dns', 'private_ip'] as const;
const GROUP_KEYS = ['instance_type', 'availability_zone'] as const;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
/** What inventory.yaml accepts as a host or group name; discovered ones must be so too. */
const INVENTORY_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** Bound on pages of DescribeInstances (1000 instances each). */
const MAX_PAGES = 1_000;

type Address = (typeof ADDRESSES)[number];

/** The settings, checked. */
interface Ec2Settings {
  region?: string;
  filters: Array<{ Name: string; Values: string[] }>;
  groupBy: string[];
  name: string;
  address: Address;
  endpoint?: string;
}

const isTagRef = (v: string) => /^tag:.+$/.test(v);

export function validateEc2Settings(s: Record<string, unknown>, { base }: { base: string }): SettingIssue[] {
  const issues: SettingIssue[] = [];
  const at = (key: string) => `${base}.${key}`;
  for (const k of Object.keys(s)) {
    if (!(EC2_SETTINGS as readonly string[]).includes(k))
      issues.push({ path: at(k), message: `unknown setting (aws-ec2 takes ${EC2_SETTINGS.join(', ')})` });
  }
  const text = (key: string): string | undefined => {
    const v = s[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v.trim() === '') {
      issues.push({ path: at(key), message: 'expected a non-empty string' });
      return undefined;
    }
    return v;
  };
  const region = text('region');
  if (region !== undefined && !REGION.test(region))
    issues.push({ path: at('region'), message: `"${region}" is not an AWS region name (e.g. eu-west-1)` });
  const f = s.filters;
  if (f !== undefined) {
    if (f === null || typeof f !== 'object' || Array.isArray(f)) {
      issues.push({
        path: at('filters'),
        message: "expected a map of DescribeInstances filters, e.g. { 'tag:Env': staging }",
      });
    } else {
      for (const [name, v] of Object.entries(f)) {
        const values = Array.isArray(v) ? v : [v];
        if (
          !values.length ||
          values.some((x) => typeof x !== 'string' && typeof x !== 'number') ||
          name === ''
        )
          issues.push({ path: `${at('filters')}.${name}`, message: 'expected a value or a list of values' });
      }
    }
  }
  const g = s.group_by;
  if (g !== undefined) {
    const list = Array.isArray(g) ? g : [g];
    list.forEach((x, i) => {
      const where = Array.isArray(g) ? `${at('group_by')}[${i}]` : at('group_by');
      if (typeof x !== 'string' || !(isTagRef(x) || (GROUP_KEYS as readonly string[]).includes(x)))
        issues.push({ path: where, message: `expected tag:KEY, ${GROUP_KEYS.join(' or ')}` });
    });
  }
  const name = text('name');
  if (name !== undefined && !isTagRef(name) && !(NAMES as readonly string[]).includes(name))
    issues.push({ path: at('name'), message: `expected tag:KEY or one of ${NAMES.join(', ')}` });
  const address = text('address');
  if (address !== undefined && !(ADDRESSES as readonly string[]).includes(address))
    issues.push({ path: at('address'), message: `expected one of ${ADDRESSES.join(', ')}` });
  const endpoint = text('endpoint');
  if (endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(endpoint))
    issues.push({ path: at('endpoint'), message: 'expected an http:// or https:// URL' });
  return issues;
}

function resolve(s: Record<string, unknown>): Ec2Settings {
  const filters = Object.entries((s.filters as Record<string, unknown> | undefined) ?? {}).map(
    ([Name, v]) => ({
      Name,
      Values: (Array.isArray(v) ? v : [v]).map(String),
    }),
  );
  // Only running instances unless the filters ask about states themselves.
  if (!filters.some((f) => f.Name === 'instance-state-name'))
    filters.push({ Name: 'instance-state-name', Values: ['running'] });
  const g = s.group_by;
  const out: Ec2Settings = {
    filters,
    groupBy: g === undefined ? [] : (Array.isArray(g) ? g : [g]).map(String),
    name: (s.name as string | undefined) ?? 'instance_id',
    address: (s.address as Address | undefined) ?? 'private_ip',
  };
  if (typeof s.region === 'string') out.region = s.region;
  if (typeof s.endpoint === 'string') out.endpoint = s.endpoint;
  return out;
}

/** The fields of an instance berth reads, as the SDK gives them. */
export interface Ec2Instance {
  InstanceId?: string;
  InstanceType?: string;
  PrivateIpAddress?: string;
  PublicIpAddress?: string;
  PrivateDnsName?: string;
  Placement?: { AvailabilityZone?: string };
  State?: { Name?: string };
  Tags?: Array<{ Key?: string; Value?: string }>;
}

/** A group name from a tag value: characters a group name cannot have become `_` (as Ansible does). */
export function groupName(value: string): string | undefined {
  const g = value
    .trim()
    .replace(/[^A-Za-z0-9_.-]/g, '_')
    .replace(/^[_.-]+/, '');
  return g === '' ? undefined : g;
}

/**
 * Instances to hosts (pure): names, addresses, groups, and vars describing the instance
 * (`instance_id`, `instance_type`, `availability_zone`, `private_ip`, `public_ip`,
 * `private_dns`, `tags`), under what inventory.yaml gives. Sorted by name, so a rollout's
 * order does not depend on the order EC2 answers in.
 * @throws ExternalError for an instance without the address asked for, a name that is not a
 *   valid host name, or two instances under one name.
 */
export function instancesToInventory(
  instances: Ec2Instance[],
  s: Pick<Ec2Settings, 'groupBy' | 'name' | 'address'>,
  file: Inventory | undefined,
): Inventory {
  const tagsOf = (i: Ec2Instance) =>
    Object.fromEntries((i.Tags ?? []).filter((t) => t.Key !== undefined).map((t) => [t.Key!, t.Value ?? '']));
  const groups: Inventory['groups'] = {};
  for (const [g, v] of Object.entries(file?.groups ?? {})) groups[g] = { vars: { ...v.vars } };
  const fileVars = new Map((file?.hosts ?? []).map((h) => [h.name, h.vars]));
  const byName = new Map<string, string>();
  const hosts: InventoryHost[] = [];
  for (const i of instances) {
    const id = i.InstanceId ?? '?';
    const tags = tagsOf(i);
    const field = (what: string): string | undefined => {
      if (what.startsWith('tag:')) return tags[what.slice(4)] || undefined;
      switch (what) {
        case 'instance_id':
          return i.InstanceId;
        case 'private_ip':
          return i.PrivateIpAddress;
        case 'public_ip':
          return i.PublicIpAddress;
        case 'private_dns':
          return i.PrivateDnsName || undefined;
        case 'instance_type':
          return i.InstanceType;
        case 'availability_zone':
          return i.Placement?.AvailabilityZone;
        default:
          return undefined;
      }
    };
    // An instance without the name tag is known by its id rather than left out.
    const name = field(s.name) ?? id;
    if (!INVENTORY_NAME.test(name)) {
      throw new ExternalError(
        'aws-ec2',
        `instance ${id}: its ${s.name} ${JSON.stringify(name)} is not a valid host name (letters, digits, "_", "." and "-")`,
      );
    }
    const other = byName.get(name);
    if (other !== undefined) {
      throw new ExternalError(
        'aws-ec2',
        `instances ${other} and ${id} are both named ${JSON.stringify(name)} (${s.name}); host names must be unique: give them distinct ${s.name} values or use name: instance_id`,
      );
    }
    byName.set(name, id);
    const address = field(s.address);
    if (!address) {
      throw new ExternalError(
        'aws-ec2',
        `instance ${id} (${name}) has no ${s.address.replace('_', ' ')}; choose another inventory.address or filter it out`,
      );
    }
    const hostGroups = new Set<string>();
    for (const by of s.groupBy) {
      const v = field(by);
      const g = v === undefined ? undefined : groupName(v);
      if (g !== undefined) hostGroups.add(g);
    }
    for (const g of hostGroups) groups[g] ??= { vars: {} };
    const found: Record<string, unknown> = { instance_id: id, tags };
    if (i.InstanceType) found.instance_type = i.InstanceType;
    if (i.Placement?.AvailabilityZone) found.availability_zone = i.Placement.AvailabilityZone;
    if (i.PrivateIpAddress) found.private_ip = i.PrivateIpAddress;
    if (i.PublicIpAddress) found.public_ip = i.PublicIpAddress;
    if (i.PrivateDnsName) found.private_dns = i.PrivateDnsName;
    hosts.push({ name, address, groups: [...hostGroups].sort(), vars: { ...found, ...fileVars.get(name) } });
  }
  hosts.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const out: Inventory = { hosts, groups };
  if (file?.ssh) out.ssh = { ...file.ssh };
  return out;
}

type Sdk = typeof import('@aws-sdk/client-ec2');
let sdkLoading: Promise<Sdk> | undefined;
function loadSdk(): Promise<Sdk> {
  return (sdkLoading ??= import('@aws-sdk/client-ec2'));
}

export interface Ec2SourceOptions {
  /** Bound on each HTTP request, from connect to the last byte. */
  requestTimeoutMs?: number;
  /** Tries per call in all; the SDK's standard mode retries throttling, 5xx and dropped connections with backoff. */
  maxAttempts?: number;
}

/** Every instance the filters find, page by page (bounded). */
async function describeAll(
  s: Ec2Settings,
  ctx: InventoryContext,
  o: Required<Ec2SourceOptions>,
): Promise<Ec2Instance[]> {
  const sdk = await loadSdk();
  const client = new sdk.EC2Client({
    ...(s.region ? { region: s.region } : {}),
    ...(s.endpoint ? { endpoint: s.endpoint } : {}),
    maxAttempts: o.maxAttempts,
    retryMode: 'standard',
    requestHandler: {
      connectionTimeout: Math.min(5_000, o.requestTimeoutMs),
      requestTimeout: o.requestTimeoutMs,
      throwOnRequestTimeout: true,
    },
  });
  let region = s.region ?? '(no region)';
  const where = () => {
    const endpoint = s.endpoint ?? process.env.AWS_ENDPOINT_URL_EC2 ?? process.env.AWS_ENDPOINT_URL;
    return `DescribeInstances in ${region}${endpoint ? ` at ${endpoint}` : ''}`;
  };
  try {
    try {
      region = await client.config.region();
    } catch {
      throw new ExternalError(
        'aws-ec2',
        'no AWS region: set inventory.region in berth.yaml, or AWS_REGION, or a region in your AWS profile',
      );
    }
    const out: Ec2Instance[] = [];
    let token: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const answer = await client.send(
        new sdk.DescribeInstancesCommand({ Filters: s.filters, MaxResults: 1000, NextToken: token }),
        ctx.signal ? { abortSignal: ctx.signal } : {},
      );
      for (const r of answer.Reservations ?? []) out.push(...((r.Instances ?? []) as Ec2Instance[]));
      token = answer.NextToken || undefined;
      if (!token) return out;
    }
    throw new ExternalError(
      'aws-ec2',
      `${where()}: more than ${MAX_PAGES} pages of instances; narrow the filters`,
    );
  } catch (e) {
    if (e instanceof ExternalError) throw e;
    throw new ExternalError('aws-ec2', `${where()} failed: ${await describeError(e, client)}`, { cause: e });
  } finally {
    client.destroy();
  }
}

/** AWS's error code and message, or what the network said; credentials masked all the same. */
async function describeError(
  e: unknown,
  client: { config: { credentials: () => Promise<unknown> } },
): Promise<string> {
  const err = e as Error & { code?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  const secrets: string[] = [];
  try {
    const c = (await client.config.credentials()) as {
      accessKeyId?: string;
      secretAccessKey?: string;
      sessionToken?: string;
    };
    secrets.push(c.accessKeyId ?? '', c.secretAccessKey ?? '', c.sessionToken ?? '');
  } catch {
    // No credentials at all: nothing to mask.
  }
  const net = err.code && /^E[A-Z]+$/.test(err.code) ? `cannot connect (${err.code}): ` : '';
  const name = err.Code ?? (err.name && err.name !== 'Error' && !net ? err.name : undefined);
  let text = `${net}${name ? `${name}: ` : ''}${err.message ?? String(e)}`;
  for (const s of secrets) if (s.length >= 4) text = text.split(s).join('***');
  return text;
}

export function ec2Plugin(opts: Ec2SourceOptions = {}): InventorySourcePlugin {
  const o = { requestTimeoutMs: opts.requestTimeoutMs ?? 10_000, maxAttempts: opts.maxAttempts ?? 4 };
  return {
    name: 'aws-ec2',
    create: () => ({
      name: 'aws-ec2',
      async load(ctx) {
        const s = resolve(ctx.settings);
        return instancesToInventory(await describeAll(s, ctx, o), s, ctx.file);
      },
    }),
    validate: validateEc2Settings,
  };
}
