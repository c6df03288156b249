// @slow: real OpenSSH servers (test/world/ssh-host.ts) on loopback.
/**
 * The SSH transport against real sshd: a host (its own /run in a mount namespace) behind a
 * bastion. A host's files over SSH keep the same contract as this machine's files (one suite
 * runs against both); secrets are checked the same way; connection failures say what ssh said;
 * nothing berth started is left running.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  clientKey,
  commonFreePort,
  startBastion,
  startSshHost,
  writeKnownHosts,
  type SshClientKey,
  type SshdServer,
  type SshHost,
} from '../../test/world/ssh-host.js';
import { processes } from '../../test/world/proc.js';
import { fileSecrets } from '../secrets/files.js';
import { localPrivateFiles, type PrivateFiles } from '../secrets/private.js';
import { hostFiles, type HostFiles } from './fs.js';
import {
  connectSsh,
  parseBastion,
  runningSshProcesses,
  sshArgv,
  sshFailure,
  SshPool,
  type SshConnection,
  type SshSettings,
} from './ssh.js';
import { sshHostFiles, sshNetwork, sshPrivateFiles } from './ssh-files.js';
import { RemoteShells } from './ssh-shell.js';

test('argv: options, then the bastion as a ProxyCommand with the same key and checks, then the host', () => {
  const s: SshSettings = {
    user: 'admin',
    port: 2222,
    identityFile: '/keys/fleet key',
    knownHosts: '/etc/berth/known_hosts',
    bastion: 'jump@bastion.example.com:2200',
    connectTimeoutMs: 2500,
  };
  assert.deepEqual(sshArgv({ name: 'app-1', address: '10.0.1.11', settings: s }, ['-N']), [
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'ConnectTimeout=3',
    '-o',
    'ServerAliveInterval=10',
    '-o',
    'ServerAliveCountMax=3',
    '-o',
    'UserKnownHostsFile=/etc/berth/known_hosts',
    '-i',
    '/keys/fleet key',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    "ProxyCommand=ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=3 -o ServerAliveInterval=10 -o ServerAliveCountMax=3 -o UserKnownHostsFile=/etc/berth/known_hosts -i '/keys/fleet key' -o IdentitiesOnly=yes -p 2200 -l jump -W '[%h]:%p' bastion.example.com",
    '-p',
    '2222',
    '-l',
    'admin',
    '-N',
    '10.0.1.11',
  ]);
  // Nothing set: ssh's own config decides; accept-new and a config file when asked.
  assert.deepEqual(
    sshArgv({
      name: 'h',
      address: 'h.example',
      settings: { hostKeyChecking: 'accept-new', configFile: '/c%fg' },
    }),
    [
      '-F',
      '/c%fg',
      '-o',
      'BatchMode=yes',
      '-o',
      'StrictHostKeyChecking=accept-new',
      '-o',
      'ConnectTimeout=10',
      '-o',
      'ServerAliveInterval=10',
      '-o',
      'ServerAliveCountMax=3',
      'h.example',
    ],
  );
  // A % in a path is escaped for the ProxyCommand, where ssh would expand it.
  const pc = sshArgv({ name: 'h', address: 'h', settings: { bastion: 'b', identityFile: '/k/100%' } }).find(
    (a) => a.startsWith('ProxyCommand='),
  );
  assert.match(pc!, /-i \/k\/100%% /);
  assert.deepEqual(parseBastion('jump@b.example:2200'), { user: 'jump', host: 'b.example', port: 2200 });
  assert.deepEqual(parseBastion('b'), { host: 'b' });
  assert.equal(parseBastion('a@b@c'), undefined);
  assert.equal(parseBastion('b:99999'), undefined);
});

test("ssh's words become one sentence: a changed key, an unknown key, anything else as said", () => {
  const e = { name: 'app-1', address: '10.0.1.11', settings: { knownHosts: '/kh' } };
  const changed = [
    '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
    '@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @',
    'IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!',
    'Host key verification failed.',
  ].join('\n');
  assert.match(sshFailure(changed, e), /^the host key has CHANGED since it was recorded in \/kh: refused/);
  assert.match(
    sshFailure(
      'No ED25519 host key is known for [10.0.1.11]:22 and you have requested strict checking.\r\nHost key verification failed.\r\n',
      e,
    ),
    /^no host key for \[10\.0\.1\.11\]:22 in \/kh, and strict checking is on: refused/,
  );
  assert.equal(
    sshFailure('ssh: connect to host 10.0.1.11 port 22: Connection refused\r\n', e),
    'ssh: connect to host 10.0.1.11 port 22: Connection refused',
  );
});

/**
 * What every HostFiles keeps, whatever the host: missing files are null, writes are whole and
 * 0600 with no temporary file left, text survives exactly, listing skips dot files, links and
 * folders and stops at the limit.
 */
function hostFilesContract(name: string, files: () => HostFiles, dir: () => string, local: () => string) {
  describe(`HostFiles contract: ${name}`, () => {
    const texts = {
      plain: 'A=1\nB=two words\n',
      noNewline: 'A=1\nLAST=x',
      tricky: 'Q=\'single\' "double" $HOME `cmd` \\back !bang\n\nafter blank\n',
      unicode: 'NAME=Zoë ☃\n',
      empty: '',
    };
    test('write, read back exactly, 0600, atomically (no temporary file left)', async () => {
      const f = files();
      for (const [n, text] of Object.entries(texts)) await f.writeAtomic(`${dir()}/sub/${n}`, text);
      const back = await f.readMany(`${dir()}/sub`, [...Object.keys(texts), 'missing']);
      assert.deepEqual(back, { ...texts, missing: null });
      for (const n of Object.keys(texts))
        assert.equal(statSync(`${local()}/sub/${n}`).mode & 0o777, 0o600, n);
      assert.deepEqual(readdirSync(`${local()}/sub`).sort(), Object.keys(texts).sort());
      await f.writeAtomic(`${dir()}/sub/plain`, 'A=2\n');
      assert.deepEqual(await f.readMany(`${dir()}/sub`, ['plain']), { plain: 'A=2\n' });
    });

    test('list: plain files only, sorted, at most the limit; a missing folder is empty', async () => {
      const f = files();
      mkdirSync(`${local()}/list/folder`, { recursive: true });
      for (const n of ['b', 'a', 'c d', '.hidden']) writeFileSync(`${local()}/list/${n}`, 'x');
      symlinkSync(`${local()}/list/a`, `${local()}/list/link`);
      assert.deepEqual(await f.list(`${dir()}/list`, 100), ['a', 'b', 'c d']);
      assert.equal((await f.list(`${dir()}/list`, 2)).length, 2);
      assert.deepEqual(await f.list(`${dir()}/nope`, 100), []);
    });

    test('rewrite: new content in the same file (same inode), shorter or longer, with its mode', async () => {
      const f = files();
      await f.writeAtomic(`${dir()}/rw/conf`, 'a long first version\nwith two lines\n', 0o644);
      const inode = statSync(`${local()}/rw/conf`).ino;
      for (const text of ['short\n', texts.tricky, texts.unicode + 'x'.repeat(5000) + '\n']) {
        await f.rewrite(`${dir()}/rw/conf`, text, 0o644);
        assert.deepEqual(await f.readMany(`${dir()}/rw`, ['conf']), { conf: text });
        assert.equal(statSync(`${local()}/rw/conf`).ino, inode, 'the same file, not a new one');
      }
      assert.equal(statSync(`${local()}/rw/conf`).mode & 0o777, 0o644);
      assert.deepEqual(readdirSync(`${local()}/rw`), ['conf']);
      await assert.rejects(f.rewrite(`${dir()}/rw/missing`, 'x\n', 0o644), /missing/);
    });

    test('remove: gone, and removing what is not there is fine', async () => {
      const f = files();
      await f.writeAtomic(`${dir()}/rm/x`, 'x\n');
      await f.remove(`${dir()}/rm/x`);
      await f.remove(`${dir()}/rm/x`);
      assert.deepEqual(await f.readMany(`${dir()}/rm`, ['x']), { x: null });
    });

    test('a folder where a file is asked for is an error, not "missing"', async () => {
      mkdirSync(`${local()}/err/x`, { recursive: true });
      await assert.rejects(files().readMany(`${dir()}/err`, ['x']));
    });
  });
}

/** The same checks of private files (secrets, the age identity) on both sides. */
function privateFilesContract(
  name: string,
  files: () => PrivateFiles,
  dir: () => string,
  local: () => string,
) {
  test(`private files are checked before they are read: ${name}`, async () => {
    const d = `${local()}/priv`;
    mkdirSync(`${d}/folder`, { recursive: true });
    writeFileSync(`${d}/ok`, 'value\n', { mode: 0o600 });
    writeFileSync(`${d}/open`, 'value\n', { mode: 0o644 });
    writeFileSync(`${d}/big`, 'x'.repeat(200), { mode: 0o600 });
    writeFileSync(`${d}/file`, 'x', { mode: 0o600 });
    execFileSync('mkfifo', [`${d}/fifo`]);
    const f = files();
    const r = (n: string, max = 100) => f.read(`${dir()}/priv/${n}`, max);
    const ok = await r('ok');
    assert.equal(ok.kind, 'ok');
    assert.equal(ok.kind === 'ok' && ok.bytes.toString(), 'value\n');
    assert.deepEqual(await r('missing'), { kind: 'missing' });
    assert.deepEqual(await r('file/x'), { kind: 'not-dir' });
    assert.deepEqual(await r('folder'), { kind: 'not-file' });
    assert.deepEqual(await r('fifo'), { kind: 'not-file' });
    assert.deepEqual(await r('open'), { kind: 'open-mode', mode: 0o644 });
    assert.deepEqual(await r('big'), { kind: 'too-large' });
  });
}

describe('over SSH through a bastion', () => {
  let work: string;
  let key: SshClientKey;
  let host: SshHost;
  let bastion: SshdServer;
  let port: number;
  let settings: SshSettings;
  let conn: SshConnection;
  let shells: RemoteShells;
  const user = os.userInfo().username;
  const endpoint = (over: Partial<SshSettings> = {}, address = '127.0.0.2') => ({
    name: 'app-1',
    address,
    settings: { ...settings, ...over },
  });

  before(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'bw-sshtest-'));
    key = clientKey(work);
    port = await commonFreePort(['127.0.0.2', '127.0.0.6']);
    [host, bastion] = await Promise.all([
      startSshHost({ name: 'app-1', address: '127.0.0.2', port, authorizedKeys: [key.publicKey] }),
      startBastion({ address: '127.0.0.6', port, authorizedKeys: [key.publicKey] }),
    ]);
    writeKnownHosts(`${work}/known_hosts`, [host, bastion]);
    settings = {
      user,
      port,
      identityFile: key.identityFile,
      knownHosts: `${work}/known_hosts`,
      bastion: `${user}@127.0.0.6:${port}`,
      connectTimeoutMs: 5_000,
    };
    conn = await connectSsh(endpoint());
    shells = new RemoteShells(conn);
  });
  after(async () => {
    await conn?.close();
    await Promise.all([host?.stop(), bastion?.stop()]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  hostFilesContract(
    'this machine',
    () => hostFiles,
    () => `${work}/local`,
    () => `${work}/local`,
  );
  hostFilesContract(
    'a host over SSH',
    () => sshHostFiles(conn, shells),
    () => '/run/files',
    () => `${host.runDir}/files`,
  );
  privateFilesContract(
    'this machine',
    () => localPrivateFiles,
    () => `${work}/local`,
    () => `${work}/local`,
  );
  privateFilesContract(
    'a host over SSH',
    () => sshPrivateFiles(conn, shells, 'app-1'),
    () => '/run/files',
    () => `${host.runDir}/files`,
  );

  test("a host's secrets folder: the same messages, naming the host", async () => {
    mkdirSync(`${host.runDir}/berth/secrets`, { recursive: true });
    writeFileSync(`${host.runDir}/berth/secrets/db`, 'pa55\n', { mode: 0o600 });
    writeFileSync(`${host.runDir}/berth/secrets/open`, 'pa55\n', { mode: 0o640 });
    const s = fileSecrets('/run/berth/secrets', sshPrivateFiles(conn, shells, 'app-1'));
    assert.equal(await s.get('db'), 'pa55');
    assert.equal(await s.get('none'), undefined);
    await assert.rejects(
      s.get('open'),
      /secrets: secret open: \/run\/berth\/secrets\/open on app-1 can be read by group or others \(mode 0640\); run chmod 600/,
    );
  });

  test('health checks from the host: an HTTP server there is reached through a tunnel; tcp from the host', async () => {
    const srv = http.createServer((_q, r) => r.end('from the host'));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.2', () => r()));
    const p = (srv.address() as net.AddressInfo).port;
    try {
      const net = sshNetwork(conn, shells);
      const sock = await net.socketTo('127.0.0.2', p);
      const body = await new Promise<string>((resolve, reject) => {
        http
          .get({ socketPath: sock, path: '/', agent: false }, (res) => {
            let b = '';
            res.on('data', (d: Buffer) => (b += d.toString()));
            res.on('end', () => resolve(b));
          })
          .on('error', reject);
      });
      assert.equal(body, 'from the host');
      assert.equal(await net.socketTo('127.0.0.2', p), sock, 'one forward per target, reused');
      assert.deepEqual(await net.tcpCheck('127.0.0.2', p, 3_000), {
        ok: true,
        output: `connected to 127.0.0.2:${p} from app-1`,
      });
      const refused = await net.tcpCheck('127.0.0.2', 1, 3_000);
      assert.equal(refused.ok, false);
      assert.match(refused.output, /^no connection to 127\.0\.0\.2:1 from app-1: .*refused/i);
    } finally {
      srv.close();
    }
  });

  test('one connection per host from a pool; closing it stops every process it started', async () => {
    const pool = new SshPool();
    const [a, b] = await Promise.all([pool.connect(endpoint()), pool.connect(endpoint())]);
    assert.equal(a, b, 'one connection for two callers');
    const s = new RemoteShells(a);
    await sshHostFiles(a, s).list('/run', 10);
    const pids = runningSshProcesses();
    assert.ok(pids.includes(a.pid));
    await pool.closeAll();
    assert.equal(a.alive(), false);
    const left = processes().filter((p) => pids.includes(p.pid) && p.pid !== conn.pid);
    assert.deepEqual(
      left.filter((p) => !runningSshProcesses().includes(p.pid)),
      [],
      'every process of the closed connection is gone',
    );
  });

  test("the user's ssh config is honoured: a host alias, its user, port, key and ProxyJump", async () => {
    const config = `${work}/ssh_config`;
    writeFileSync(
      config,
      [
        'Host jump',
        '  HostName 127.0.0.6',
        'Host app-alias',
        '  HostName 127.0.0.2',
        '  ProxyJump jump',
        'Host *',
        `  User ${user}`,
        `  Port ${port}`,
        `  IdentityFile ${key.identityFile}`,
        `  UserKnownHostsFile ${work}/known_hosts`,
        '',
      ].join('\n'),
    );
    const logins = bastion.logins();
    const c = await connectSsh({ name: 'app-1', address: 'app-alias', settings: { configFile: config } });
    try {
      const files = sshHostFiles(c, new RemoteShells(c));
      await files.writeAtomic('/run/files/via-config', 'ok\n');
      assert.equal(readFileSync(`${host.runDir}/files/via-config`, 'utf8'), 'ok\n', 'it reached app-1');
      assert.ok(bastion.logins() > logins, 'through the jump host the config names');
    } finally {
      await c.close();
    }
  });

  test('failures name the host and say what ssh said', async () => {
    const tracked = runningSshProcesses().length;
    // Nothing listens there.
    await assert.rejects(
      connectSsh(endpoint({ bastion: undefined }, '127.0.0.8')),
      /^ExternalError: ssh: cannot connect to app-1 \(.*127\.0\.0\.8:\d+\): ssh: connect to host 127\.0\.0\.8 port \d+: Connection refused$/,
    );
    // Another key than the host's.
    writeFileSync(`${work}/changed`, `[127.0.0.2]:${port} ${bastion.hostKey}\n${bastion.knownHostsLine()}\n`);
    await assert.rejects(
      connectSsh(endpoint({ knownHosts: `${work}/changed` })),
      /cannot connect to app-1 \(.*\): the host key has CHANGED since it was recorded in .*\/changed: refused/,
    );
    // Not in known_hosts at all: refused, unless accept-new is asked for.
    writeFileSync(`${work}/partial`, `${bastion.knownHostsLine()}\n`);
    await assert.rejects(
      connectSsh(endpoint({ knownHosts: `${work}/partial` })),
      /no host key for \[127\.0\.0\.2\]:\d+ in .*\/partial, and strict checking is on: refused/,
    );
    const accepted = await connectSsh(
      endpoint({ knownHosts: `${work}/partial`, hostKeyChecking: 'accept-new' }),
    );
    await accepted.close();
    // Recorded (hashed, as this machine's ssh_config asks): ssh-keygen finds it.
    execFileSync('ssh-keygen', ['-F', `[127.0.0.2]:${port}`, '-f', `${work}/partial`], { stdio: 'ignore' });
    // A key the host does not accept.
    const stranger = clientKey(work, 'stranger');
    await assert.rejects(
      connectSsh(endpoint({ identityFile: stranger.identityFile })),
      /cannot connect to app-1 .*Permission denied \(publickey\)/,
    );
    // A server that never answers: bounded by the connect timeout.
    const silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.2', () => r()));
    try {
      await assert.rejects(
        connectSsh(
          endpoint({
            bastion: undefined,
            port: (silent.address() as net.AddressInfo).port,
            connectTimeoutMs: 1_000,
          }),
        ),
        /cannot connect to app-1 .*(timed out|no connection within)/i,
      );
    } finally {
      silent.close();
    }
    assert.equal(runningSshProcesses().length, tracked, 'no failed attempt left a process running');
    // Every ssh berth runs is one it tracks (a ProxyCommand is in its master's process group).
    const masters = new Set(runningSshProcesses());
    const orphans = processes().filter(
      (p) => p.cmdline.includes('/berth-ssh-') && !masters.has(p.pid) && !masters.has(p.ppid),
    );
    assert.deepEqual(orphans, [], 'no ssh process outside the open connection');
  });
});
