import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, UsageError } from '../model/errors.js';
import type { Inventory } from '../model/service.js';
import { fleetHosts } from './targets.js';

const inv = (over: Partial<Inventory> = {}): Inventory => ({
  hosts: [
    { name: 'app-1', address: '10.0.1.11', groups: ['app', 'eu'], vars: {} },
    {
      name: 'app-2',
      address: '10.0.1.12',
      groups: ['app'],
      vars: { ssh: { port: 2202 }, docker_socket: '/run/user/1000/docker.sock' },
    },
    { name: 'db-1', address: '10.0.2.5', groups: ['db'], vars: {} },
  ],
  groups: {
    app: { vars: { ssh: { user: 'deploy', port: 2200 } } },
    eu: { vars: { ssh: { bastion: 'jump@eu.example.com:2222' } } },
    db: { vars: { docker_socket: '/var/run/db-docker.sock' } },
  },
  ssh: {
    user: 'admin',
    identity_file: '~/.ssh/fleet',
    known_hosts: '/etc/berth/known_hosts',
    connect_timeout: '3s',
  },
  ...over,
});

test('ssh settings: inventory-wide, then each group, then the host, key by key; the engine socket likewise', () => {
  const hosts = fleetHosts(inv());
  assert.deepEqual(
    hosts.map((h) => [h.name, h.address, h.ssh, h.dockerSocket]),
    [
      [
        'app-1',
        '10.0.1.11',
        {
          user: 'deploy',
          port: 2200,
          identityFile: '~/.ssh/fleet',
          knownHosts: '/etc/berth/known_hosts',
          bastion: 'jump@eu.example.com:2222',
          connectTimeoutMs: 3000,
        },
        '/var/run/docker.sock',
      ],
      [
        'app-2',
        '10.0.1.12',
        {
          user: 'deploy',
          port: 2202,
          identityFile: '~/.ssh/fleet',
          knownHosts: '/etc/berth/known_hosts',
          connectTimeoutMs: 3000,
        },
        '/run/user/1000/docker.sock',
      ],
      [
        'db-1',
        '10.0.2.5',
        {
          user: 'admin',
          identityFile: '~/.ssh/fleet',
          knownHosts: '/etc/berth/known_hosts',
          connectTimeoutMs: 3000,
        },
        '/var/run/db-docker.sock',
      ],
    ],
  );
});

test('--limit: hosts and groups, in inventory order; a name that is neither is an error naming both lists', () => {
  assert.deepEqual(
    fleetHosts(inv(), ['db', 'app-1']).map((h) => h.name),
    ['app-1', 'db-1'],
  );
  assert.throws(
    () => fleetHosts(inv(), ['app-3']),
    (e: Error) =>
      e instanceof UsageError &&
      e.message ===
        '--limit: "app-3" is neither a host nor a group of the inventory (hosts: app-1, app-2, db-1; groups: app, db, eu)',
  );
});

test('bad ssh settings and sockets in vars are errors at their place in inventory.yaml', () => {
  const bad = inv({
    hosts: [
      {
        name: 'app-1',
        address: '10.0.1.11',
        groups: ['app'],
        vars: { ssh: { port: 'twenty-two', users: 'x' } },
      },
      {
        name: 'app-2',
        address: '10.0.1.12',
        groups: ['app'],
        vars: { ssh: 'admin', docker_socket: 'docker.sock' },
      },
    ],
    groups: { app: { vars: { ssh: { host_key_checking: 'no' } } } },
  });
  assert.throws(
    () => fleetHosts(bad),
    (e: Error) => {
      assert.ok(e instanceof ConfigError);
      assert.deepEqual(
        e.issues.map((i) => `${i.file} ${i.path}: ${i.message}`),
        [
          'inventory.yaml groups.app.vars.ssh.host_key_checking: Invalid option: expected one of "strict"|"accept-new"',
          'inventory.yaml hosts.app-1.vars.ssh.port: Invalid input: expected number, received string',
          'inventory.yaml hosts.app-1.vars.ssh.users: Unrecognized key: "users"',
          'inventory.yaml hosts.app-2.vars.ssh: expected a map of ssh settings (user, port, identity_file, ...)',
          'inventory.yaml hosts.app-2.vars.docker_socket: docker_socket must be the absolute path of the engine socket on the host',
        ],
      );
      return true;
    },
  );
});
