// @slow: starts real components (test/world); `npm run test:unit` leaves it out.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import Docker from 'dockerode';
import { docker as dockerCli, startWorld, waitUntil, type World } from '../../test/world/index.js';
import { ExternalError } from '../model/errors.js';
import { dockerEngine } from './docker.js';
import type { Engine, PullProgress } from './engine.js';

// Real engine 20.10 + real registry (test/world); each test uses its own image tags and
// container names so they do not depend on each other's order more than stated.
let world: World;
let engine: Engine;
let api: Docker;

before(async () => {
  world = await startWorld();
  engine = dockerEngine({ host: world.dockerHost });
  api = new Docker({ socketPath: world.dockerHost.replace('unix://', '') });
});

after(async () => {
  await world?.stop();
});

test('ping answers and endpoint is the DOCKER_HOST string', async () => {
  await engine.ping();
  assert.equal(engine.endpoint, world.dockerHost);
});

test('DOCKER_HOST is honoured when no host is given', async () => {
  const saved = process.env.DOCKER_HOST;
  process.env.DOCKER_HOST = world.dockerHost;
  try {
    const e = dockerEngine();
    assert.equal(e.endpoint, world.dockerHost);
    await e.ping();
  } finally {
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
  }
});

test('an unreachable engine is an ExternalError naming DOCKER_HOST', async () => {
  const e = dockerEngine({ host: 'unix:///tmp/bw-none/x.sock' });
  await assert.rejects(e.listContainers(), (err: unknown) => {
    assert.ok(err instanceof ExternalError);
    assert.match(
      err.message,
      /^docker: cannot reach the Docker engine at unix:\/\/\/tmp\/bw-none\/x\.sock \(DOCKER_HOST\): connect ENOENT/,
    );
    return true;
  });
  const tcp = dockerEngine({ host: 'tcp://127.0.0.1:1' });
  await assert.rejects(
    tcp.ping(),
    /cannot reach the Docker engine at tcp:\/\/127\.0\.0\.1:1 \(DOCKER_HOST\): .*ECONNREFUSED/,
  );
});

test('pull reports progress, and remoteDigest equals the digest the engine pulled', async () => {
  const ref = `${world.registry.address}/demo/pulled:1`;
  await world.publish(ref, { version: 'p1' });
  // Remove it locally so the pull really downloads.
  await dockerCli(world.dockerHost, ['rmi', ref]);
  const events: PullProgress[] = [];
  await engine.pull(ref, (p) => events.push(p));
  assert.ok(
    events.some((e) => /Pull complete|Download complete/.test(e.status)),
    JSON.stringify(events),
  );
  assert.ok(events.some((e) => e.total !== undefined && e.current !== undefined));
  const remote = await engine.remoteDigest(ref);
  assert.match(remote, /^sha256:[0-9a-f]{64}$/);
  const images = await engine.listImages();
  const img = images.find((i) => i.repoTags.includes(ref));
  assert.ok(img, 'pulled image is listed');
  assert.ok(
    img.repoDigests.includes(`${world.registry.address}/demo/pulled@${remote}`),
    img.repoDigests.join(),
  );
});

test('re-pushing a tag with new content changes remoteDigest', async () => {
  const ref = `${world.registry.address}/demo/moving:1`;
  await world.publish(ref, { version: 'm1' });
  const first = await engine.remoteDigest(ref);
  await world.repush(ref, 'm2');
  const second = await engine.remoteDigest(ref);
  assert.notEqual(second, first);
  assert.equal(await engine.remoteDigest(ref), second, 'stable while the tag stays');
});

test('pull of a missing tag rejects clearly', async () => {
  const ref = `${world.registry.address}/demo/web:missing`;
  await assert.rejects(engine.pull(ref), (err: unknown) => {
    assert.ok(err instanceof ExternalError);
    assert.match(err.message, /^docker: pull 127\.0\.0\.1:\d+\/demo\/web:missing: .*manifest unknown/);
    assert.doesNotMatch(err.message, /HTTP code/);
    return true;
  });
  await assert.rejects(engine.remoteDigest(ref), /manifest unknown/);
});

test('an error inside the pull stream (a lost layer) rejects the pull', async () => {
  const ref = `${world.registry.address}/demo/broken:1`;
  await world.publish(ref, { version: 'broken' });
  await dockerCli(world.dockerHost, ['rmi', ref]);
  // The manifest still resolves; the layer blobs are gone, so the engine fails mid-stream.
  const blobs = path.join(world.registry.dir, 'data/docker/registry/v2/blobs/sha256');
  const manifestDigest = (await engine.remoteDigest(ref)).slice('sha256:'.length);
  const config = JSON.parse(
    await (
      await fetch(`http://${world.registry.address}/v2/demo/broken/manifests/1`, {
        headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      })
    ).text(),
  ) as { config: { digest: string }; layers: { digest: string }[] };
  const keep = new Set([manifestDigest, config.config.digest.slice(7)]);
  for (const layer of config.layers) {
    const hex = layer.digest.slice(7);
    if (keep.has(hex)) continue;
    rmSync(path.join(blobs, hex.slice(0, 2), hex), { recursive: true, force: true });
  }
  assert.ok(readdirSync(blobs).length > 0);
  await assert.rejects(engine.pull(ref), (err: unknown) => {
    assert.ok(err instanceof ExternalError);
    // Engine 20.10 answers 200 and reports this as a message inside the progress stream.
    assert.match(err.message, /^docker: pull .*demo\/broken:1: unknown blob/);
    return true;
  });
});

test('create honours every ContainerCreateSpec field; start, inspect, stop, rename, remove', async () => {
  const bindDir = mkdtempSync('/tmp/bw-bind-');
  try {
    const id = await engine.create({
      name: 'spec-all',
      image: world.images.web1,
      env: ['PORT=24501', 'BAR=baz'],
      cmd: ['-c', 'echo "$BAR" > /data/out; exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /www'],
      entrypoint: ['/bin/busybox', 'sh'],
      user: '0:0',
      workingDir: '/www',
      labels: { 'berth.service': 'spec-all', 'berth.config-hash': 'abc' },
      stopSignal: 'SIGINT',
      stopTimeout: 3,
      networkMode: 'host',
      restartPolicy: { name: 'on-failure', maximumRetryCount: 4 },
      init: true,
      logDriver: 'json-file',
      logOptions: { 'max-size': '1m', tag: 'someorg' },
      binds: [`${bindDir}:/data:rw`],
    });
    const raw = await api.getContainer(id).inspect();
    assert.equal(raw.Name, '/spec-all');
    assert.deepEqual(
      raw.Config.Env.filter((e) => e.startsWith('PORT=') || e.startsWith('BAR=')),
      ['PORT=24501', 'BAR=baz'],
    );
    assert.deepEqual(raw.Config.Entrypoint, ['/bin/busybox', 'sh']);
    assert.equal(raw.Config.Cmd?.[0], '-c');
    assert.equal(raw.Config.User, '0:0');
    assert.equal(raw.Config.WorkingDir, '/www');
    assert.equal(raw.Config.Labels['berth.config-hash'], 'abc');
    // @types/dockerode omits these two from the inspect type; the engine returns them.
    const stop = raw.Config as unknown as { StopSignal?: string; StopTimeout?: number };
    assert.equal(stop.StopSignal, 'SIGINT');
    assert.equal(stop.StopTimeout, 3);
    assert.equal(raw.HostConfig.NetworkMode, 'host');
    assert.deepEqual(raw.HostConfig.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 4 });
    assert.equal(raw.HostConfig.Init, true);
    assert.deepEqual(raw.HostConfig.LogConfig, {
      Type: 'json-file',
      Config: { 'max-size': '1m', tag: 'someorg' },
    });
    assert.deepEqual(raw.HostConfig.Binds, [`${bindDir}:/data:rw`]);

    await engine.start(id);
    await engine.start(id); // already running is fine
    await waitUntil('the container to serve', async () => {
      const r = await fetch('http://127.0.0.1:24501/version');
      return r.ok && (await r.text()).trim() === '1';
    });
    assert.equal(
      readFileSync(path.join(bindDir, 'out'), 'utf8'),
      'baz\n',
      'bind mount and env reach the container',
    );
    const running = await engine.inspect(id);
    assert.equal(running.running, true);
    assert.equal(running.status, 'running');
    assert.equal(running.name, 'spec-all');
    assert.equal(running.labels['berth.service'], 'spec-all');
    assert.ok(running.env.includes('BAR=baz'));
    assert.equal(running.health, undefined, 'no HEALTHCHECK, no health');
    assert.match(running.imageId, /^sha256:/);

    const listed = (await engine.listContainers()).find((c) => c.id === id);
    assert.deepEqual(listed && { ...listed, imageId: undefined }, {
      id,
      name: 'spec-all',
      state: 'running',
      image: world.images.web1,
      imageId: undefined,
      labels: { 'berth.service': 'spec-all', 'berth.config-hash': 'abc', 'test.version': '1' },
    });

    await engine.stop(id, 2);
    await engine.stop(id, 2); // already stopped is fine
    const stopped = await engine.inspect(id);
    assert.equal(stopped.running, false);
    assert.equal(stopped.status, 'exited');

    await engine.rename(id, 'spec-all-old');
    assert.equal((await engine.inspect(id)).name, 'spec-all-old');
    await assert.rejects(engine.rename('no-such-container', 'x2'), /No such container/);

    await engine.remove(id);
    await engine.remove(id); // already gone is fine
    await assert.rejects(
      engine.inspect(id),
      (err: unknown) => err instanceof ExternalError && /No such/.test(err.message),
    );
  } finally {
    rmSync(bindDir, { recursive: true, force: true });
  }
});

test('minimal spec: engine defaults apply, remove force stops a running container', async () => {
  const id = await engine.create({
    name: 'minimal',
    image: world.images.web2,
    env: ['PORT=24502'],
    labels: {},
    networkMode: 'host',
    restartPolicy: { name: 'always' },
    init: false,
    logOptions: {},
    binds: [],
  });
  const raw = await api.getContainer(id).inspect();
  assert.deepEqual(raw.HostConfig.RestartPolicy, { Name: 'always', MaximumRetryCount: 0 });
  assert.equal(raw.HostConfig.Init, false);
  assert.equal(raw.HostConfig.LogConfig?.Type, 'json-file');
  await engine.start(id);
  await assert.rejects(engine.remove(id), /running/);
  await engine.remove(id, { force: true });
  assert.equal(
    (await engine.listContainers()).some((c) => c.id === id),
    false,
  );
});

test('health comes from the image HEALTHCHECK', async () => {
  const ref = `${world.registry.address}/demo/sick:1`;
  await world.publish(ref, { version: 'sick', behaviour: 'unhealthy' });
  const id = await engine.create({
    name: 'sick',
    image: ref,
    env: ['PORT=24503'],
    labels: {},
    networkMode: 'host',
    restartPolicy: { name: 'no' },
    init: true,
    logOptions: {},
    binds: [],
  });
  await engine.start(id);
  assert.equal((await engine.inspect(id)).health, 'starting');
  await waitUntil(
    'the container to turn unhealthy',
    async () => (await engine.inspect(id)).health === 'unhealthy',
    {
      timeoutMs: 20_000,
    },
  );
  await engine.remove(id, { force: true });
});

test('a container made from a tag that later moved still lists its image reference', async () => {
  const ref = `${world.registry.address}/demo/drift:1`;
  await world.publish(ref, { version: 'd1' });
  const id = await engine.create({
    name: 'drift',
    image: ref,
    env: [],
    labels: {},
    networkMode: 'none',
    restartPolicy: { name: 'no' },
    init: false,
    logOptions: {},
    binds: [],
  });
  await world.repush(ref, 'd2');
  // The engine's list now shows the old image ID instead of the ref; we answer with Config.Image.
  const rawList = await api.listContainers({ all: true });
  assert.match(rawList.find((c) => c.Id === id)!.Image, /^sha256:/);
  const listed = (await engine.listContainers()).find((c) => c.id === id);
  assert.equal(listed?.image, ref);
  await engine.remove(id, { force: true });
});

test('registry credentials reach the engine: a registry that asks for them answers to berth', async () => {
  // A private registry as the engine meets it: a small HTTP server on loopback, started and
  // stopped here, that wants Basic credentials (the registry API's 401 + WWW-Authenticate) and
  // forwards every authorised request unchanged to the test registry.
  const user = 'ci-bot';
  let password = 'pa:ss/w0rd+';
  // Make the credentials' JSON a length the base64 of which needs padding: the engine decodes
  // X-Registry-Auth with padding, and without it would silently pull as nobody.
  const json = () => JSON.stringify({ username: user, password, serveraddress: '127.0.0.1:65535' });
  while (json().length % 3 === 0) password += 'x';
  const expected = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  const [upHost, upPort] = world.registry.address.split(':') as [string, string];
  let authorised = 0;
  const server = http.createServer((req, res) => {
    if (req.headers.authorization !== expected) {
      res.writeHead(401, {
        'WWW-Authenticate': 'Basic realm="berth-test"',
        'Docker-Distribution-API-Version': 'registry/2.0',
      });
      res.end();
      return;
    }
    authorised++;
    const upstream = http.request(
      { host: upHost, port: Number(upPort), method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const config = mkdtempSync('/tmp/bw-auth-');
  try {
    const ref = `${address}/demo/web:1`;
    writeFileSync(
      path.join(config, 'config.json'),
      JSON.stringify({
        auths: { [address]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } },
      }),
    );
    const withCredentials = dockerEngine({ host: world.dockerHost, auth: { dockerConfigDir: config } });
    assert.match(await withCredentials.remoteDigest(ref), /^sha256:[0-9a-f]{64}$/);
    await withCredentials.pull(ref);
    assert.ok((await withCredentials.listImages()).some((i) => i.repoTags.includes(ref)));
    assert.ok(authorised > 0);

    const anonymous = dockerEngine({
      host: world.dockerHost,
      auth: { dockerConfigDir: path.join(config, 'none') },
    });
    await assert.rejects(anonymous.remoteDigest(`${address}/demo/web:2`), (err: unknown) => {
      assert.ok(err instanceof ExternalError);
      assert.match(
        err.message,
        /^docker: ask the registry for 127\.0\.0\.1:\d+\/demo\/web:2: .*no basic auth credentials/,
      );
      assert.doesNotMatch(err.message, new RegExp(password.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
      return true;
    });
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    rmSync(config, { recursive: true, force: true });
  }
});
