import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mask, retryAfterMs, shownUrl } from './cloud-http.js';
import { endpointFrom, findCloud, searchPath, tokenRequest, tokensUrl, type CloudEnv } from './openstack.js';

/** A machine with just these files and variables (no I/O). */
function machine(files: Record<string, string>, env: Record<string, string> = {}): CloudEnv {
  return { env, cwd: '/work/here', home: '/home/ops', read: (f) => files[f] };
}

const CLOUDS = `
clouds:
  prod:
    auth:
      auth_url: https://keystone.example.com:5000/v3
      username: deployer
      project_name: web
      user_domain_name: Default
      project_domain_id: default
    region_name: RegionTwo
    interface: internal
  ci:
    auth_type: v3applicationcredential
    auth:
      auth_url: https://keystone.example.com:5000
      application_credential_id: ac123
      application_credential_secret: s3cret-ac
`;

describe('finding an OpenStack cloud as the SDK does', () => {
  test('the search path: OS_CLIENT_CONFIG_FILE, then ./, ~/.config/openstack, /etc/openstack', () => {
    assert.deepEqual(searchPath('clouds', machine({}, { OS_CLIENT_CONFIG_FILE: '/srv/c.yaml' })), [
      '/srv/c.yaml',
      '/work/here/clouds.yaml',
      '/work/here/clouds.yml',
      '/home/ops/.config/openstack/clouds.yaml',
      '/home/ops/.config/openstack/clouds.yml',
      '/etc/openstack/clouds.yaml',
      '/etc/openstack/clouds.yml',
    ]);
  });

  test('the first clouds.yaml found wins; secure.yaml adds the password', () => {
    const m = machine({
      '/home/ops/.config/openstack/clouds.yaml': CLOUDS,
      '/etc/openstack/clouds.yaml': 'clouds: { prod: { auth: { auth_url: http://wrong } } }',
      '/etc/openstack/secure.yaml': 'clouds: { prod: { auth: { password: pa55-word } } }',
    });
    assert.deepEqual(findCloud('prod', m), {
      source: 'cloud "prod" in /home/ops/.config/openstack/clouds.yaml',
      authUrl: 'https://keystone.example.com:5000/v3',
      auth: {
        method: 'password',
        user: { id: undefined, name: 'deployer', domainId: undefined, domainName: 'Default' },
        password: 'pa55-word',
        project: { id: undefined, name: 'web', domainId: 'default', domainName: undefined },
      },
      region: 'RegionTwo',
      interface: 'internal',
      cacert: undefined,
      verify: true,
    });
  });

  test('OS_CLOUD names the cloud when the setting does not; application credentials', () => {
    const m = machine({ '/work/here/clouds.yml': CLOUDS }, { OS_CLOUD: 'ci' });
    const c = findCloud(undefined, m);
    assert.ok(!('error' in c));
    assert.deepEqual(c.auth, {
      method: 'application_credential',
      id: 'ac123',
      name: undefined,
      secret: 's3cret-ac',
      user: undefined,
    });
    assert.equal(tokensUrl(c.authUrl), 'https://keystone.example.com:5000/v3/auth/tokens');
  });

  test('without a cloud name, the OS_* variables', () => {
    const c = findCloud(
      undefined,
      machine(
        {},
        {
          OS_AUTH_URL: 'https://k.example.com/identity/v3/',
          OS_USER_ID: 'u-1',
          OS_PASSWORD: 'pw',
          OS_PROJECT_ID: 'p-1',
          OS_INTERFACE: 'publicURL',
          OS_INSECURE: 'true',
        },
      ),
    );
    assert.ok(!('error' in c));
    assert.equal(c.source, 'the OS_* variables');
    assert.equal(c.interface, 'public');
    assert.equal(c.verify, false);
    assert.equal(tokensUrl(c.authUrl), 'https://k.example.com/identity/v3/auth/tokens');
    assert.deepEqual(tokenRequest(c.auth), {
      auth: {
        identity: { methods: ['password'], password: { user: { id: 'u-1', password: 'pw' } } },
        scope: { project: { id: 'p-1' } },
      },
    });
  });

  test('what is missing is said, with where it was looked for, and no secret', () => {
    const err = (name: string | undefined, m: CloudEnv) => {
      const c = findCloud(name, m);
      return 'error' in c ? c.error : 'no error';
    };
    assert.match(
      err('prod', machine({})),
      /^OpenStack cloud "prod": no clouds.yaml found \(looked in \/work\/here\/clouds.yaml, /,
    );
    assert.equal(
      err('dev', machine({ '/etc/openstack/clouds.yaml': CLOUDS })),
      'OpenStack cloud "dev" is not in /etc/openstack/clouds.yaml (clouds there: prod, ci)',
    );
    assert.equal(
      err('prod', machine({ '/etc/openstack/clouds.yaml': CLOUDS })),
      'cloud "prod" in /etc/openstack/clouds.yaml: password is missing',
    );
    assert.match(
      err(undefined, machine({})),
      /no OpenStack cloud: set load_balancer.cloud .* or OS_CLOUD, or the OS_\* variables/,
    );
    assert.equal(
      err(undefined, machine({}, { OS_AUTH_URL: 'http://k', OS_AUTH_TYPE: 'v3token', OS_TOKEN: 't' })),
      'the OS_* variables: auth_type "v3token" is not supported (use password or v3applicationcredential)',
    );
    assert.match(
      err('x', machine({ '/etc/openstack/clouds.yaml': 'clouds: [' })),
      /^\/etc\/openstack\/clouds.yaml: not valid YAML/,
    );
  });

  test('token requests: password with names and domains, application credential by name', () => {
    assert.deepEqual(
      tokenRequest({
        method: 'password',
        user: { name: 'deployer', domainName: 'Default' },
        password: 'pw',
        project: { name: 'web', domainId: 'default' },
      }),
      {
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { name: 'deployer', domain: { name: 'Default' }, password: 'pw' } },
          },
          scope: { project: { name: 'web', domain: { id: 'default' } } },
        },
      },
    );
    assert.deepEqual(
      tokenRequest({
        method: 'application_credential',
        name: 'berth',
        secret: 's',
        user: { name: 'u', domainId: 'd' },
      }),
      {
        auth: {
          identity: {
            methods: ['application_credential'],
            application_credential: { name: 'berth', secret: 's', user: { name: 'u', domain: { id: 'd' } } },
          },
        },
      },
    );
  });

  test('the endpoint comes from the catalog: interface public by default, region when several', () => {
    const catalog = [
      { type: 'compute', endpoints: [] },
      {
        type: 'load-balancer',
        endpoints: [
          { interface: 'public', region: 'One', url: 'https://lb1.example.com/' },
          { interface: 'internal', region: 'One', url: 'http://10.0.0.5:9876' },
          { interface: 'public', region: 'Two', url: 'https://lb2.example.com' },
        ],
      },
    ];
    assert.equal(endpointFrom(catalog, 'load-balancer', undefined, 'One'), 'https://lb1.example.com');
    assert.equal(endpointFrom(catalog, 'load-balancer', 'internal', undefined), 'http://10.0.0.5:9876');
    assert.deepEqual(endpointFrom(catalog, 'load-balancer', undefined, undefined), {
      error: 'load-balancer has public endpoints in several regions (One, Two); set load_balancer.region',
    });
    assert.deepEqual(endpointFrom(catalog, 'network', undefined, undefined), {
      error: "no network service in the token's catalog (services: compute, load-balancer)",
    });
  });
});

describe('cloud HTTP helpers', () => {
  test('secrets are masked; URLs are shown without credentials or query', () => {
    assert.equal(
      mask('user x password hunter22 token abcd1234', ['hunter22', 'abcd1234', '']),
      'user x password *** token ***',
    );
    assert.equal(
      shownUrl('https://u:p@k.example.com:5000/v3/auth/tokens?nocatalog'),
      'https://k.example.com:5000/v3/auth/tokens',
    );
  });

  test('Retry-After in seconds or as a date', () => {
    assert.equal(retryAfterMs('3'), 3_000);
    assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4_000), 6_000);
    assert.equal(retryAfterMs(undefined), undefined);
    assert.equal(retryAfterMs('soon'), undefined);
  });
});
