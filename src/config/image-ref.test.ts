import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imageRefProblem, parseImageRef } from './image-ref.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

test('a registry with a port stays part of the repository, as docker lists it', () => {
  assert.deepEqual(parseImageRef('127.0.0.1:5000/team/api:1.4.2'), {
    registry: '127.0.0.1:5000',
    repository: '127.0.0.1:5000/team/api',
    tag: '1.4.2',
  });
  assert.deepEqual(parseImageRef('localhost:5000/api'), {
    registry: 'localhost:5000',
    repository: 'localhost:5000/api',
    tag: 'latest',
  });
});

test('Docker Hub names are shown the short way the engine does', () => {
  assert.deepEqual(parseImageRef('nginx'), { repository: 'nginx', tag: 'latest' });
  assert.deepEqual(parseImageRef('docker.io/library/nginx:1.27'), { repository: 'nginx', tag: '1.27' });
  assert.deepEqual(parseImageRef('index.docker.io/team/api:1'), { repository: 'team/api', tag: '1' });
});

test('a digest, with or without a tag, and no default tag beside a digest', () => {
  assert.deepEqual(parseImageRef(`ghcr.io/o/api@${DIGEST}`), {
    registry: 'ghcr.io',
    repository: 'ghcr.io/o/api',
    digest: DIGEST,
  });
  assert.deepEqual(parseImageRef(`api:1@${DIGEST}`), { repository: 'api', tag: '1', digest: DIGEST });
});

test('separators allowed inside path components', () => {
  assert.equal(imageRefProblem('a__b/c--d.e_f:v1.0-rc_1'), undefined);
  assert.equal(imageRefProblem('[::1]:5000/x:1'), undefined);
});

test('invalid references say what is wrong', () => {
  const cases: Array<[string, string]> = [
    ['Foo:bar', 'the repository name must be lowercase'],
    ['ghcr.io/Team/api', 'the repository name must be lowercase'],
    ['', 'the reference is empty'],
    ['a//b', 'the repository name has an empty path component'],
    [
      'a-/b',
      '"a-" is not a valid name component: use lowercase letters and digits, separated by ".", "_", "__" or "-"',
    ],
    ['api:-1', 'tag "-1" must be 1-128 of letters, digits, "_", "." and "-", not starting with "." or "-"'],
    [
      `api:${'x'.repeat(129)}`,
      `tag "${'x'.repeat(129)}" must be 1-128 of letters, digits, "_", "." and "-", not starting with "." or "-"`,
    ],
    ['api@sha256:abc', 'a digest must be "sha256:" followed by 64 lowercase hex digits'],
    ['reg.io:http/api', 'registry port "http" must be a number'],
    ['api image', 'a reference cannot contain whitespace'],
    [`${'a'.repeat(256)}`, 'the repository name is longer than 255 characters'],
  ];
  for (const [ref, problem] of cases) assert.equal(imageRefProblem(ref), problem, ref);
  assert.throws(() => parseImageRef('Foo:bar'), {
    message: 'invalid image reference "Foo:bar": the repository name must be lowercase',
  });
});
