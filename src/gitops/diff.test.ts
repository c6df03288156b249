import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadStateRepo } from '../config/load.js';
import type { StateRepo } from '../model/service.js';
import { diffRepos, fileName, formatDiff, markdownTable } from './diff.js';

function repo(files: Record<string, string>): StateRepo {
  const r = loadStateRepo({ files: new Map(Object.entries(files)), ref: 'x' });
  assert.deepEqual(r.issues, []);
  return r.repo!;
}

test('field names are the service file’s own', () => {
  assert.equal(fileName('env'), 'env_vars');
  assert.equal(fileName('workingDir'), 'working_dir');
  assert.equal(fileName('restartPolicy'), 'restart_policy');
  assert.equal(fileName('healthcheck'), 'healthcheck');
});

test('diffRepos: release, env values as written, other settings, one-sided services', () => {
  const prod = repo({
    'berth.yaml': 'defaults: { log_driver: syslog }\n',
    'services/api.yaml':
      "image: reg/api:1\nbuildNumber: '1'\nenv_vars: { A: x, SECRET: '{{ secrets.pw }}' }\n",
    'services/old.yaml': 'image: reg/old:1\n',
    'services/same.yaml': 'image: reg/same:1\n',
  });
  const staging = repo({
    'services/api.yaml':
      "image: reg/api:2\nbuildNumber: '2'\nenv_vars: { A: y, B: z, SECRET: 'pre{{ secrets.pw }}' }\nworking_dir: /srv\n",
    'services/new.yaml': "image: reg/new:1\nbuildNumber: '5'\n",
    'services/same.yaml': 'image: reg/same:1\n',
  });
  const d = diffRepos(prod, staging);
  assert.deepEqual(d.same, []);
  const byName = Object.fromEntries(d.services.map((x) => [x.service, x]));
  assert.deepEqual(byName.api!.fields, [
    { what: 'build', to: '1', from: '2' },
    { what: 'image', to: 'reg/api:1', from: 'reg/api:2' },
    { what: 'env A', to: 'x', from: 'y' },
    { what: 'env B', from: 'z' },
    { what: 'env SECRET', to: '{{ secrets.pw }}', from: 'pre{{ secrets.pw }}' },
    { what: 'log_driver', to: 'syslog' },
    { what: 'working_dir', from: '/srv' },
  ]);
  assert.equal(byName.api!.release, true);
  assert.deepEqual([byName.new!.status, byName.new!.fields], ['new', [{ what: 'service', from: 'build 5' }]]);
  assert.deepEqual([byName.old!.status, byName.old!.fields], ['gone', [{ what: 'service', to: 'old:1' }]]);
  assert.equal(byName.same!.fields.length, 1, 'log_driver comes from prod defaults only');
  const to = { env: 'production', branch: 'production', commit: 'a'.repeat(40) };
  const from = { env: 'staging', branch: 'staging', commit: 'b'.repeat(40) };
  assert.match(
    formatDiff(d, to, from),
    /^staging \(bbbbbbb\) compared with production \(aaaaaaa\):\nSERVICE\s+WHAT\s+production\s+staging\n/,
  );
  assert.match(markdownTable(d.services, to, from), /\| api \| env B \| — \| `z` \|/);
});
