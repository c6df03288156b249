import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import { waitUntil, type World } from '../world/index.js';
import type { HaproxyHandle } from '../world/haproxy.js';
import { startPostgres, type PostgresHandle } from '../world/postgres.js';
import { berth, type CliResult } from '../support/cli.js';
import { haproxyBalancer, startHostsFixture, type HostsFixture } from '../support/fixture.js';
import { steadyLoad } from '../support/load.js';
import type { TestRepo } from '../support/repo.js';

/**
 * Issue 12 end to end: three simulated hosts (three private engines, each host's services bound
 * to its own loopback address), real HAProxy in front, one real PostgreSQL holding the record
 * and the leases. Three `berth apply` processes at once stand for three agents acting on their
 * own. Every service restart takes two seconds here (the service sleeps before it listens), so
 * hosts that drained together would show overlapping windows in the record.
 */

const PORT = 24850;
const SIDE_PORT = 24851;
const HOSTS = [
  { name: 'h1', address: '127.0.0.2' },
  { name: 'h2', address: '127.0.0.3' },
  { name: 'h3', address: '127.0.0.4' },
];
const EXPIRY_MS = 3_000;

interface Step {
  action: string;
  service: string;
  result: string;
  startedAt: string;
  finishedAt?: string;
  durationMs?: number;
}
interface HostApply {
  id: number;
  host: string;
  result: string;
  message?: string;
  command?: string;
  deployId?: string;
  env?: string;
  stateCommit?: string;
  startedAt: string;
  finishedAt?: string;
  steps: Step[];
}
interface Entry {
  deployId?: string;
  result: string;
  command?: string;
  hosts: HostApply[];
}

describe('one record for the fleet: leases cap the hosts out of rotation, outages lose nothing', () => {
  let fx: HostsFixture;
  let world: World;
  let hap: HaproxyHandle;
  let pg: PostgresHandle;
  let repo: TestRepo;
  let work: string;
  let dockerHosts: Record<string, string>;
  let dockers: Record<string, Docker>;
  let version = 0;

  const web = (image: string, v: number) =>
    [
      `image: ${image}`,
      'pull: missing',
      'drain: true',
      // Two seconds between start and listening: a window long enough to see any overlap.
      `command: ['/bin/busybox', 'sh', '-c', 'trap "exit 0" TERM INT; (sleep 2; exec /bin/busybox httpd -f -p "$BIND:$PORT" -h /www) & wait']`,
      'env_vars:',
      `  PORT: '${PORT}'`,
      `  BIND: '{{ host.address }}'`,
      `  V: '${v}'`,
      `healthcheck: { http: 'http://{{ host.address }}:${PORT}/version', interval: 200ms, timeout: 1s, retries: 3, start_period: 10s }`,
      '',
    ].join('\n');
  const side = (v: number) =>
    [
      `image: ${world.images.web1}`,
      'pull: missing',
      'env_vars:',
      `  PORT: '${SIDE_PORT}'`,
      `  BIND: '{{ host.address }}'`,
      `  V: '${v}'`,
      '',
    ].join('\n');

  const apply = (
    host: string,
    opts: { env?: Record<string, string>; args?: string[]; store?: string } = {},
  ) =>
    berth(
      [
        'apply',
        '--repo',
        repo.dir,
        '--env',
        'staging',
        '--host',
        host,
        '--env-dir',
        `${work}/${host}/env`,
        '--cache-dir',
        `${work}/${host}/cache`,
        ...(opts.args ?? []),
      ],
      {
        DOCKER_HOST: dockerHosts[host]!,
        BERTH_STORE: opts.store ?? pg.url,
        BERTH_SPOOL_DIR: `${work}/${host}/spool`,
        ...opts.env,
      },
      180_000,
    );
  const applyAll = (args: string[] = []) => Promise.all(HOSTS.map((h) => apply(h.name, { args })));
  const ok = (results: CliResult[]) =>
    assert.deepEqual(
      results.map((r) => r.code),
      results.map(() => 0),
      results.map((r) => r.stdout + r.stderr).join('\n----\n'),
    );

  /** `berth history --json` as host `host` runs it (so its spool is written first). */
  const entries = async (args: string[], host = 'h1'): Promise<Entry[]> => {
    const r = await berth(['history', '--json', '--limit', '1000', ...args], {
      BERTH_STORE: pg.url,
      BERTH_SPOOL_DIR: `${work}/${host}/spool`,
    });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Entry[];
  };
  /** When each host was out of rotation: from its drain's start to its rejoin's end. */
  const windows = (entry: Entry) =>
    entry.hosts
      .map((h) => {
        const drain = h.steps.find((s) => s.action === 'drain');
        const back = h.steps.find((s) => s.action === 'undrain' || s.action === 'restore');
        assert.ok(drain && back?.finishedAt, `${h.host} drained and came back: ${JSON.stringify(h.steps)}`);
        return { host: h.host, from: Date.parse(drain.startedAt), to: Date.parse(back.finishedAt) };
      })
      .sort((a, b) => a.from - b.from);
  const assertNoOverlap = (w: Array<{ host: string; from: number; to: number }>) => {
    for (let i = 1; i < w.length; i++) {
      assert.ok(
        w[i]!.from >= w[i - 1]!.to,
        `${w[i]!.host} left rotation at ${new Date(w[i]!.from).toISOString()}, before ${w[i - 1]!.host} came back ` +
          `at ${new Date(w[i - 1]!.to).toISOString()}`,
      );
    }
  };
  /** What waits in a host's spool. */
  const spoolFiles = (host: string): string[] => {
    const dir = `${work}/${host}/spool`;
    if (!existsSync(dir)) return [];
    return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) =>
      /\.(jsonl|part|flushing)$/.test(f),
    );
  };
  const inRotation = async () => {
    for (const h of HOSTS) assert.equal(await hap.adminState(h.name), 0, `${h.name} is in rotation`);
  };
  const webOf = async (host: string) => {
    const info = await dockers[host]!.getContainer('web').inspect();
    return { id: info.Id, running: info.State.Running, env: info.Config.Env };
  };
  const nextChange = (image = world.images.web1) => {
    version++;
    return repo.commit({ 'services/web.yaml': web(image, version) });
  };

  before(async () => {
    [fx, pg] = await Promise.all([startHostsFixture('berth-fleet-', HOSTS, PORT), startPostgres()]);
    ({ world, hap, work, dockerHosts, dockers } = fx);
    repo = fx.createRepo(
      {
        'berth.yaml': [
          'project: shop',
          'environments: { staging: { branch: staging } }',
          ...haproxyBalancer(hap, '5s'),
          `rollout: { max_unavailable: 1, lease_expiry: ${EXPIRY_MS / 1000}s }`,
          '',
        ].join('\n'),
        'inventory.yaml': [
          'hosts:',
          ...HOSTS.map((h) => `  ${h.name}: { address: ${h.address}, groups: [app_server] }`),
          '',
        ].join('\n'),
        'services/web.yaml': web(world.images.web1, 0),
        'services/side.yaml': side(0),
      },
      'staging',
    );
    ok(await applyAll());
    await inRotation();
  });

  after(async () => {
    await Promise.all([fx?.stop(), pg?.stop()]);
  });

  test('three applies at once with max_unavailable 1: one host out of rotation at a time, 0 failed requests', async (t) => {
    const load = steadyLoad(`${hap.frontend}/version`);
    const commit = nextChange(world.images.web2);
    const results = await applyAll(['--deploy-id', 'rollout-1']);
    const { sent, failures, versions } = await load.finish();
    t.diagnostic(`${sent} requests, ${failures.length} failed, versions ${JSON.stringify(versions)}`);
    ok(results);
    assert.deepEqual(failures, [], `${failures.length} of ${sent} requests failed`);
    await inRotation();

    const [entry, ...rest] = await entries(['--deploy', 'rollout-1']);
    assert.equal(rest.length, 0);
    assert.equal(entry!.result, 'succeeded');
    assert.equal(entry!.command, 'berth apply');
    assert.deepEqual(entry!.hosts.map((h) => h.host).sort(), ['h1', 'h2', 'h3']);
    for (const h of entry!.hosts) {
      assert.equal(h.stateCommit, commit);
      assert.equal(h.env, 'staging');
      // h1's engine built the images, so only h2 and h3 pull.
      assert.deepEqual(
        h.steps.map((s) => s.action).filter((a) => a !== 'pull'),
        ['lease', 'drain', 'write-env', 'recreate', 'health', 'undrain'],
      );
    }
    const w = windows(entry!);
    t.diagnostic(`windows: ${JSON.stringify(w.map((x) => [x.host, x.to - x.from]))}`);
    assertNoOverlap(w);
    // Those that found the group full waited, and said why.
    const waits = entry!.hosts.map((h) => h.steps.find((s) => s.action === 'lease')!.durationMs!);
    assert.ok(
      waits.some((ms) => ms >= 1_000),
      `lease waits ${JSON.stringify(waits)}`,
    );
    assert.match(
      results.map((r) => r.stderr).join('\n'),
      /waiting for a lease: 1 of 1 hosts of group app_server \(shop\/staging\) are out of rotation: h\d \(berth apply, since/,
    );

    const table = await berth(['history', '--deploy', 'rollout-1'], {
      BERTH_STORE: pg.url,
      BERTH_SPOOL_DIR: `${work}/h1/spool`,
    });
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /staging\s+\w{12}\s+berth apply\s+3\s+succeeded\s+rollout-1/);
    for (const h of HOSTS) {
      assert.match(
        table.stdout,
        new RegExp(`\\n  ${h.name}\\s+succeeded\\s+.*web web:1 → web:2; .* out of rotation`),
      );
    }
  });

  test('the lease holder killed with SIGKILL: its lease lapses after the expiry and the others go on', async () => {
    nextChange();
    const killed = await apply('h1', {
      env: { BERTH_FAILPOINT: 'after-drain' },
      args: ['--deploy-id', 'kill-1'],
    });
    assert.notEqual(killed.code, 0, 'h1 was killed while out of rotation');
    assert.notEqual(await hap.adminState('h1'), 0, 'and left out');
    const others = await Promise.all(['h2', 'h3'].map((h) => apply(h, { args: ['--deploy-id', 'kill-1'] })));
    ok(others);

    const [entry] = await entries(['--deploy', 'kill-1']);
    const of = (host: string) => entry!.hosts.find((h) => h.host === host)!;
    const h1Lease = of('h1').steps.find((s) => s.action === 'lease')!;
    assert.equal(of('h1').result, 'running', 'the killed apply never finished');
    for (const h of ['h2', 'h3']) {
      const drain = of(h).steps.find((s) => s.action === 'drain')!;
      // Not before the dead holder's lease lapsed (the same machine's clock, so comparable).
      assert.ok(
        Date.parse(drain.startedAt) >= Date.parse(h1Lease.finishedAt!) + EXPIRY_MS - 500,
        `${h} drained at ${drain.startedAt}, h1 took its lease at ${h1Lease.finishedAt}`,
      );
    }
    assertNoOverlap(windows({ ...entry!, hosts: [of('h2'), of('h3')] }));

    // h1's next apply puts it back in rotation and converges it.
    const again = await apply('h1');
    assert.equal(again.code, 0, again.stdout + again.stderr);
    await inRotation();
  });

  test('PostgreSQL stopped during a deploy: nothing lost from history, no host left out, no container stopped for it', async (t) => {
    const before = Object.fromEntries(
      await Promise.all(HOSTS.map(async (h) => [h.name, await webOf(h.name)])),
    );
    const load = steadyLoad(`${hap.frontend}/version`);
    nextChange();
    const running = applyAll(['--deploy-id', 'outage-1', '--wait-lease', '90s']);
    // Stop the database once a host holds a lease, that is, is out of rotation or about to be.
    await waitUntil(
      'a host to take a lease',
      async () =>
        (
          await pg.admin(
            `SELECT 1 FROM berth.leases WHERE scope = 'shop/staging' AND expires_at > now()`,
            [],
            'berth',
          )
        ).length > 0,
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    await pg.down();
    await new Promise((r) => setTimeout(r, 3_000));
    await pg.up();
    const results = await running;
    const { sent, failures } = await load.finish();
    t.diagnostic(`${sent} requests, ${failures.length} failed`);
    ok(results);
    assert.deepEqual(failures, [], `${failures.length} of ${sent} requests failed`);
    await inRotation();
    const stderr = results.map((r) => r.stderr).join('\n');
    assert.match(stderr, /waiting for a lease: the record cannot be reached/);
    assert.ok(!stderr.includes(pg.password) && !stderr.includes(encodeURIComponent(pg.password)));

    // Each host's next berth writes what its spool kept; then every host's apply is whole, once.
    for (const h of HOSTS) await entries(['--deploy', 'outage-1'], h.name);
    for (const h of HOSTS) assert.deepEqual(spoolFiles(h.name), [], `${h.name}'s spool is empty`);
    const [entry, ...rest] = await entries(['--deploy', 'outage-1']);
    assert.equal(rest.length, 0);
    assert.deepEqual(entry!.hosts.map((h) => h.host).sort(), ['h1', 'h2', 'h3'], 'one apply per host');
    for (const h of entry!.hosts) {
      assert.equal(h.result, 'succeeded', `${h.host}: ${h.message}`);
      assert.deepEqual(
        h.steps.map((s) => `${s.action} ${s.result}`),
        [
          'lease succeeded',
          'drain succeeded',
          'write-env succeeded',
          'recreate succeeded',
          'health succeeded',
          'undrain succeeded',
        ],
        h.host,
      );
    }
    assertNoOverlap(windows(entry!));
    for (const h of HOSTS) {
      const now = await webOf(h.name);
      assert.equal(now.running, true);
      assert.notEqual(now.id, before[h.name]!.id, `${h.name} was recreated once, for the change`);
    }
  });

  test('a record that cannot be reached at all: a change without a drain still converges; one that needs a drain waits, then stops', async () => {
    await pg.down();
    try {
      const commit = repo.commit({ 'services/side.yaml': side(1) });
      const r = await apply('h1', { args: ['--deploy-id', 'offline-1'] });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stderr, /ECONNREFUSED.*kept in .*spool/);
      assert.match(r.stderr, /this apply's outcome waits in .*h1\/spool\/.*\.jsonl/);
      const sideEnv = (await dockers.h1!.getContainer('side').inspect()).Config.Env;
      assert.ok(sideEnv.includes('V=1'), 'the change is made');

      const webBefore = await webOf('h1');
      nextChange();
      const refused = await apply('h1', { args: ['--wait-lease', '2s'] });
      assert.equal(refused.code, 1, refused.stdout + refused.stderr);
      assert.match(
        refused.stdout,
        /h1 could not take a lease to leave rotation, so it was not drained and nothing was changed; the old containers keep serving \(lease: no lease for h1 after 2 s: the record cannot be reached/,
      );
      assert.deepEqual(await webOf('h1'), webBefore, 'the running container was left alone');
      assert.equal(await hap.adminState('h1'), 0, 'h1 stays in rotation');

      await pg.up();
      const [entry] = await entries(['--deploy', 'offline-1']);
      assert.equal(entry?.hosts.length, 1);
      assert.equal(entry?.hosts[0]?.stateCommit, commit);
      assert.deepEqual(
        entry?.hosts[0]?.steps.map((s) => `${s.service} ${s.action}`),
        ['side write-env', 'side recreate', 'side health'],
      );
      const refusedApply = (await entries(['--host', 'h1', '--result', 'failed']))[0]!;
      assert.deepEqual(
        refusedApply.hosts[0]!.steps.map((s) => `${s.action} ${s.result}`),
        ['lease failed'],
      );
    } finally {
      await pg.up().catch(() => undefined);
    }
    ok(await applyAll());
    await inRotation();
  });

  test('bad input: a malformed URL, a wrong password, a newer schema: a clear error before anything changes', async () => {
    nextChange();
    const before = Object.fromEntries(
      await Promise.all(HOSTS.map(async (h) => [h.name, await webOf(h.name)])),
    );
    const newer = await pg.createDatabase('newer');
    const prime = await berth(['history', '--store', newer, '--spool-dir', `${work}/h2/spool`]);
    assert.equal(prime.code, 0, prime.stderr);
    await pg.admin(
      'UPDATE berth.schema_version SET version = version + 1',
      [],
      new URL(newer).pathname.slice(1),
    );
    const cases: Array<[string, RegExp]> = [
      [
        pg.url.replace(`:${pg.port}/`, ':port/'),
        /--store \(or BERTH_STORE\) postgres:\/\/berth:\*\*\*@127\.0\.0\.1:port\/berth: not a valid PostgreSQL URL/,
      ],
      [
        pg.url.replace(encodeURIComponent(pg.password), 'wrong-password'),
        /password authentication failed for user "berth" \(check the user and the password: in the URL, PGPASSWORD or ~\/\.pgpass\)/,
      ],
      [newer, /has schema version 2, newer than this berth understands \(1\); upgrade berth/],
    ];
    for (const [store, why] of cases) {
      const r = await apply('h2', { store });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, why);
      assert.ok(!(r.stdout + r.stderr).includes(pg.password), 'no password printed');
      assert.ok(!(r.stdout + r.stderr).includes(encodeURIComponent(pg.password)), 'no password printed');
      assert.ok(!(r.stdout + r.stderr).includes('wrong-password'), 'not even a wrong one');
    }
    for (const h of HOSTS) assert.deepEqual(await webOf(h.name), before[h.name], `${h.name} unchanged`);
    await inRotation();
    ok(await applyAll());
  });
});
