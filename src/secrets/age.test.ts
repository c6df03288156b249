import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { ageSecrets } from './age.js';
import { chainSources } from './chain.js';
import { encryptSecret } from './encrypt.js';
import { fileSecrets } from './files.js';
import { SecretError } from './types.js';

// These tests use the real age CLI (Debian package `age`, installed by scripts/setup.sh) on one
// side of every round trip, so our files are age's files and age's files are ours.

interface Key {
  file: string;
  recipient: string;
  identity: string;
}

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-age-'));
  t.after(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

function keygen(file: string): Key {
  execFileSync('age-keygen', ['-o', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  const recipient = execFileSync('age-keygen', ['-y', file], { encoding: 'utf8' }).trim();
  const identity = execFileSync('grep', ['^AGE-SECRET-KEY-1', file], { encoding: 'utf8' }).trim();
  return { file, recipient, identity };
}

/** `age -a -r RECIPIENT`, the way an operator would encrypt by hand. */
function ageEncrypt(value: string, ...recipients: string[]): string {
  return execFileSync('age', ['-a', ...recipients.flatMap((r) => ['-r', r])], {
    input: value,
    encoding: 'utf8',
  });
}

const repo = (entries: Record<string, string>) => new Map(Object.entries(entries));

/** Every text an error could show a person or a log: message, String(), stack, inspect with causes. */
function errorText(e: unknown): string {
  return [String(e), (e as Error)?.message, (e as Error)?.stack, inspect(e, { depth: 5 })].join('\n');
}

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  assert.fail('expected an error');
}

test('a value encrypted by the age CLI is decrypted, one trailing newline stripped', async (t) => {
  const dir = await tempDir(t);
  const key = keygen(path.join(dir, 'age.key'));
  const files = repo({
    'secrets/db_password.age': ageEncrypt('p@ss/w:rd%\n', key.recipient),
    'secrets/token.age': ageEncrypt('no-newline', key.recipient),
    'secrets/unicode.age': ageEncrypt('pässwörd ✓', key.recipient),
  });
  const s = ageSecrets(files, key.file);
  assert.equal(await s.get('db_password'), 'p@ss/w:rd%');
  assert.equal(await s.get('token'), 'no-newline');
  assert.equal(await s.get('unicode'), 'pässwörd ✓');
  assert.equal(await s.get('absent'), undefined);
});

test('a secret not in the repo needs no identity file', async () => {
  const s = ageSecrets(repo({ 'services/api.yaml': 'image: x' }), '/no/such/age.key');
  assert.equal(await s.get('db_password'), undefined);
});

test('our encryption is decrypted by age -d -i, for every recipient', async (t) => {
  const dir = await tempDir(t);
  const a = keygen(path.join(dir, 'a.key'));
  const b = keygen(path.join(dir, 'b.key'));
  const armored = await encryptSecret('s3cr:t/@%', [a.recipient, b.recipient]);
  assert.match(armored, /^-----BEGIN AGE ENCRYPTED FILE-----\n[\s\S]+\n-----END AGE ENCRYPTED FILE-----\n$/);
  const file = path.join(dir, 'x.age');
  await fsp.writeFile(file, armored);
  for (const k of [a, b]) {
    assert.equal(execFileSync('age', ['-d', '-i', k.file, file], { encoding: 'utf8' }), 's3cr:t/@%');
  }
  // And by our own source, with either key.
  assert.equal(await ageSecrets(repo({ 'secrets/x.age': armored }), b.file).get('x'), 's3cr:t/@%');
});

test('an identity file with comments, blank lines and several keys: any matching key decrypts', async (t) => {
  const dir = await tempDir(t);
  const a = keygen(path.join(dir, 'a.key'));
  const b = keygen(path.join(dir, 'b.key'));
  const both = path.join(dir, 'both.key');
  await fsp.writeFile(
    both,
    `# host identity\n\n${a.identity}\n# old key, kept while files are re-encrypted\n${b.identity}\n`,
    {
      mode: 0o600,
    },
  );
  const files = repo({ 'secrets/x.age': ageEncrypt('v', b.recipient) });
  assert.equal(await ageSecrets(files, both).get('x'), 'v');
});

test('a wrong identity: "no matching key", naming the file and the identity', async (t) => {
  const dir = await tempDir(t);
  const right = keygen(path.join(dir, 'right.key'));
  const wrong = keygen(path.join(dir, 'wrong.key'));
  const files = repo({ 'secrets/db_password.age': ageEncrypt('value', right.recipient) });
  const e = await failure(ageSecrets(files, wrong.file).get('db_password'));
  assert.ok(e instanceof SecretError);
  assert.equal(
    e.message,
    `secrets: cannot decrypt secrets/db_password.age with identity ${wrong.file}: no matching key`,
  );
});

test('a missing, open or malformed identity file is a clear error', async (t) => {
  const dir = await tempDir(t);
  const key = keygen(path.join(dir, 'age.key'));
  const files = repo({ 'secrets/x.age': ageEncrypt('v', key.recipient) });
  const missing = path.join(dir, 'none.key');
  await assert.rejects(
    ageSecrets(files, missing).get('x'),
    new RegExp(`cannot decrypt secrets/x.age with identity ${missing}: .*does not exist.*age-keygen -o`),
  );
  await fsp.chmod(key.file, 0o644);
  await assert.rejects(ageSecrets(files, key.file).get('x'), /mode 0644.*chmod 600/);
  const plugin = path.join(dir, 'plugin.key');
  await fsp.writeFile(plugin, '# c\nAGE-PLUGIN-YUBIKEY-1XYZ\n', { mode: 0o600 });
  await assert.rejects(ageSecrets(files, plugin).get('x'), /line 2 is not an age identity/);
  const empty = path.join(dir, 'empty.key');
  await fsp.writeFile(empty, '# nothing\n', { mode: 0o600 });
  await assert.rejects(ageSecrets(files, empty).get('x'), /holds no identity/);
});

test('a corrupted or unencrypted file is an error, not a value', async (t) => {
  const dir = await tempDir(t);
  const key = keygen(path.join(dir, 'age.key'));
  const good = ageEncrypt('value-that-is-long-enough-to-span-a-line'.repeat(2), key.recipient);
  const lines = good.split('\n');
  const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
  const bodyLast = lines.length - 3; // the last base64 line, before the footer and the final ''
  const variants = {
    'not armored': 'value in plain text\n',
    'binary header as text': 'age-encryption.org/v1\n-> X25519 abc\n',
    'payload byte changed': [
      ...lines.slice(0, bodyLast),
      flip(lines[bodyLast]!, 2),
      ...lines.slice(bodyLast + 1),
    ].join('\n'),
    'header byte changed': [lines[0], flip(lines[1]!, 20), ...lines.slice(2)].join('\n'),
    truncated: [...lines.slice(0, bodyLast), ...lines.slice(bodyLast + 1)].join('\n'),
    'no footer': lines.slice(0, -2).join('\n'),
    'bad base64': [lines[0], '!!!!', ...lines.slice(2)].join('\n'),
  };
  for (const [what, text] of Object.entries(variants)) {
    const e = await failure(ageSecrets(repo({ 'secrets/x.age': text }), key.file).get('x'));
    assert.ok(e instanceof SecretError, what);
    assert.match(
      e.message,
      new RegExp(`^secrets: cannot decrypt secrets/x.age with identity ${key.file}: `),
      what,
    );
  }
});

test('canary: no secret value or identity ever appears in an error', async (t) => {
  const dir = await tempDir(t);
  const canary = `canary-${randomBytes(12).toString('hex')}`;
  const key = keygen(path.join(dir, 'age.key'));
  const other = keygen(path.join(dir, 'other.key'));
  const errors: unknown[] = [];
  const collect = async (p: Promise<unknown>) => errors.push(await failure(p));

  // Host files holding the canary, refused for every reason there is.
  const sdir = path.join(dir, 'secrets');
  await fsp.mkdir(sdir);
  const put = (name: string, content: string, mode = 0o600) =>
    fsp
      .writeFile(path.join(sdir, name), content, { mode })
      .then(() => fsp.chmod(path.join(sdir, name), mode));
  await put('open', `${canary}\n`, 0o644);
  await put('lines', `${canary}\n${canary}\n`);
  await put('nul', `${canary}\0`);
  const files = fileSecrets(sdir);
  for (const n of ['open', 'lines', 'nul']) await collect(files.get(n));

  // Repo files holding the canary: for another key, damaged, multi-line, in plain text.
  const sealed = ageEncrypt(canary, key.recipient);
  const repoFiles = repo({
    'secrets/wrong.age': sealed,
    'secrets/damaged.age': sealed.replace(/\n[A-Za-z0-9+/]{10}/, '\nAAAAAAAAAA'),
    'secrets/lines.age': ageEncrypt(`${canary}\n${canary}`, key.recipient),
    'secrets/plain.age': `${canary}\n`,
    'secrets/armor.age': `-----BEGIN AGE ENCRYPTED FILE-----\n${canary}\n-----END AGE ENCRYPTED FILE-----\n`,
  });
  await collect(ageSecrets(repoFiles, other.file).get('wrong'));
  for (const n of ['damaged', 'lines', 'plain', 'armor'])
    await collect(ageSecrets(repoFiles, key.file).get(n));

  // A mistyped identity: the age library's own error would quote the whole secret key.
  const typo = key.identity.slice(0, -3) + (key.identity.endsWith('AAA') ? 'QQQ' : 'AAA');
  const typoFile = path.join(dir, 'typo.key');
  await fsp.writeFile(typoFile, `${typo}\n`, { mode: 0o600 });
  await collect(ageSecrets(repoFiles, typoFile).get('wrong'));

  // Through the chain, as berth uses it.
  await collect(chainSources([files, ageSecrets(repoFiles, other.file)]).get('wrong'));

  assert.equal(errors.length, 10);
  for (const e of errors) {
    assert.ok(e instanceof SecretError, errorText(e));
    const text = errorText(e);
    assert.ok(!text.includes(canary), `canary leaked: ${text}`);
    assert.ok(!text.includes(typo) && !text.includes(key.identity), `identity leaked: ${text}`);
    assert.ok(!text.includes(typo.slice(20, 40)), `part of the identity leaked: ${text}`);
  }
});
