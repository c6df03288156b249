import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { FIELD_LIST } from '../../config/fields.js';
import type { ServiceSpec } from '../../model/service.js';
import { serviceAsFile } from '../service-file.js';

const full: ServiceSpec = {
  name: 'api',
  image: '127.0.0.1:5000/team/api:1.4.2',
  gitCommit: '3f2a1c9d',
  buildNumber: '123',
  env: { BAR: 'baz', DATABASE_URL: 'postgres://app:hunter2@db/app' },
  secretEnv: { DATABASE_URL: ['db_password'] },
  redactedEnv: { DATABASE_URL: 'postgres://app:<secret:db_password>@db/app' },
  hosts: ['app_server'],
  command: ['/bin/api', '--port', '8080'],
  entrypoint: ['/bin/tini', '--'],
  user: '1000',
  workingDir: '/app',
  volumes: ['/srv/api:/data:ro'],
  labels: { team: 'payments' },
  stopSignal: 'SIGTERM',
  stopTimeout: 30,
  networkMode: 'host',
  restartPolicy: 'on-failure:3',
  init: true,
  logDriver: 'syslog',
  logOptions: { tag: '{{.Name}}' },
  pull: 'always',
  healthcheck: {
    http: 'http://127.0.0.1:8080/health',
    interval: 500,
    timeout: 2000,
    retries: 3,
    startPeriod: 10_000,
  },
  drain: true,
  file: 'services/api.yaml',
};

test('render prints every field under its file key, in the order of a service file, secrets redacted', () => {
  for (const [key, f] of FIELD_LIST) assert.notEqual(full[f.spec], undefined, `set ${f.spec} (${key}) here`);
  assert.equal(
    stringify(serviceAsFile(full)),
    [
      'image: 127.0.0.1:5000/team/api:1.4.2',
      'gitCommit: 3f2a1c9d',
      'buildNumber: "123"',
      'env_vars:',
      '  BAR: baz',
      '  DATABASE_URL: postgres://app:<secret:db_password>@db/app',
      'hosts:',
      '  - app_server',
      'command:',
      '  - /bin/api',
      '  - --port',
      '  - "8080"',
      'entrypoint:',
      '  - /bin/tini',
      '  - --',
      'user: "1000"',
      'working_dir: /app',
      'volumes:',
      '  - /srv/api:/data:ro',
      'labels:',
      '  team: payments',
      'stop_signal: SIGTERM',
      'stop_timeout: 30',
      'network_mode: host',
      'restart_policy: on-failure:3',
      'init: true',
      'log_driver: syslog',
      'log_options:',
      '  tag: "{{.Name}}"',
      'pull: always',
      'healthcheck:',
      '  http: http://127.0.0.1:8080/health',
      '  interval: 500ms',
      '  timeout: 2000ms',
      '  retries: 3',
      '  start_period: 10000ms',
      'drain: true',
      '',
    ].join('\n'),
  );
});

test('render leaves out what a service does not set', () => {
  const { user: _user, healthcheck: _hc, ...rest } = full;
  const shown = JSON.parse(JSON.stringify(serviceAsFile(rest))) as Record<string, unknown>;
  assert.equal('user' in shown, false);
  assert.equal('healthcheck' in shown, false);
});
