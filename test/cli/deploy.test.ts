// @slow: three simulated hosts (private engines behind real sshd), a bastion, real HAProxy.
/**
 * Issue 11 end to end: `berth deploy`, `status` and `wait` against three simulated hosts. Each
 * host is a private Docker engine and a real OpenSSH server on its own loopback address
 * (127.0.0.2-4), whose logins see that engine at /var/run/docker.sock and the host's own /run
 * (env files and secrets under /run/berth); one more sshd is the bastion every connection goes
 * through. Real HAProxy balances a steady load over the three. The EC2 inventory source is
 * tested against a local fake of the documented EC2 Query API (test/world/ec2.ts), not AWS.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import { waitUntil, type World } from '../world/index.js';
import type { HaproxyHandle } from '../world/haproxy.js';
import { startEc2, type Ec2Fake } from '../world/ec2.js';
import { startPostgres } from '../world/postgres.js';
import { GiveUp, processes } from '../world/proc.js';
import {
  clientKey,
  commonFreePort,
  startBastion,
  startSshHost,
  writeKnownHosts,
  type SshdServer,
  type SshHost,
} from '../world/ssh-host.js';
import { berth, MAIN, type CliResult } from '../support/cli.js';
import { load as steadyLoad } from '../support/load.js';
import { haproxyBalancer, startHostsFixture, type HostsFixture } from '../support/fixture.js';
import type { TestRepo } from '../support/repo.js';

/** Not the ports of the other rollout tests: test files run side by side on loopback. */
const WEB = 24900;
const HOSTS = [
  { name: 'app-1', address: '127.0.0.2' },
  { name: 'app-2', address: '127.0.0.3' },
  { name: 'app-3', address: '127.0.0.4' },
];
const BASTION = '127.0.0.6';
/** An address where no sshd listens: an unreachable host. */
const NOWHERE = '127.0.0.7';

interface DeployJson {
  ok: boolean;
  cancelled: boolean;
  stopped?: string;
  commit?: string;
  hosts: Array<{ host: string; status: string; changes: number; error?: string; batch: number }>;
}

describe('the fleet: deploy, status and wait over SSH through a bastion', () => {
  let fx: HostsFixture;
  let world: World;
  let sshHosts: SshHost[] = [];
  let bastion: SshdServer;
  let hap: HaproxyHandle;
  let repo: TestRepo;
  let work: string;
  let port: number;
  let dockers: Record<string, Docker>;
  const user = os.userInfo().username;

  const ssh = (knownHosts = `${work}/known_hosts`) =>
    `ssh: { user: ${user}, port: ${port}, identity_file: ${work}/client, known_hosts: ${knownHosts}, ` +
    `bastion: '${user}@${BASTION}:${port}', connect_timeout: 5s }`;
  const inventory = (
    opts: { extraHosts?: string[]; knownHosts?: string; vars?: Record<string, string> } = {},
  ) =>
    [
      'hosts:',
      ...HOSTS.map(
        (h) =>
          `  ${h.name}: { address: ${h.address}, groups: [app_server]${opts.vars?.[h.name] ? `, vars: ${opts.vars[h.name]}` : ''} }`,
      ),
      ...(opts.extraHosts ?? []),
      ssh(opts.knownHosts),
      '',
    ].join('\n');
  const berthYaml = (extraLines: string[] = []) =>
    [
      'env_dir: /run/berth/env',
      'secrets_dir: /run/berth/secrets',
      ...haproxyBalancer(hap, '5s'),
      ...extraLines,
      '',
    ].join('\n');
  const web = (image: string, opts: { env?: string; health?: string; retries?: number } = {}) =>
    [
      `image: ${image}`,
      'pull: missing',
      'drain: true',
      'env_vars:',
      `  PORT: '${WEB}'`,
      `  BIND: '{{ host.address }}'`,
      `  TOKEN: '{{ secrets.token }}'`,
      ...(opts.env ? [`  NOTE: '${opts.env}'`] : []),
      `healthcheck: { http: '${opts.health ?? `http://{{ host.address }}:${WEB}/version`}', interval: 100ms, timeout: 1s, retries: ${opts.retries ?? 3} }`,
      '',
    ].join('\n');

  const run = (
    cmd: string,
    env: string,
    args: string[] = [],
    envVars: Record<string, string | undefined> = {},
  ) =>
    berth(
      [
        cmd,
        '--repo',
        repo.dir,
        '--env',
        env,
        // wait reads no record
        ...(cmd === 'wait' ? [] : ['--store', `${work}/berth.db`]),
        '--cache-dir',
        `${work}/cache`,
        ...args,
      ],
      envVars,
      240_000,
    );
  const deploy = (env = 'main', args: string[] = [], envVars: Record<string, string | undefined> = {}) =>
    run('deploy', env, args, envVars);
  const json = <T>(r: CliResult): T => {
    try {
      return JSON.parse(r.stdout) as T;
    } catch {
      throw new Error(`not JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
    }
  };
  /** The web container on each host: id, image, running. */
  const webs = async () => {
    const out: Record<string, { id: string; image: string; running: boolean; created: string }> = {};
    for (const h of HOSTS) {
      const list = await dockers[h.name]!.listContainers({ all: true });
      assert.ok(!list.some((c) => c.Names.includes('/web.berth-old')), `${h.name}: nothing left aside`);
      const info = await dockers[h.name]!.getContainer('web').inspect();
      out[h.name] = {
        id: info.Id,
        image: info.Config.Image,
        running: info.State.Running,
        created: info.Created,
      };
    }
    return out;
  };
  /** No ssh process berth started outlives it (their argv name its private control folder). */
  const noSshLeft = () => {
    const left = processes().filter((p) => p.cmdline.includes('/berth-ssh-'));
    assert.deepEqual(left, [], 'ssh processes left behind');
    const dirs = readdirSync(tmpdir()).filter((d) => d.startsWith('berth-ssh-'));
    assert.deepEqual(dirs, [], 'private ssh folders left behind');
  };
  const allInRotation = async () => {
    for (const h of HOSTS) assert.equal(await hap.adminState(h.name), 0, `${h.name} is in rotation`);
  };

  before(async () => {
    fx = await startHostsFixture('berth-fleet-', HOSTS, WEB);
    ({ world, hap, work, dockers } = fx);
    const key = clientKey(work);
    port = await commonFreePort([...HOSTS.map((h) => h.address), BASTION]);
    [sshHosts, bastion] = await Promise.all([
      Promise.all(
        HOSTS.map((h) =>
          startSshHost({
            name: h.name,
            address: h.address,
            port,
            authorizedKeys: [key.publicKey],
            engineSocket: fx.dockerHosts[h.name]!,
          }),
        ),
      ),
      startBastion({ address: BASTION, port, authorizedKeys: [key.publicKey] }),
    ]);
    writeKnownHosts(`${work}/known_hosts`, [...sshHosts, bastion]);
    // The host's own secret, in its own secrets folder.
    for (const h of sshHosts)
      writeFileSync(path.join(h.runDir, 'berth/secrets/token'), `token-of-${h.name}\n`, { mode: 0o600 });
    repo = fx.createRepo({
      'berth.yaml': berthYaml(),
      'inventory.yaml': inventory(),
      'services/web.yaml': web(world.images.web1),
    });
    const first = await deploy();
    assert.equal(first.code, 0, first.stdout + first.stderr);
  });

  after(async () => {
    await Promise.all([...sshHosts.map((h) => h.stop()), bastion?.stop()]);
    await fx?.stop();
  });

  test('the first deploy wrote each host its own env file, with its own secret, 0600, on the host', async () => {
    for (const h of sshHosts) {
      const file = path.join(h.runDir, 'berth/env/web');
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const text = readFileSync(file, 'utf8');
      assert.match(text, new RegExp(`^TOKEN=token-of-${h.name}$`, 'm'));
      assert.match(text, new RegExp(`^BIND=${HOSTS.find((x) => x.name === h.name)!.address}$`, 'm'));
    }
    for (const w of Object.values(await webs())) assert.equal(w.image, world.images.web1);
    await allInRotation();
    noSshLeft();
  });

  test('a new image, through the bastion, host after host under steady load: 0 failed requests', async (t) => {
    const logins = bastion.logins();
    const load = steadyLoad(hap.frontend);
    await new Promise((r) => setTimeout(r, 300));
    repo.commit({ 'services/web.yaml': web(world.images.web2) });
    const r = await deploy('main', ['--batch', '1']);
    const { sent, failures, versions } = await load.finish();
    t.diagnostic(
      `${sent} requests through HAProxy, ${failures.length} failed, versions ${JSON.stringify(versions)}`,
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(failures, [], `${failures.length} of ${sent} requests failed`);
    assert.ok(sent > 100, `only ${sent} requests were sent`);
    assert.ok((versions['1'] ?? 0) > 0 && (versions['2'] ?? 0) > 0, JSON.stringify(versions));
    // The summary table, and (piped) one plain line per host as it finished.
    for (const h of HOSTS) {
      assert.match(
        r.stdout,
        new RegExp(`^${h.name}\\s+${h.address.replace(/\./g, '\\.')}\\s+\\d\\s+applied\\s+1\\s`, 'm'),
      );
      assert.match(r.stderr, new RegExp(`^${h.name}  applied  1 change\\(s\\)`, 'm'));
    }
    assert.match(r.stdout, /Deployed main at [0-9a-f]{12} to 3 of 3 host\(s\)\./);
    const now = await webs();
    for (const w of Object.values(now)) assert.equal(w.image, world.images.web2);
    // One host after the other: each replacement is newer than the previous host's.
    assert.ok(now['app-1']!.created < now['app-2']!.created && now['app-2']!.created < now['app-3']!.created);
    assert.ok(bastion.logins() - logins >= 3, 'every host was reached through the bastion');
    await allInRotation();
    noSshLeft();
  });

  test('a second deploy changes nothing and never touches the load balancer', async () => {
    const before = await webs();
    const r = await deploy('main', ['--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const o = json<DeployJson>(r);
    assert.equal(o.ok, true);
    assert.deepEqual(
      o.hosts.map((h) => [h.host, h.status, h.changes]),
      HOSTS.map((h) => [h.name, 'no-op', 0]),
    );
    assert.deepEqual(await webs(), before);
    assert.equal(r.stderr, '', '--json prints no progress');
    await allInRotation();
  });

  test('status: desired against running on every host; a commit not yet deployed is drift', async () => {
    const r = await run('status', 'main', ['--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const s = json<{
      ok: boolean;
      hosts: Array<{
        host: string;
        inSync: boolean;
        healthy: boolean;
        lastApply?: { result: string };
        services: Array<{
          service: string;
          health: string;
          desired: { image: string };
          running: { image: string };
          drift: string[];
        }>;
      }>;
    }>(r);
    assert.equal(s.ok, true);
    for (const h of s.hosts) {
      assert.equal(h.inSync, true, h.host);
      assert.equal(h.healthy, true, h.host);
      assert.equal(h.lastApply?.result, 'succeeded');
      assert.deepEqual(
        h.services.map((x) => [x.service, x.desired.image, x.running.image, x.health, x.drift]),
        [['web', world.images.web2, world.images.web2, 'healthy', []]],
      );
    }
    repo.commit({ 'services/web.yaml': web(world.images.web2, { env: 'noted' }) });
    const drift = await run('status', 'main');
    assert.equal(drift.code, 1, drift.stdout + drift.stderr);
    for (const h of HOSTS)
      assert.match(
        drift.stdout,
        new RegExp(`^${h.name}\\s+web\\s+web:2\\s+web:2\\s+healthy\\s+write-env: .*recreate: env NOTE`, 'm'),
      );
    assert.match(drift.stdout, /0 of 3 host\(s\) in sync, 3 healthy\./);
  });

  test('wait returns once the last host runs the commit, healthy', async () => {
    const commit = repo.git('rev-parse', 'HEAD');
    const child = spawn(
      process.execPath,
      [
        MAIN,
        'wait',
        '--repo',
        repo.dir,
        '--env',
        'main',
        '--cache-dir',
        `${work}/cache`,
        '--timeout',
        '180s',
        '--interval',
        '500ms',
        '--json',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number>((r) => child.on('close', (code) => r(code ?? -1)));
    try {
      await new Promise((r) => setTimeout(r, 1_500));
      assert.equal(child.exitCode, null, `wait returned before the deploy: ${out}${err}`);
      const r = await deploy();
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const code = await Promise.race([exited, new Promise<number>((r) => setTimeout(() => r(-2), 60_000))]);
      assert.equal(code, 0, out + err);
      const w = JSON.parse(out) as { ok: boolean; commit: string; converged: string[] };
      assert.equal(w.ok, true);
      assert.equal(w.commit, commit);
      assert.deepEqual(
        w.converged.sort(),
        HOSTS.map((h) => h.name),
      );
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    noSshLeft();
  });

  test('wait times out with the list of what each host is missing', async () => {
    repo.commit({ 'services/web.yaml': web(world.images.web1, { env: 'noted' }) });
    const r = await run('wait', 'main', ['--timeout', '20s', '--interval', '500ms']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /^Timed out after \d+\.\d s: 0 of 3 host\(s\) run main at [0-9a-f]{12}, healthy\. Missing:$/m,
    );
    for (const h of HOSTS) {
      assert.match(r.stdout, new RegExp(`^  ${h.name}:\\n(    .*\\n)*    web: recreate: `, 'm'));
    }
    noSshLeft();
  });

  test('an unreachable host is reported and the rollout stops before any host changes', async () => {
    const before = await webs();
    repo.git('checkout', '-q', '-b', 'unreachable');
    repo.commit({
      'inventory.yaml': inventory({ extraHosts: [`  app-4: { address: ${NOWHERE}, groups: [app_server] }`] }),
    });
    repo.git('checkout', '-q', 'main');
    const r = await deploy('unreachable', ['--json']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const o = json<DeployJson>(r);
    const app4 = o.hosts.find((h) => h.host === 'app-4')!;
    assert.equal(app4.status, 'unreachable');
    assert.match(
      app4.error!,
      /^ssh: cannot connect to app-4 \(.*127\.0\.0\.7:\d+ via .*\): .*(refused|closed)/i,
    );
    assert.deepEqual(
      o.hosts.filter((h) => h.host !== 'app-4').map((h) => h.status),
      ['skipped', 'skipped', 'skipped'],
    );
    assert.match(o.stopped!, /app-4 could not be prepared; no host was changed/);
    assert.deepEqual(await webs(), before, 'nothing changed on any host');
    noSshLeft();
  });

  test('the rollout halts at the first host that fails: earlier hosts stay done, later ones untouched', async () => {
    const before = await webs();
    repo.git('checkout', '-q', '-b', 'halt');
    repo.commit({
      // app-2 checks a port nothing listens on: its new container never passes.
      'inventory.yaml': inventory({ vars: { 'app-2': '{ health_port: 1 }' } }),
      'services/web.yaml': web(world.images.web1, {
        health: `http://{{ host.address }}:{{ host.vars.health_port | default(${WEB}) }}/version`,
        retries: 2,
      }),
    });
    repo.git('checkout', '-q', 'main');
    const r = await deploy('halt', ['--batch', '1']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^app-1\s+127\.0\.0\.2\s+1\s+applied\s/m);
    assert.match(r.stdout, /^app-2\s+127\.0\.0\.3\s+2\s+failed\s+\d+\s+\S+ s\s+.*health check/m);
    assert.match(
      r.stdout,
      /^app-3\s+127\.0\.0\.4\s+3\s+skipped\s+.*not started: the rollout stopped at app-2/m,
    );
    assert.match(r.stdout, /stopped at app-2\.$/m);
    const now = await webs();
    assert.equal(now['app-1']!.image, world.images.web1);
    assert.deepEqual(now['app-2'], before['app-2'], 'app-2: the previous container serves again');
    assert.deepEqual(now['app-3'], before['app-3'], 'app-3: not touched');
    await allInRotation();
    noSshLeft();
  });

  test('a changed host key is refused, an unknown one too, and nothing changes', async () => {
    const before = await webs();
    const [h1, , h3] = sshHosts as [SshHost, SshHost, SshHost];
    // app-2 is not in this file at all; app-3 is there with another host's key.
    writeFileSync(
      `${work}/known_hosts.bad`,
      [h1.knownHostsLine(), `[${h3.address}]:${port} ${h1.hostKey}`, bastion.knownHostsLine(), ''].join('\n'),
    );
    repo.git('checkout', '-q', '-b', 'badkey');
    repo.commit({ 'inventory.yaml': inventory({ knownHosts: `${work}/known_hosts.bad` }) });
    repo.git('checkout', '-q', 'main');
    const r = await deploy('badkey', ['--json']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const o = json<DeployJson>(r);
    const by = Object.fromEntries(o.hosts.map((h) => [h.host, h]));
    assert.equal(by['app-3']!.status, 'unreachable');
    assert.match(
      by['app-3']!.error!,
      /the host key has CHANGED since it was recorded in .*known_hosts\.bad: refused/,
    );
    assert.equal(by['app-2']!.status, 'unreachable');
    assert.match(
      by['app-2']!.error!,
      /no host key for \[127\.0\.0\.3\]:\d+ in .*known_hosts\.bad, and strict checking is on: refused/,
    );
    assert.equal(by['app-1']!.status, 'skipped');
    assert.deepEqual(await webs(), before, 'nothing changed on any host');
    noSshLeft();
  });

  test('batch 100% with max_unavailable 1 and a PostgreSQL record: leases make hosts take turns out of rotation', async (t) => {
    const pg = await startPostgres();
    try {
      repo.git('checkout', '-q', '-b', 'leases');
      const commit = repo.commit({
        'berth.yaml': berthYaml(['rollout: { max_unavailable: 1 }']),
        'services/web.yaml': web(world.images.web2, { env: 'leased' }),
      });
      repo.git('checkout', '-q', 'main');
      const load = steadyLoad(hap.frontend);
      await new Promise((r) => setTimeout(r, 300));
      const r = await berth(
        [
          'deploy',
          '--repo',
          repo.dir,
          '--env',
          'leases',
          '--batch',
          '100%',
          '--deploy-id',
          'fleet-leases-1',
          '--cache-dir',
          `${work}/cache`,
          '--json',
        ],
        { BERTH_STORE: pg.url, BERTH_SPOOL_DIR: `${work}/spool` },
        240_000,
      );
      const { sent, failures } = await load.finish();
      t.diagnostic(`${sent} requests through HAProxy, ${failures.length} failed`);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const o = json<DeployJson>(r);
      assert.deepEqual(
        o.hosts.map((h) => [h.host, h.batch, h.status]),
        HOSTS.map((h) => [h.name, 1, 'applied']),
      );
      assert.deepEqual(failures, [], `${failures.length} of ${sent} requests failed`);
      await allInRotation();

      // One deploy in the shared record, each host with a lease step before its drain, and the
      // windows out of rotation one after the other although the three hosts ran at once.
      const h = await berth(['history', '--json', '--deploy', 'fleet-leases-1'], {
        BERTH_STORE: pg.url,
        BERTH_SPOOL_DIR: `${work}/spool`,
      });
      assert.equal(h.code, 0, h.stderr);
      const entries = JSON.parse(h.stdout) as Array<{
        command?: string;
        hosts: Array<{
          host: string;
          stateCommit?: string;
          steps: Array<{ action: string; startedAt: string; finishedAt?: string }>;
        }>;
      }>;
      assert.equal(entries.length, 1, h.stdout);
      const entry = entries[0]!;
      assert.equal(entry.command, 'berth deploy');
      assert.deepEqual(
        entry.hosts.map((x) => x.host).sort(),
        HOSTS.map((x) => x.name),
      );
      const windows = entry.hosts
        .map((x) => {
          assert.equal(x.stateCommit, commit);
          const actions = x.steps.map((s) => s.action);
          assert.ok(
            actions.indexOf('lease') >= 0 && actions.indexOf('lease') < actions.indexOf('drain'),
            actions.join(),
          );
          const drain = x.steps.find((s) => s.action === 'drain')!;
          const back = x.steps.find((s) => s.action === 'undrain')!;
          return { host: x.host, from: Date.parse(drain.startedAt), to: Date.parse(back.finishedAt!) };
        })
        .sort((a, b) => a.from - b.from);
      t.diagnostic(`windows: ${JSON.stringify(windows.map((w) => [w.host, w.to - w.from]))}`);
      for (let i = 1; i < windows.length; i++) {
        assert.ok(
          windows[i]!.from >= windows[i - 1]!.to,
          `${windows[i]!.host} left rotation before ${windows[i - 1]!.host} came back`,
        );
      }
      // The leases are given back.
      const [held] = await pg.admin<{ n: number }>(
        'SELECT count(*)::int AS n FROM berth.leases',
        [],
        'berth',
      );
      assert.equal(held?.n, 0, 'every lease was given back');
      noSshLeft();
    } finally {
      await pg.stop();
    }
  });

  test('SIGINT stops every host at a safe point: replacements rolled back, all back in rotation', async () => {
    const before = await webs();
    repo.git('checkout', '-q', '-b', 'slow');
    // A health check that never passes, with retries enough to last well past the signal; every
    // host may be out of rotation at once, so all three are mid-replacement when it comes.
    repo.commit({
      'berth.yaml': berthYaml(['rollout: { max_unavailable: 100% }']),
      'inventory.yaml': inventory(),
      'services/web.yaml': web(world.images.web1, {
        env: 'slow',
        health: `http://{{ host.address }}:1/version`,
        retries: 200,
      }),
    });
    repo.git('checkout', '-q', 'main');
    const child = spawn(
      process.execPath,
      [
        MAIN,
        'deploy',
        '--repo',
        repo.dir,
        '--env',
        'slow',
        '--batch',
        '100%',
        '--store',
        `${work}/berth.db`,
        '--cache-dir',
        `${work}/cache`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number>((r) => child.on('close', (code) => r(code ?? -1)));
    try {
      const aside = async () => {
        if (child.exitCode !== null) throw new GiveUp(`deploy ended first:\n${out}`);
        for (const h of HOSTS) {
          const list = await dockers[h.name]!.listContainers({ all: true });
          if (!list.some((c) => c.Names.includes('/web.berth-old'))) return false;
        }
        return true;
      };
      await waitUntil('every host to set web aside', aside, { timeoutMs: 120_000, intervalMs: 100 });
      await new Promise((r) => setTimeout(r, 300)); // inside the health waits
      child.kill('SIGINT');
      const code = await Promise.race([exited, new Promise<number>((r) => setTimeout(() => r(-2), 60_000))]);
      assert.equal(code, 130, out);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    assert.match(out, /SIGINT: stopping every host at its next safe point/);
    for (const h of HOSTS) assert.match(out, new RegExp(`^${h.name}\\s+\\S+\\s+1\\s+cancelled\\s`, 'm'));
    const now = await webs();
    for (const h of HOSTS) {
      assert.equal(now[h.name]!.id, before[h.name]!.id, `${h.name}: the previous container serves again`);
      assert.equal(now[h.name]!.running, true);
    }
    await allInRotation();
    noSshLeft();
  });

  describe('with the aws-ec2 inventory source (a local fake of the EC2 API)', () => {
    let ec2: Ec2Fake;
    let awsEnv: Record<string, string | undefined>;
    before(async () => {
      ec2 = await startEc2({
        instances: [
          ...HOSTS.map((h, i) => ({
            id: `i-00${i + 1}`,
            privateIp: h.address,
            tags: { Name: h.name, Type: 'app_server', Env: 'staging' },
          })),
          {
            id: 'i-009',
            privateIp: NOWHERE,
            tags: { Name: 'prod-1', Type: 'app_server', Env: 'production' },
          },
        ],
      });
      // The SDK's standard endpoint override and credential chain; no instance metadata.
      awsEnv = {
        AWS_ENDPOINT_URL: ec2.url,
        AWS_ACCESS_KEY_ID: ec2.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: ec2.credentials.secretAccessKey,
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_CONFIG_FILE: '/nonexistent/berth-test/config',
        AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/berth-test/credentials',
        AWS_PROFILE: undefined,
        AWS_REGION: undefined,
      };
      repo.git('checkout', '-q', '-b', 'ec2');
      repo.commit({
        'berth.yaml': berthYaml([
          'inventory:',
          '  source: aws-ec2',
          `  region: ${ec2.region}`,
          "  filters: { 'tag:Env': staging }",
          '  group_by: tag:Type',
          '  name: tag:Name',
          '  address: private_ip',
        ]),
        'inventory.yaml': `${ssh()}\n`,
        'services/web.yaml': web(world.images.web2, { env: 'from-ec2' }),
      });
      repo.git('checkout', '-q', 'main');
    });
    after(async () => ec2?.stop());

    test('an unreachable EC2 endpoint stops the deploy with a clear error, nothing changed', async () => {
      const before = await webs();
      const r = await deploy('ec2', [], { ...awsEnv, AWS_ENDPOINT_URL: `http://127.0.0.1:${port}` });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(
        r.stderr,
        /^berth: aws-ec2: DescribeInstances in eu-west-1 at http:\/\/127\.0\.0\.1:\d+ failed: /m,
      );
      assert.deepEqual(await webs(), before, 'nothing changed on any host');
      noSshLeft();
    });

    test('the discovered hosts are deployed as the static ones were', async () => {
      const r = await deploy('ec2', ['--json', '--batch', '2'], awsEnv);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const o = json<DeployJson>(r);
      assert.deepEqual(
        o.hosts.map((h) => [h.host, h.batch, h.status]),
        [
          ['app-1', 1, 'applied'],
          ['app-2', 1, 'applied'],
          ['app-3', 2, 'applied'],
        ],
      );
      assert.ok(ec2.calls.some((c) => c.params['Filter.1.Value.1'] === 'staging'));
      for (const w of Object.values(await webs())) assert.equal(w.image, world.images.web2);
      const s = await run('status', 'ec2', ['--limit', 'app_server'], awsEnv);
      assert.equal(s.code, 0, s.stdout + s.stderr);
      assert.match(s.stdout, /3 of 3 host\(s\) in sync, 3 healthy\./);
      await allInRotation();
      noSshLeft();
    });
  });
});
