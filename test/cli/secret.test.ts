import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ageSecrets } from '../../src/secrets/age.js';
import { berth, MAIN, type CliResult } from '../support/cli.js';

// `berth secret encrypt` as built, fed on stdin the way a person or CI would, checked against
// the real age CLI (Debian package `age`, installed by scripts/setup.sh).

/** The built berth with `input` on stdin (test/support/cli.ts gives it none). */
function berthWithInput(args: string[], input: string | Buffer): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-secret-cli-'));
  t.after(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

function keygen(file: string): string {
  execFileSync('age-keygen', ['-o', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  return execFileSync('age-keygen', ['-y', file], { encoding: 'utf8' }).trim();
}

test('encrypt: stdin to secrets/NAME.age, armored, decrypted by age -d -i and by berth', async (t) => {
  const dir = await tempDir(t);
  const repo = path.join(dir, 'state');
  await fsp.mkdir(repo);
  const key = path.join(dir, 'host.key');
  const recipient = keygen(key);
  const r = await berthWithInput(
    ['secret', 'encrypt', '--repo', repo, '--recipient', recipient, 'db_password'],
    'p@ss/w:rd%\n',
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'wrote secrets/db_password.age for 1 recipient(s); commit it\n');
  const file = path.join(repo, 'secrets', 'db_password.age');
  const armored = await fsp.readFile(file, 'utf8');
  assert.match(armored, /^-----BEGIN AGE ENCRYPTED FILE-----\n/);
  assert.equal(execFileSync('age', ['-d', '-i', key, file], { encoding: 'utf8' }), 'p@ss/w:rd%');
  const source = ageSecrets(new Map([['secrets/db_password.age', armored]]), key);
  assert.equal(await source.get('db_password'), 'p@ss/w:rd%');
});

test('encrypt: recipients from flags and files, each can decrypt; a second run replaces the file', async (t) => {
  const dir = await tempDir(t);
  const keys = ['a', 'b', 'c'].map((n) => path.join(dir, `${n}.key`));
  const [ra, rb, rc] = keys.map(keygen);
  const list = path.join(dir, 'recipients.txt');
  await fsp.writeFile(list, `# hosts of the app group\n${rb}\n\n  ${rc}  \n`);
  const args = ['secret', 'encrypt', '--repo', dir, '--recipient', ra!, '--recipients-file', list, 'token'];
  let r = await berthWithInput(args, 'first');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /for 3 recipient\(s\)/);
  r = await berthWithInput(args, 'second\n');
  assert.equal(r.code, 0, r.stderr);
  for (const k of keys) {
    const out = execFileSync('age', ['-d', '-i', k, path.join(dir, 'secrets', 'token.age')], {
      encoding: 'utf8',
    });
    assert.equal(out, 'second');
  }
});

test('encrypt refuses bad values, names, recipients and repos, writes nothing, and never echoes the value', async (t) => {
  const dir = await tempDir(t);
  const recipient = keygen(path.join(dir, 'k.key'));
  const canary = `canary-${randomBytes(12).toString('hex')}`;
  const cases: Array<{ args: string[]; input: string | Buffer; error: RegExp }> = [
    { args: ['x'], input: `${canary}\n${canary}\n`, error: /more than one line/ },
    { args: ['x'], input: `${canary}\r\n`, error: /more than one line/ },
    { args: ['x'], input: `${canary}\n\n`, error: /more than one line/ },
    { args: ['x'], input: `${canary}\0`, error: /NUL/ },
    { args: ['x'], input: Buffer.from([0xff, 0xfe, 0x41]), error: /not UTF-8/ },
    { args: ['x'], input: '', error: /the value on stdin is empty/ },
    { args: ['x'], input: '\n', error: /is empty/ },
    { args: ['../x'], input: canary, error: /invalid secret name "\.\.\/x"/ },
    { args: ['a/b'], input: canary, error: /invalid secret name/ },
    { args: ['.x'], input: canary, error: /invalid secret name/ },
  ];
  for (const c of cases) {
    const r = await berthWithInput(
      ['secret', 'encrypt', '--repo', dir, '--recipient', recipient, ...c.args],
      c.input,
    );
    assert.equal(r.code, 1, `${c.args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, c.error);
    assert.ok(!r.stdout.includes(canary) && !r.stderr.includes(canary), `canary leaked: ${r.stderr}`);
  }
  const other = [
    { args: ['x'], error: /no recipient/ },
    { args: ['--recipient', 'age1nope', 'x'], error: /invalid recipient "age1nope"/ },
    { args: ['--recipient', 'ssh-ed25519 AAAA', 'x'], error: /invalid recipient/ },
    {
      args: ['--recipients-file', path.join(dir, 'none.txt'), 'x'],
      error: /cannot read recipients file .*ENOENT/,
    },
  ];
  for (const c of other) {
    const r = await berthWithInput(['secret', 'encrypt', '--repo', dir, ...c.args], canary);
    assert.equal(r.code, 1, `${c.args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, c.error);
    assert.ok(!r.stderr.includes(canary));
  }
  const sshList = path.join(dir, 'ssh.txt');
  await fsp.writeFile(sshList, `${recipient}\nssh-ed25519 AAAAC3Nz host\n`);
  let r = await berthWithInput(
    ['secret', 'encrypt', '--repo', dir, '--recipients-file', sshList, 'x'],
    canary,
  );
  assert.equal(r.code, 1);
  assert.match(r.stderr, /ssh\.txt line 2: not an age recipient/);
  for (const repo of ['https://git.example.com/ops/state.git', 'git@git.example.com:ops/state.git']) {
    r = await berthWithInput(['secret', 'encrypt', '--repo', repo, '--recipient', recipient, 'x'], canary);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /give a local checkout/);
  }
  r = await berthWithInput(
    ['secret', 'encrypt', '--repo', path.join(dir, 'nope'), '--recipient', recipient, 'x'],
    canary,
  );
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not a folder/);
  await assert.rejects(fsp.stat(path.join(dir, 'secrets')), { code: 'ENOENT' });
});

test('encrypt --help says how to make a host identity with age-keygen', async () => {
  const r = await berth(['secret', 'encrypt', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /age-keygen -o \/etc\/berth\/age\.key/);
  assert.match(r.stdout, /read from stdin/);
});

test('encrypt refuses a terminal on stdin rather than echo a typed secret', async (t) => {
  const dir = await tempDir(t);
  const recipient = keygen(path.join(dir, 'k.key'));
  // script(1) (util-linux) runs berth on a pseudo-terminal, as if typed at a shell.
  const cmd = [process.execPath, MAIN, 'secret', 'encrypt', '--repo', dir, '--recipient', recipient, 'x'];
  const r = spawnSync('script', ['-qec', cmd.map((a) => `'${a}'`).join(' '), '/dev/null'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 30_000,
  });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /stdin, which is a terminal here: pipe it in/);
  await assert.rejects(fsp.stat(path.join(dir, 'secrets')), { code: 'ENOENT' });
});
