/**
 * A local stand-in for the Amazon EC2 Query API: the one call berth's inventory source makes,
 * `DescribeInstances` (version 2016-11-15), answered in EC2's XML as the API reference documents
 * it, on a loopback port in the test process. It is a fake of the documented API, not AWS.
 *
 * - Filters: `Filter.N.Name` / `Filter.N.Value.M`, values OR'ed, filters AND'ed, `*` and `?`
 *   wildcards; names `tag:KEY`, `tag-key`, `instance-state-name`, `instance-id`,
 *   `instance-type`, `availability-zone`, `private-ip-address`. Any other name is an
 *   `InvalidParameterValue`, as EC2 answers.
 * - Pagination: at most `MaxResults` (5..1000) instances per page, and at most the fake's own
 *   `pageSize` (default 2, so tests always see several pages); `nextToken` continues, an unknown
 *   token is `InvalidParameterValue`.
 * - Requests must be SigV4-signed with its test key, for its region and service `ec2`; the
 *   scope is checked, not the signature's math.
 * - Errors as EC2 writes them: `<Response><Errors><Error><Code>…`. `failNext(n, status, code)`
 *   makes the next calls fail (503 `RequestLimitExceeded` is EC2's throttling).
 */
import { randomBytes } from 'node:crypto';
import { esc, requestId, startQueryApi, testCredentials, type QueryCall } from './aws-query.js';

/** One instance as the fake holds it. */
export interface FakeInstance {
  id: string;
  state?: 'pending' | 'running' | 'stopping' | 'stopped' | 'shutting-down' | 'terminated';
  privateIp?: string;
  publicIp?: string;
  privateDns?: string;
  type?: string;
  availabilityZone?: string;
  tags?: Record<string, string>;
}

/** One call the fake answered. */
export type Ec2Call = QueryCall;

export interface Ec2Fake {
  /** http://127.0.0.1:PORT, for AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_EC2). */
  url: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  calls: Ec2Call[];
  /** Replace the instances the account has. */
  setInstances(list: FakeInstance[]): void;
  /** The next `n` calls are answered `code` with `status`. */
  failNext(n: number, status: number, code: string, message?: string): void;
  /** Closes the server and its connections; safe to call twice. */
  stop(): Promise<void>;
}

const NS = 'http://ec2.amazonaws.com/doc/2016-11-15/';
const STATE_CODES: Record<string, number> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};
const AUTH_FAILURE = 'AWS was not able to validate the provided access credentials';

function wildcard(pattern: string): RegExp {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`);
}

function instanceXml(i: FakeInstance): string {
  const state = i.state ?? 'running';
  const tags = Object.entries(i.tags ?? {})
    .map(([k, v]) => `<item><key>${esc(k)}</key><value>${esc(v)}</value></item>`)
    .join('');
  return [
    '<item>',
    `<instanceId>${i.id}</instanceId>`,
    '<imageId>ami-0123456789abcdef0</imageId>',
    `<instanceState><code>${STATE_CODES[state]}</code><name>${state}</name></instanceState>`,
    `<privateDnsName>${esc(i.privateDns ?? '')}</privateDnsName>`,
    '<dnsName></dnsName>',
    `<instanceType>${esc(i.type ?? 't3.micro')}</instanceType>`,
    `<placement><availabilityZone>${esc(i.availabilityZone ?? 'eu-west-1a')}</availabilityZone><tenancy>default</tenancy></placement>`,
    i.privateIp ? `<privateIpAddress>${esc(i.privateIp)}</privateIpAddress>` : '',
    i.publicIp ? `<ipAddress>${esc(i.publicIp)}</ipAddress>` : '',
    tags ? `<tagSet>${tags}</tagSet>` : '',
    '</item>',
  ].join('');
}

/** Start the fake on a free loopback port. */
export async function startEc2(
  opts: { instances?: FakeInstance[]; pageSize?: number } = {},
): Promise<Ec2Fake> {
  const region = 'eu-west-1';
  const credentials = testCredentials();
  const pageSize = opts.pageSize ?? 2;
  let instances: FakeInstance[] = [...(opts.instances ?? [])];
  /** nextToken -> the query it continues and where. */
  const tokens = new Map<string, { query: string; offset: number }>();

  const matches = (i: FakeInstance, name: string, values: string[]): boolean => {
    const any = (v: string | undefined) => v !== undefined && values.some((p) => wildcard(p).test(v));
    if (name.startsWith('tag:')) return any(i.tags?.[name.slice(4)]);
    switch (name) {
      case 'tag-key':
        return Object.keys(i.tags ?? {}).some((k) => any(k));
      case 'instance-state-name':
        return any(i.state ?? 'running');
      case 'instance-id':
        return any(i.id);
      case 'instance-type':
        return any(i.type ?? 't3.micro');
      case 'availability-zone':
        return any(i.availabilityZone ?? 'eu-west-1a');
      case 'private-ip-address':
        return any(i.privateIp);
      default:
        throw Object.assign(new Error(`The filter '${name}' is invalid`), { code: 'InvalidParameterValue' });
    }
  };

  const api = await startQueryApi({
    version: '2016-11-15',
    service: 'ec2',
    region,
    accessKeyId: credentials.accessKeyId,
    dialect: { kind: 'ec2' },
    actions: ['DescribeInstances'],
    auth: {
      status: 401,
      missing: { code: 'AuthFailure', message: AUTH_FAILURE },
      unknownKey: { code: 'AuthFailure', message: AUTH_FAILURE },
      wrongScopeCode: 'AuthFailure',
    },
    handle: ({ form: p, send, fail }) => {
      const filters: Array<{ name: string; values: string[] }> = [];
      for (let n = 1; p.has(`Filter.${n}.Name`); n++) {
        const values: string[] = [];
        for (let m = 1; p.has(`Filter.${n}.Value.${m}`); m++) values.push(p.get(`Filter.${n}.Value.${m}`)!);
        filters.push({ name: p.get(`Filter.${n}.Name`)!, values });
      }
      let found: FakeInstance[];
      try {
        found = instances.filter((i) => filters.every((f) => matches(i, f.name, f.values)));
      } catch (e) {
        return fail(400, 'InvalidParameterValue', (e as Error).message);
      }
      const maxResults = p.has('MaxResults') ? Number(p.get('MaxResults')) : undefined;
      if (maxResults !== undefined && !(maxResults >= 5 && maxResults <= 1000))
        return fail(400, 'InvalidParameterValue', 'MaxResults must be between 5 and 1000');
      const query = JSON.stringify(filters);
      let offset = 0;
      const token = p.get('NextToken');
      if (token) {
        const t = tokens.get(token);
        if (!t || t.query !== query) return fail(400, 'InvalidParameterValue', 'The token is invalid');
        offset = t.offset;
      }
      const size = Math.min(maxResults ?? Infinity, pageSize);
      const page = found.slice(offset, offset + size);
      let next = '';
      if (offset + size < found.length) {
        const nt = randomBytes(12).toString('hex');
        tokens.set(nt, { query, offset: offset + size });
        next = `<nextToken>${nt}</nextToken>`;
      }
      // Each instance in a reservation of its own, as instances launched one by one are.
      const reservations = page
        .map(
          (i) =>
            `<item><reservationId>r-${i.id.slice(2)}</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet>${instanceXml(i)}</instancesSet></item>`,
        )
        .join('');
      send(
        200,
        `<?xml version="1.0" encoding="UTF-8"?>\n<DescribeInstancesResponse xmlns="${NS}"><requestId>${requestId()}</requestId><reservationSet>${reservations}</reservationSet>${next}</DescribeInstancesResponse>\n`,
      );
    },
  });
  return {
    url: api.url,
    region,
    credentials,
    calls: api.calls,
    setInstances(list) {
      instances = [...list];
    },
    failNext(n, status, code, message = code === 'RequestLimitExceeded' ? 'Request limit exceeded.' : code) {
      api.failNext(n, status, code, message);
    },
    stop: api.stop,
  };
}
