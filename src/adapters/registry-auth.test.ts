import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ExternalError } from '../model/errors.js';
import { DOCKER_HUB_KEY, registryKey, registryOf, resolveAuth } from './registry-auth.js';

// Real files and real helper programs: a temp config dir per case, and docker-credential-*
// shell scripts on PATH that answer as the real helpers do.
let root: string;
let savedPath: string | undefined;

const b64 = (s: string) => Buffer.from(s).toString('base64');

function configDir(config: unknown): string {
  const dir = mkdtempSync(path.join(root, 'cfg-'));
  writeFileSync(path.join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return dir;
}

function helper(name: string, script: string): void {
  const file = path.join(root, 'bin', `docker-credential-${name}`);
  writeFileSync(file, `#!/bin/sh\n${script}\n`);
  chmodSync(file, 0o755);
}

before(() => {
  root = mkdtempSync(path.join(tmpdir(), 'berth-auth-'));
  mkdirSync(path.join(root, 'bin'));
  savedPath = process.env.PATH;
  process.env.PATH = `${path.join(root, 'bin')}:${savedPath ?? ''}`;
  // Echoes the server address it was asked about, so tests see what berth sends on stdin.
  helper(
    'echo',
    `[ "$1" = get ] || exit 3; read -r server; printf '{"ServerURL":"%s","Username":"u-%s","Secret":"s3cret"}' "$server" "$server"`,
  );
  helper(
    'token',
    `read -r server; printf '{"ServerURL":"%s","Username":"<token>","Secret":"tok-123"}' "$server"`,
  );
  helper('empty', 'echo "credentials not found in native keychain"; exit 1');
  helper('broken', 'echo "pass store is locked" >&2; exit 2');
  helper('garbage', 'echo "not json but s3cret"');
});

after(() => {
  process.env.PATH = savedPath;
  rmSync(root, { recursive: true, force: true });
});

test('registry of a reference, as docker decides it', () => {
  assert.equal(registryOf('nginx'), 'docker.io');
  assert.equal(registryOf('nginx:1.25'), 'docker.io');
  assert.equal(registryOf('library/nginx@sha256:abc'), 'docker.io');
  assert.equal(registryOf('team/api:1'), 'docker.io');
  assert.equal(registryOf('docker.io/team/api:1'), 'docker.io');
  assert.equal(registryOf('127.0.0.1:5000/team/api:1'), '127.0.0.1:5000');
  assert.equal(registryOf('localhost/api'), 'localhost');
  assert.equal(registryOf('ghcr.io/org/x:2'), 'ghcr.io');
  assert.equal(registryKey('docker.io'), DOCKER_HUB_KEY);
  assert.equal(registryKey('index.docker.io'), DOCKER_HUB_KEY);
  assert.equal(registryKey('ghcr.io'), 'ghcr.io');
});

test('no config file means anonymous', async () => {
  assert.equal(await resolveAuth('nginx', { dockerConfigDir: path.join(root, 'nowhere') }), undefined);
});

test('auths: base64 user:pass, username/password, identitytoken, keys with a scheme', async () => {
  const dir = configDir({
    auths: {
      'https://index.docker.io/v1/': { auth: b64('hubuser:hub:pass') },
      '127.0.0.1:5000': { username: 'plain', password: 'pw' },
      'https://ghcr.io/': { auth: b64('gh:ghpw') },
      'registry.example.com': { identitytoken: 'idtok' },
    },
  });
  const env = { dockerConfigDir: dir };
  assert.deepEqual(await resolveAuth('nginx:1', env), {
    username: 'hubuser',
    password: 'hub:pass', // only the first colon separates
    serveraddress: DOCKER_HUB_KEY,
  });
  assert.deepEqual(await resolveAuth('docker.io/team/api', env), {
    username: 'hubuser',
    password: 'hub:pass',
    serveraddress: DOCKER_HUB_KEY,
  });
  assert.deepEqual(await resolveAuth('127.0.0.1:5000/a/b:1', env), {
    username: 'plain',
    password: 'pw',
    serveraddress: '127.0.0.1:5000',
  });
  assert.deepEqual(await resolveAuth('ghcr.io/org/x', env), {
    username: 'gh',
    password: 'ghpw',
    serveraddress: 'ghcr.io',
  });
  assert.deepEqual(await resolveAuth('registry.example.com/x', env), {
    identitytoken: 'idtok',
    serveraddress: 'registry.example.com',
  });
  assert.equal(await resolveAuth('127.0.0.1:5001/a/b', env), undefined, 'another port is another registry');
});

test('a Hub key written without the scheme still matches', async () => {
  const dir = configDir({ auths: { 'docker.io': { auth: b64('a:b') } } });
  assert.deepEqual(await resolveAuth('busybox', { dockerConfigDir: dir }), {
    username: 'a',
    password: 'b',
    serveraddress: DOCKER_HUB_KEY,
  });
});

test('DOCKER_CONFIG is the default config dir', async () => {
  const dir = configDir({ auths: { 'r.example:1': { auth: b64('x:y') } } });
  const saved = process.env.DOCKER_CONFIG;
  process.env.DOCKER_CONFIG = dir;
  try {
    assert.equal((await resolveAuth('r.example:1/a'))?.username, 'x');
  } finally {
    if (saved === undefined) delete process.env.DOCKER_CONFIG;
    else process.env.DOCKER_CONFIG = saved;
  }
});

test('credHelpers win over credsStore and auths; the helper gets the registry key on stdin', async () => {
  const dir = configDir({
    credHelpers: { '127.0.0.1:5000': 'echo', 'https://index.docker.io/v1/': 'echo' },
    credsStore: 'token',
    auths: { '127.0.0.1:5000': { auth: b64('file:pw') } },
  });
  const env = { dockerConfigDir: dir };
  assert.deepEqual(await resolveAuth('127.0.0.1:5000/a:1', env), {
    username: 'u-127.0.0.1:5000',
    password: 's3cret',
    serveraddress: '127.0.0.1:5000',
  });
  assert.deepEqual(await resolveAuth('nginx', env), {
    username: `u-${DOCKER_HUB_KEY}`,
    password: 's3cret',
    serveraddress: DOCKER_HUB_KEY,
  });
  // Not in credHelpers: the credsStore answers; Username <token> means an identity token.
  assert.deepEqual(await resolveAuth('ghcr.io/o/x', env), {
    identitytoken: 'tok-123',
    serveraddress: 'ghcr.io',
  });
});

test('a helper that has no credentials falls back to auths, else anonymous', async () => {
  const dir = configDir({ credsStore: 'empty', auths: { 'a.example': { auth: b64('f:g') } } });
  assert.deepEqual(await resolveAuth('a.example/x', { dockerConfigDir: dir }), {
    username: 'f',
    password: 'g',
    serveraddress: 'a.example',
  });
  assert.equal(await resolveAuth('b.example/x', { dockerConfigDir: dir }), undefined);
  // `docker login` with a store leaves an empty entry: that is not a credential either.
  const empty = configDir({ credsStore: 'empty', auths: { 'a.example': {} } });
  assert.equal(await resolveAuth('a.example/x', { dockerConfigDir: empty }), undefined);
});

test('helper failures name the helper and the registry, never the secret', async () => {
  const check = (re: RegExp) => (err: unknown) => {
    assert.ok(err instanceof ExternalError, String(err));
    assert.match(err.message, re);
    assert.doesNotMatch(err.message, /s3cret/);
    return true;
  };
  const broken = configDir({ credHelpers: { 'r.example': 'broken' } });
  await assert.rejects(
    resolveAuth('r.example/x', { dockerConfigDir: broken }),
    check(
      /^registry auth: credential helper docker-credential-broken for r\.example: exit 2: pass store is locked$/,
    ),
  );
  const missing = configDir({ credsStore: 'nosuchhelper' });
  await assert.rejects(
    resolveAuth('r.example/x', { dockerConfigDir: missing }),
    check(/docker-credential-nosuchhelper for r\.example: not found on PATH/),
  );
  const garbage = configDir({ credsStore: 'garbage' });
  await assert.rejects(
    resolveAuth('r.example/x', { dockerConfigDir: garbage }),
    check(/docker-credential-garbage for r\.example: answered something that is not JSON/),
  );
});

test('an invalid config.json is an error that does not quote it', async () => {
  const dir = configDir('{"auths": {"x": {"auth": "c2VjcmV0OnMzY3JldA=="}}, oops');
  await assert.rejects(resolveAuth('x/y', { dockerConfigDir: dir }), (err: unknown) => {
    assert.ok(err instanceof ExternalError);
    assert.match(err.message, /config\.json is not valid JSON$/);
    assert.doesNotMatch(err.message, /c2VjcmV0/);
    return true;
  });
});
