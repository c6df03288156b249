/**
 * A local stand-in for an OpenStack cloud's load balancing: Keystone v3 (`POST /v3/auth/tokens`
 * with a service catalog) and the Octavia v2 endpoints berth calls (pools, members, load
 * balancers), as the OpenStack API references document them, on a loopback port in the test
 * process. It is a fake of the documented API, not OpenStack.
 *
 * Like Octavia, a change puts the load balancer in PENDING_UPDATE for a while (other changes get
 * 409 meanwhile) and then applies it to the data plane. The data plane is a real HAProxy when one
 * is given (what Octavia's amphorae run): each member maps to the HAProxy server with its address
 * and port, weight to `set server ... weight`, admin_state_up to `state ready|maint`, and a
 * server without a member is in maint.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { HaproxyHandle } from './haproxy.js';

export interface FakeMember {
  id: string;
  name: string;
  address: string;
  protocol_port: number;
  weight: number;
  admin_state_up: boolean;
  provisioning_status: string;
  operating_status: string;
  subnet_id?: string;
  tags: string[];
}

/** One request the fake answered, in order. Keystone calls carry no body (it holds secrets). */
export interface OctaviaCall {
  method: string;
  /** Path and query, e.g. `/load-balancer/v2/lbaas/pools?name=app-pool`. */
  path: string;
  status: number;
  /** The JSON body of a member change (PUT/POST), as sent. */
  body?: unknown;
}

export interface OctaviaFake {
  /** http://127.0.0.1:PORT */
  url: string;
  /** Keystone's auth_url, with its /v3. */
  authUrl: string;
  /** What Keystone accepts (also written into clouds.yaml by `writeClouds`). */
  credentials: {
    username: string;
    password: string;
    userDomain: string;
    project: string;
    projectDomain: string;
    appCredentialId: string;
    appCredentialSecret: string;
  };
  region: string;
  pool: { id: string; name: string };
  loadBalancerId: string;
  calls: OctaviaCall[];
  /** Tokens issued so far. */
  tokens: string[];
  member(address: string, port: number): FakeMember | undefined;
  /** Create or change a member directly (not through the API), at once, data plane included. */
  setMember(address: string, port: number, fields: Partial<Omit<FakeMember, 'id'>>): Promise<FakeMember>;
  /** Remove a member directly (the state a deleting tool leaves behind). */
  removeMember(address: string, port: number): Promise<void>;
  /** Force the load balancer's provisioning_status (e.g. ERROR). */
  setLoadBalancerStatus(status: string): void;
  /** PENDING_UPDATE for `ms`, as if another change were running (changes get 409 meanwhile). */
  busy(ms: number): void;
  /** The next `n` member changes are answered 409 (a change slipped in first). */
  conflictNext(n: number): void;
  /** The next `n` Octavia calls are answered `status` (429 for throttling, 5xx). */
  failNext(n: number, status: number): void;
  /** The next accepted member change ends with the member in provisioning_status ERROR. */
  breakNextChange(): void;
  /** Write a clouds.yaml into `dir` with clouds `password`, `appcred`, `badpass`, `down` (nothing listens); its path. */
  writeClouds(dir: string): string;
  /** HAProxy commands that failed while following the API's state (none, normally). */
  dataPlaneErrors: string[];
  /** Closes the server (its connections too); safe to call twice. */
  stop(): Promise<void>;
}

export interface OctaviaFakeOptions {
  /** The data plane; without it only the API state changes. */
  haproxy?: HaproxyHandle;
  /** How long a change keeps the load balancer PENDING_UPDATE (default 100 ms). */
  pendingMs?: number;
  /** Members at start; each HAProxy server without one is put in maint. */
  members?: Array<{ address: string; port: number; weight?: number; name?: string }>;
  poolName?: string;
}

const fault = (status: number, faultstring: string) => ({
  faultcode: status < 500 ? 'Client' : 'Server',
  faultstring,
  debuginfo: null,
});

/** Start the fake on a free loopback port; resolves once it listens. */
export async function startOctavia(opts: OctaviaFakeOptions = {}): Promise<OctaviaFake> {
  const pendingMs = opts.pendingMs ?? 100;
  const credentials = {
    username: 'berth-deployer',
    password: `pw-${randomBytes(6).toString('hex')}`,
    userDomain: 'Default',
    project: 'ops',
    projectDomain: 'Default',
    appCredentialId: randomBytes(8).toString('hex'),
    appCredentialSecret: `acs-${randomBytes(6).toString('hex')}`,
  };
  const region = 'RegionOne';
  const lb = { id: randomUUID(), name: 'web-lb', provisioning_status: 'ACTIVE', operating_status: 'ONLINE' };
  const pool = { id: randomUUID(), name: opts.poolName ?? 'app-pool' };
  const members = new Map<string, FakeMember>();
  const key = (address: string, port: number) => `${address}:${port}`;
  const calls: OctaviaCall[] = [];
  const tokens: string[] = [];
  let conflicts = 0;
  let failures: { n: number; status: number } = { n: 0, status: 503 };
  let breakNext = false;
  let pendingTimer: NodeJS.Timeout | undefined;
  let busyUntil = 0;

  /** Bring HAProxy in line with the members, one runtime command at a time. */
  const dataPlaneErrors: string[] = [];
  let syncing = Promise.resolve();
  const sync = () => {
    const hap = opts.haproxy;
    if (!hap) return syncing;
    // Never rejects (a failed command is kept in dataPlaneErrors), so one failure cannot stop
    // later syncs or surface as an unhandled rejection after stop().
    syncing = syncing.then(async () => {
      const run = async (cmd: string) => {
        const answer = (await hap.command(cmd).catch((e: Error) => e.message)).trim();
        if (answer) dataPlaneErrors.push(`${cmd}: ${answer}`);
      };
      for (const s of hap.servers) {
        const m = members.get(key(s.address, s.port));
        if (!m || !m.admin_state_up) {
          await run(`set server ${hap.backend}/${s.name} state maint`);
        } else {
          await run(`set server ${hap.backend}/${s.name} weight ${m.weight}`);
          await run(`set server ${hap.backend}/${s.name} state ready`);
        }
      }
    });
    return syncing;
  };

  const newMember = (address: string, port: number, f: Partial<FakeMember> = {}): FakeMember => ({
    id: randomUUID(),
    name: f.name ?? '',
    address,
    protocol_port: port,
    weight: f.weight ?? 1,
    admin_state_up: f.admin_state_up ?? true,
    provisioning_status: 'ACTIVE',
    operating_status: 'NO_MONITOR',
    tags: [],
    ...f,
  });
  for (const m of opts.members ?? []) members.set(key(m.address, m.port), newMember(m.address, m.port, m));

  /** Accept a change: PENDING_UPDATE now, applied to the data plane and ACTIVE after pendingMs. */
  const pending = (m: FakeMember, apply: () => void) => {
    lb.provisioning_status = 'PENDING_UPDATE';
    m.provisioning_status = m.provisioning_status === 'ERROR' ? 'ERROR' : 'PENDING_UPDATE';
    const broken = breakNext;
    breakNext = false;
    pendingTimer = setTimeout(() => {
      pendingTimer = undefined;
      apply();
      m.provisioning_status = broken ? 'ERROR' : 'ACTIVE';
      void sync().then(() => {
        if (lb.provisioning_status === 'PENDING_UPDATE' && Date.now() >= busyUntil)
          lb.provisioning_status = 'ACTIVE';
      });
    }, pendingMs);
  };

  const catalog = (url: string) => [
    {
      type: 'identity',
      name: 'keystone',
      endpoints: [{ interface: 'public', region, region_id: region, url: `${url}/identity/v3` }],
    },
    {
      type: 'load-balancer',
      name: 'octavia',
      endpoints: [
        { interface: 'public', region, region_id: region, url: `${url}/load-balancer` },
        { interface: 'internal', region, region_id: region, url: `${url}/lb-internal` },
      ],
    },
  ];

  const readBody = (req: http.IncomingMessage) =>
    new Promise<unknown>((resolve) => {
      let text = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (text += d));
      req.on('end', () => {
        try {
          resolve(text ? JSON.parse(text) : undefined);
        } catch {
          resolve(Symbol.for('invalid'));
        }
      });
    });

  let url = '';
  const server = http.createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const u = new URL(req.url ?? '/', 'http://fake');
      const call: OctaviaCall = { method: req.method ?? 'GET', path: u.pathname + u.search, status: 0 };
      calls.push(call);
      const send = (status: number, json?: unknown, headers: Record<string, string> = {}) => {
        call.status = status;
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(json === undefined ? '' : JSON.stringify(json));
      };
      if (u.pathname === '/identity/v3/auth/tokens' && req.method === 'POST') {
        return keystone(body, send);
      }
      const prefix = ['/load-balancer', '/lb-internal'].find((p) => u.pathname.startsWith(`${p}/v2/lbaas/`));
      if (!prefix) return send(404, fault(404, `no such path ${u.pathname}`));
      if (!tokens.includes(String(req.headers['x-auth-token'] ?? ''))) {
        return send(401, {
          error: {
            code: 401,
            title: 'Unauthorized',
            message: 'The request you have made requires authentication.',
          },
        });
      }
      if (failures.n > 0) {
        failures.n--;
        return send(
          failures.status,
          fault(failures.status, failures.status === 429 ? 'Rate limit exceeded' : 'Service Unavailable'),
          failures.status === 429 ? { 'retry-after': '0' } : {},
        );
      }
      if (req.method === 'PUT' || req.method === 'POST' || req.method === 'DELETE') call.body = body;
      return octavia(req.method ?? 'GET', u.pathname.slice(prefix.length), u.searchParams, body, send);
    })().catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(e));
    });
  });

  type Send = (status: number, json?: unknown, headers?: Record<string, string>) => void;

  function keystone(body: unknown, send: Send) {
    const a = (body as { auth?: { identity?: Record<string, unknown>; scope?: unknown } })?.auth;
    const id = a?.identity as
      | {
          methods?: string[];
          password?: {
            user?: { name?: string; id?: string; password?: string; domain?: { name?: string; id?: string } };
          };
          application_credential?: { id?: string; secret?: string };
        }
      | undefined;
    const unauthorized = () =>
      send(401, {
        error: {
          code: 401,
          title: 'Unauthorized',
          message: 'The request you have made requires authentication.',
        },
      });
    if (id?.methods?.[0] === 'password') {
      const u = id.password?.user;
      const scope = (a?.scope as { project?: { name?: string; domain?: { name?: string } } })?.project;
      const ok =
        u?.name === credentials.username &&
        u.domain?.name === credentials.userDomain &&
        u.password === credentials.password &&
        scope?.name === credentials.project &&
        scope.domain?.name === credentials.projectDomain;
      if (!ok) return unauthorized();
    } else if (id?.methods?.[0] === 'application_credential') {
      const c = id.application_credential;
      if (a?.scope)
        return send(401, {
          error: {
            code: 401,
            title: 'Unauthorized',
            message: 'Application credentials cannot request a scope.',
          },
        });
      if (c?.id !== credentials.appCredentialId || c.secret !== credentials.appCredentialSecret)
        return unauthorized();
    } else {
      return send(400, {
        error: { code: 400, title: 'Bad Request', message: 'Expecting to find identity in auth.' },
      });
    }
    const token = randomBytes(16).toString('hex');
    tokens.push(token);
    const expires = new Date(Date.now() + 3_600_000).toISOString();
    send(
      201,
      {
        token: {
          methods: id.methods,
          expires_at: expires,
          issued_at: new Date().toISOString(),
          catalog: catalog(url),
          project: { name: credentials.project },
        },
      },
      { 'x-subject-token': token },
    );
  }

  const poolJson = () => ({
    ...pool,
    loadbalancers: [{ id: lb.id }],
    members: [...members.values()].map((m) => ({ id: m.id })),
  });

  function octavia(method: string, p: string, q: URLSearchParams, body: unknown, send: Send) {
    let m: RegExpExecArray | null;
    if (method === 'GET' && p === '/v2/lbaas/pools') {
      const name = q.get('name');
      return send(200, { pools: name === null || name === pool.name ? [poolJson()] : [], pools_links: [] });
    }
    if ((m = /^\/v2\/lbaas\/pools\/([^/]+)$/.exec(p)) && method === 'GET') {
      return m[1] === pool.id
        ? send(200, { pool: poolJson() })
        : send(404, fault(404, `Pool ${m[1]} not found.`));
    }
    if ((m = /^\/v2\/lbaas\/loadbalancers\/([^/]+)$/.exec(p)) && method === 'GET') {
      return m[1] === lb.id
        ? send(200, { loadbalancer: { ...lb } })
        : send(404, fault(404, `Load Balancer ${m[1]} not found.`));
    }
    if ((m = /^\/v2\/lbaas\/pools\/([^/]+)\/members(?:\/([^/]+))?$/.exec(p))) {
      if (m[1] !== pool.id) return send(404, fault(404, `Pool ${m[1]} not found.`));
      const memberId = m[2];
      const found = memberId ? [...members.values()].find((x) => x.id === memberId) : undefined;
      if (memberId && !found) return send(404, fault(404, `Member ${memberId} not found.`));
      if (method === 'GET') {
        if (found) return send(200, { member: { ...found } });
        const list = [...members.values()].filter(
          (x) =>
            (!q.has('address') || x.address === q.get('address')) &&
            (!q.has('protocol_port') || String(x.protocol_port) === q.get('protocol_port')),
        );
        return send(200, { members: list.map((x) => ({ ...x })), members_links: [] });
      }
      // Changes: refused while the load balancer is not ACTIVE, as Octavia does.
      const immutable = () =>
        send(409, fault(409, `Invalid state ${lb.provisioning_status} of loadbalancer resource ${lb.id}`));
      if (conflicts > 0) {
        conflicts--;
        lb.provisioning_status = 'PENDING_UPDATE';
        busyFor(pendingMs);
        return immutable();
      }
      if (lb.provisioning_status !== 'ACTIVE') return immutable();
      const fields = (body as { member?: Record<string, unknown> })?.member;
      if (method !== 'DELETE' && (typeof fields !== 'object' || fields === null)) {
        return send(400, fault(400, 'Invalid input: expected a member object'));
      }
      if (method === 'PUT' && found) {
        const allowed = [
          'weight',
          'admin_state_up',
          'name',
          'tags',
          'backup',
          'monitor_address',
          'monitor_port',
        ];
        const bad = Object.keys(fields!).filter((k) => !allowed.includes(k));
        if (bad.length)
          return send(400, fault(400, `Invalid input for field/attribute member: ${bad.join(', ')}`));
        const w = fields!.weight;
        if (w !== undefined && (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > 256)) {
          return send(400, fault(400, `Invalid input for field/attribute weight. Value: '${String(w)}'`));
        }
        pending(found, () => Object.assign(found, fields));
        return send(200, { member: { ...found, ...fields, provisioning_status: 'PENDING_UPDATE' } });
      }
      if (method === 'POST' && !memberId) {
        const address = fields!.address;
        const port = fields!.protocol_port;
        if (typeof address !== 'string' || typeof port !== 'number') {
          return send(400, fault(400, 'Invalid input: address and protocol_port are required'));
        }
        if (members.has(key(address, port))) {
          return send(
            409,
            fault(409, `Another member on this pool is already using ip ${address} on protocol_port ${port}`),
          );
        }
        const created = newMember(address, port, {
          name: typeof fields!.name === 'string' ? fields!.name : '',
          weight: typeof fields!.weight === 'number' ? fields!.weight : 1,
          admin_state_up: fields!.admin_state_up !== false,
          subnet_id: typeof fields!.subnet_id === 'string' ? fields!.subnet_id : undefined,
        });
        created.provisioning_status = 'PENDING_CREATE';
        members.set(key(address, port), created);
        pending(created, () => undefined);
        return send(201, { member: { ...created } });
      }
      if (method === 'DELETE' && found) {
        // Implemented as Octavia does, so that a test that forbids it can see it happen.
        members.delete(key(found.address, found.protocol_port));
        pending(found, () => undefined);
        return send(204);
      }
    }
    return send(405, fault(405, `${method} ${p} is not allowed`));
  }

  const busyFor = (ms: number) => {
    busyUntil = Math.max(busyUntil, Date.now() + ms);
    lb.provisioning_status = 'PENDING_UPDATE';
    setTimeout(() => {
      if (lb.provisioning_status === 'PENDING_UPDATE' && !pendingTimer && Date.now() >= busyUntil) {
        lb.provisioning_status = 'ACTIVE';
      }
    }, ms + 5);
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await sync();
  let stopped: Promise<void> | undefined;
  return {
    url,
    authUrl: `${url}/identity/v3`,
    credentials,
    region,
    pool,
    loadBalancerId: lb.id,
    calls,
    tokens,
    dataPlaneErrors,
    member: (address, port) => {
      const m = members.get(key(address, port));
      return m ? { ...m, tags: [...m.tags] } : undefined;
    },
    async setMember(address, port, fields) {
      const k = key(address, port);
      const m = members.get(k) ?? newMember(address, port);
      Object.assign(m, fields);
      members.set(k, m);
      await sync();
      return { ...m };
    },
    async removeMember(address, port) {
      members.delete(key(address, port));
      await sync();
    },
    setLoadBalancerStatus(status) {
      lb.provisioning_status = status;
    },
    busy: busyFor,
    conflictNext(n) {
      conflicts = n;
    },
    failNext(n, status) {
      failures = { n, status };
    },
    breakNextChange() {
      breakNext = true;
    },
    writeClouds(dir) {
      const file = path.join(dir, 'clouds.yaml');
      const c = credentials;
      writeFileSync(
        file,
        [
          'clouds:',
          '  password:',
          `    auth: { auth_url: '${url}/identity/v3', username: ${c.username}, password: '${c.password}', project_name: ${c.project}, user_domain_name: ${c.userDomain}, project_domain_name: ${c.projectDomain} }`,
          `    region_name: ${region}`,
          '  appcred:',
          '    auth_type: v3applicationcredential',
          `    auth: { auth_url: '${url}/identity', application_credential_id: '${c.appCredentialId}', application_credential_secret: '${c.appCredentialSecret}' }`,
          '  badpass:',
          `    auth: { auth_url: '${url}/identity/v3', username: ${c.username}, password: 'not-${c.password}', project_name: ${c.project}, user_domain_name: ${c.userDomain}, project_domain_name: ${c.projectDomain} }`,
          '  down:',
          `    auth: { auth_url: 'http://127.0.0.1:1/v3', username: ${c.username}, password: '${c.password}', project_name: ${c.project}, user_domain_name: ${c.userDomain}, project_domain_name: ${c.projectDomain} }`,
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      return file;
    },
    stop: () =>
      (stopped ??= new Promise<void>((resolve) => {
        clearTimeout(pendingTimer);
        server.closeAllConnections();
        server.close(() => resolve());
      })),
  };
}
