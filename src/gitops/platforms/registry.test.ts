import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../model/errors.js';
import { getPlatform, hostedAt, openPlatform } from './registry.js';

test('hostedAt reads host and project from every git URL form, none from local repos', () => {
  assert.deepEqual(hostedAt('git@github.com:team/state.git'), { host: 'github.com', project: 'team/state' });
  assert.deepEqual(hostedAt('https://gitlab.example.com/ops/infra/state'), {
    host: 'gitlab.example.com',
    project: 'ops/infra/state',
  });
  assert.deepEqual(hostedAt('ssh://git@git.example.com:2222/team/state.git/'), {
    host: 'git.example.com',
    project: 'team/state',
  });
  assert.deepEqual(hostedAt('https://user:tok@github.com/team/state.git'), {
    host: 'github.com',
    project: 'team/state',
  });
  assert.equal(hostedAt('/srv/state.git'), undefined);
  assert.equal(hostedAt('./state'), undefined);
  assert.equal(hostedAt('file:///srv/state.git'), undefined);
});

test('openPlatform: the API root from --api-url, the platform variable, or the repo host', () => {
  const made: Array<{ apiUrl: string; project: string; token: string }> = [];
  const spy = (name: string) => {
    const p = getPlatform(name);
    const create = p.create;
    p.create = (s) => {
      made.push({ apiUrl: s.apiUrl, project: s.project, token: s.token });
      return create(s);
    };
    return () => (p.create = create);
  };
  const undo = [spy('github'), spy('gitlab'), spy('gitea')];
  try {
    openPlatform('github', { repo: 'git@github.com:team/state.git', env: { GH_TOKEN: 't1' } });
    openPlatform('github', { repo: 'git@ghe.example.com:team/state.git', env: { GITHUB_TOKEN: 't2' } });
    openPlatform('github', {
      repo: 'git@ghe.example.com:team/state.git',
      env: { GITHUB_TOKEN: 't3', GITHUB_API_URL: 'https://ghe.example.com/api/v3/' },
    });
    openPlatform('gitlab', {
      repo: 'https://gitlab.example.com/ops/infra/state.git',
      env: { GITLAB_TOKEN: 't4' },
    });
    openPlatform('gitea', {
      repo: '/local/state',
      project: 'ops/state',
      apiUrl: 'http://127.0.0.1:3000/api/v1',
      env: { GITEA_TOKEN: 't5' },
    });
  } finally {
    undo.forEach((f) => f());
  }
  assert.deepEqual(made, [
    { apiUrl: 'https://api.github.com', project: 'team/state', token: 't1' },
    { apiUrl: 'https://ghe.example.com/api/v3', project: 'team/state', token: 't2' },
    { apiUrl: 'https://ghe.example.com/api/v3', project: 'team/state', token: 't3' },
    { apiUrl: 'https://gitlab.example.com/api/v4', project: 'ops/infra/state', token: 't4' },
    { apiUrl: 'http://127.0.0.1:3000/api/v1', project: 'ops/state', token: 't5' },
  ]);
});

test('openPlatform: each missing piece is a usage error that says how to give it', () => {
  const fails = (name: string, o: Parameters<typeof openPlatform>[1], message: RegExp) =>
    assert.throws(
      () => openPlatform(name, o),
      (e: Error) => e instanceof UsageError && message.test(e.message),
    );
  fails(
    'bitbucket',
    { repo: 'x', env: {} },
    /--pr "bitbucket": unknown platform; known: gitea, github, gitlab/,
  );
  fails(
    'github',
    { repo: 'git@github.com:a/b.git', env: {} },
    /--pr github needs a token in GITHUB_TOKEN or GH_TOKEN/,
  );
  fails('gitlab', { repo: '/srv/state.git', env: { GITLAB_TOKEN: 'x' } }, /give --project owner\/name/);
  fails(
    'gitea',
    { repo: '/srv/state.git', project: 'a/b', env: { GITEA_TOKEN: 'x' } },
    /cannot tell the API address .*give --api-url URL/,
  );
  fails(
    'gitea',
    { repo: '/srv/state.git', project: 'a/b', apiUrl: 'ftp://x', env: { GITEA_TOKEN: 'x' } },
    /--api-url "ftp:\/\/x" is not an http/,
  );
  fails(
    'github',
    { repo: '/srv', project: 'no-slash', apiUrl: 'http://h', env: { GITHUB_TOKEN: 'x' } },
    /wants owner\/name/,
  );
});
