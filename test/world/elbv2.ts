/**
 * A local stand-in for AWS Elastic Load Balancing v2: the Query API calls berth makes
 * (RegisterTargets, DeregisterTargets, DescribeTargetHealth, version 2015-12-01) answered in
 * ELBv2's XML, as the API reference documents them, on a loopback port in the test process. It
 * is a fake of the documented API, not AWS. The SDK reaches it through its standard endpoint
 * override (AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2) and signs requests with test keys; the
 * fake checks the signature's scope (key, region, service), not its math.
 *
 * Targets behave as ELBv2 documents: a registered target is `initial` until it passes
 * `healthyThreshold` HTTP health checks in a row (real checks to its address and port), then
 * `healthy` (or `unhealthy` after `unhealthyThreshold` failures); a deregistered one is
 * `draining` for the group's whole deregistration delay, then `unused` (Target.NotRegistered).
 * With a real HAProxy as the data plane, a healthy target's server is `ready`, a draining one
 * `drain` (open connections go on, no new ones), and anything else `maint`.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { esc, queryResponseXml, startQueryApi, testCredentials, type QueryCall } from './aws-query.js';
import type { HaproxyHandle } from './haproxy.js';

export type TargetHealthState = 'initial' | 'healthy' | 'unhealthy' | 'draining';

interface Registered {
  id: string;
  port: number;
  state: TargetHealthState;
  reason?: string;
  description?: string;
  successes: number;
  failures: number;
  drainTimer?: NodeJS.Timeout;
}

/** One Query API request the fake answered, in order. */
export type Elbv2Call = QueryCall;

export interface Elbv2Fake {
  /** http://127.0.0.1:PORT, for AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2. */
  url: string;
  region: string;
  /** The keys the fake accepts (the secret is only ever handed to the SDK). */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** The one target group's ARN. */
  targetGroupArn: string;
  calls: Elbv2Call[];
  /** A target's health as DescribeTargetHealth would show it. */
  health(id: string, port: number): { State: string; Reason?: string };
  /** Every state a target went through, in order (`unused` when it left). */
  history(id: string, port: number): string[];
  /** Force a target's state without the API (registered targets keep being health checked). */
  set(id: string, port: number, state: 'healthy' | 'draining' | 'unused'): Promise<void>;
  /** The next `n` calls are answered `code` with `status` (e.g. 400 Throttling, 503 ServiceUnavailable). */
  failNext(n: number, status: number, code: string, message?: string): void;
  /** HAProxy commands that failed while following the API's state (none, normally). */
  dataPlaneErrors: string[];
  /** Stops health checks and timers, closes the server; safe to call twice. */
  stop(): Promise<void>;
}

export interface Elbv2FakeOptions {
  haproxy?: HaproxyHandle;
  /** Targets the group may register: an id (instance id or IP) and where it listens. */
  targets: Array<{ id: string; address: string; port: number; registered?: boolean }>;
  /** The group's deregistration delay (default 800 ms). */
  deregistrationDelayMs?: number;
  health?: {
    intervalMs?: number;
    timeoutMs?: number;
    healthyThreshold?: number;
    unhealthyThreshold?: number;
    path?: string;
  };
}

const NS = 'http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/';

/** Start the fake on a free loopback port, with its health checker; resolves once it listens. */
export async function startElbv2(opts: Elbv2FakeOptions): Promise<Elbv2Fake> {
  const region = 'eu-west-1';
  const account = '123456789012';
  const targetGroupArn = `arn:aws:elasticloadbalancing:${region}:${account}:targetgroup/app/${randomBytes(8).toString('hex')}`;
  const credentials = testCredentials();
  const delayMs = opts.deregistrationDelayMs ?? 800;
  const hc = {
    intervalMs: opts.health?.intervalMs ?? 100,
    timeoutMs: opts.health?.timeoutMs ?? 500,
    healthyThreshold: opts.health?.healthyThreshold ?? 2,
    unhealthyThreshold: opts.health?.unhealthyThreshold ?? 2,
    path: opts.health?.path ?? '/',
  };
  const known = new Map(opts.targets.map((t) => [t.id, t]));
  const registered = new Map<string, Registered>();
  const histories = new Map<string, string[]>();
  const key = (id: string, port: number) => `${id}:${port}`;

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
        const t = opts.targets.find((x) => x.address === s.address && x.port === s.port);
        const r = t ? registered.get(key(t.id, t.port)) : undefined;
        const state = r?.state === 'healthy' ? 'ready' : r?.state === 'draining' ? 'drain' : 'maint';
        await run(`set server ${hap.backend}/${s.name} state ${state}`);
      }
    });
    return syncing;
  };
  const record = (id: string, port: number, state: string) => {
    const h = histories.get(key(id, port)) ?? [];
    if (h.at(-1) !== state) h.push(state);
    histories.set(key(id, port), h);
  };
  const setState = (r: Registered, state: TargetHealthState, reason?: string, description?: string) => {
    Object.assign(r, { state, reason, description });
    record(r.id, r.port, state);
    void sync();
  };
  const register = (id: string, port: number) => {
    const k = key(id, port);
    const r = registered.get(k);
    if (r && r.state !== 'draining') return;
    if (r) clearTimeout(r.drainTimer);
    const fresh: Registered = { id, port, state: 'initial', successes: 0, failures: 0 };
    registered.set(k, fresh);
    setState(fresh, 'initial', 'Elb.RegistrationInProgress', 'Target registration is in progress');
  };
  const deregister = (id: string, port: number) => {
    const k = key(id, port);
    const r = registered.get(k);
    if (!r || r.state === 'draining') return;
    setState(r, 'draining', 'Target.DeregistrationInProgress', 'Target deregistration is in progress');
    // Shown as draining for the whole delay, connections or not, as the documentation says.
    r.drainTimer = setTimeout(() => {
      registered.delete(k);
      record(id, port, 'unused');
      void sync();
    }, delayMs);
  };
  for (const t of opts.targets)
    if (t.registered) {
      register(t.id, t.port);
      setState(registered.get(key(t.id, t.port))!, 'healthy');
    }

  /** One round of health checks: a GET to each registered target that is not draining. */
  const check = (r: Registered) =>
    new Promise<void>((resolve) => {
      const t = known.get(r.id);
      if (!t) return resolve();
      const req = http.get(
        { host: t.address, port: r.port, path: hc.path, agent: false, timeout: hc.timeoutMs },
        (res) => {
          res.resume();
          res.on('end', () =>
            verdict(
              res.statusCode === 200
                ? undefined
                : [
                    'Target.ResponseCodeMismatch',
                    `Health checks failed with these codes: [${res.statusCode}]`,
                  ],
            ),
          );
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) =>
        verdict(
          e.message === 'timeout'
            ? ['Target.Timeout', 'Request timed out']
            : ['Target.FailedHealthChecks', 'Health checks failed'],
        ),
      );
      const verdict = (failure?: [string, string]) => {
        if (registered.get(key(r.id, r.port)) !== r || r.state === 'draining') return resolve();
        if (!failure) {
          r.successes++;
          r.failures = 0;
          if (r.state === 'initial' && r.reason !== 'Elb.InitialHealthChecking')
            r.reason = 'Elb.InitialHealthChecking';
          if (r.state !== 'healthy' && r.successes >= hc.healthyThreshold) setState(r, 'healthy');
        } else {
          r.failures++;
          r.successes = 0;
          if (r.state !== 'unhealthy' && r.failures >= hc.unhealthyThreshold)
            setState(r, 'unhealthy', ...failure);
        }
        resolve();
      };
    });
  let checking = false;
  const checker = setInterval(() => {
    if (checking) return;
    checking = true;
    const due = [...registered.values()].filter((r) => r.state !== 'draining');
    void Promise.all(due.map(check)).finally(() => (checking = false));
  }, hc.intervalMs);

  const xml = (action: string, result: string) => queryResponseXml(NS, action, result);

  const healthOf = (id: string, port: number) => {
    const r = registered.get(key(id, port));
    if (!r)
      return {
        State: 'unused',
        Reason: 'Target.NotRegistered',
        Description: 'Target is not registered to the target group',
      };
    return { State: r.state, Reason: r.reason, Description: r.description };
  };

  /** Targets.member.N.Id / .Port from the form, with the group's port (80) as the default. */
  const targetsOf = (p: URLSearchParams) => {
    const out: Array<{ id: string; port: number }> = [];
    for (let n = 1; p.has(`Targets.member.${n}.Id`); n++) {
      const port = p.get(`Targets.member.${n}.Port`);
      out.push({ id: p.get(`Targets.member.${n}.Id`)!, port: port ? Number(port) : 80 });
    }
    return out;
  };

  const api = await startQueryApi({
    version: '2015-12-01',
    service: 'elasticloadbalancing',
    region,
    accessKeyId: credentials.accessKeyId,
    dialect: { kind: 'query', namespace: NS },
    actions: ['RegisterTargets', 'DeregisterTargets', 'DescribeTargetHealth'],
    auth: {
      status: 403,
      missing: { code: 'MissingAuthenticationToken', message: 'Request is missing Authentication Token' },
      unknownKey: {
        code: 'InvalidClientTokenId',
        message: 'The security token included in the request is invalid.',
      },
      wrongScopeCode: 'SignatureDoesNotMatch',
    },
    handle: ({ form: p, action, send, fail }) => {
      if (p.get('TargetGroupArn') !== targetGroupArn) {
        return fail(400, 'TargetGroupNotFound', `Target groups '${p.get('TargetGroupArn') ?? ''}' not found`);
      }
      const targets = targetsOf(p);
      if (action === 'DescribeTargetHealth') {
        const list = targets.length
          ? targets
          : [...registered.values()].map((r) => ({ id: r.id, port: r.port }));
        const members = list
          .map(({ id, port }) => {
            const h = healthOf(id, port);
            const extra =
              (h.Reason ? `<Reason>${h.Reason}</Reason>` : '') +
              (h.Description ? `<Description>${esc(h.Description)}</Description>` : '');
            return `<member><HealthCheckPort>${port}</HealthCheckPort><Target><Id>${esc(id)}</Id><Port>${port}</Port></Target><TargetHealth><State>${h.State}</State>${extra}</TargetHealth></member>`;
          })
          .join('');
        return send(200, xml(action, `<TargetHealthDescriptions>${members}</TargetHealthDescriptions>`));
      }
      if (targets.length === 0) return fail(400, 'ValidationError', 'Targets must not be empty');
      const unknown = targets.filter((t) => !known.has(t.id));
      if (unknown.length) {
        return fail(
          400,
          'InvalidTarget',
          `The following targets are not in a running state and cannot be registered: '${unknown.map((t) => t.id).join("', '")}'`,
        );
      }
      for (const t of targets) (action === 'RegisterTargets' ? register : deregister)(t.id, t.port);
      return send(200, xml(action, ''));
    },
  });
  await sync();
  return {
    url: api.url,
    region,
    credentials,
    targetGroupArn,
    calls: api.calls,
    dataPlaneErrors,
    health: (id, port) => {
      const h = healthOf(id, port);
      return { State: h.State, Reason: h.Reason };
    },
    history: (id, port) => [...(histories.get(key(id, port)) ?? [])],
    async set(id, port, state) {
      const k = key(id, port);
      const r = registered.get(k);
      if (r) clearTimeout(r.drainTimer);
      if (state === 'unused') {
        registered.delete(k);
        record(id, port, 'unused');
      } else if (state === 'healthy') {
        const fresh: Registered = { id, port, state: 'healthy', successes: hc.healthyThreshold, failures: 0 };
        registered.set(k, fresh);
        setState(fresh, 'healthy');
      } else {
        registered.set(k, { id, port, state: 'healthy', successes: 0, failures: 0 });
        deregister(id, port);
      }
      await sync();
    },
    failNext(n, status, code, message = code === 'Throttling' ? 'Rate exceeded' : 'Service Unavailable') {
      api.failNext(n, status, code, message);
    },
    stop: () => {
      clearInterval(checker);
      for (const r of registered.values()) clearTimeout(r.drainTimer);
      return api.stop();
    },
  };
}
