import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import type { World } from '../world/index.js';
import { freePort } from '../world/proc.js';
import { startWorldFixture, type WorldFixture } from '../support/fixture.js';
import { createRemote, startAgentProcess, type AgentRemote } from '../support/agent.js';
import { startFakePlatform, type FakePlatform } from '../support/platforms.js';

/**
 * Issue 10, trust and reporting back, against a real `berth agent` process, a real engine and
 * registry (test/world) and a real git remote (a bare repository over file://):
 * - `--verify-signatures` with SSH and GPG keys this test generates (ssh-keygen, gpg) and git's
 *   own verification: a commit signed by an allowed key is applied; unsigned, or signed by a key
 *   that is not allowed, is refused and the status says why.
 * - Commit statuses and notifications. GitHub cannot run here: the statuses go to
 *   test/support/platforms.ts, a local HTTP server on 127.0.0.1 implementing the documented
 *   endpoint berth calls (`POST /repos/{owner}/{repo}/statuses/{sha}`); the notification goes to
 *   a local HTTP server below that answers as a Slack-compatible incoming webhook does (a JSON
 *   POST with a `text` field, answered 200). GitLab and Gitea statuses are covered by the
 *   platform contract (src/gitops/platforms/*.test.ts).
 */
describe('berth agent: signatures, commit statuses and notifications', () => {
  let fx: WorldFixture;
  let world: World;
  let work: string;
  let docker: Docker;
  const svc = (image: string, port: number, extra = '') =>
    `image: ${image}\npull: missing\nenv_vars:\n  PORT: '${port}'\n  BIND: 127.0.0.62\n${extra}`;
  const flags = (remote: AgentRemote, store: string) => [
    '--repo',
    remote.url,
    '--env',
    'main',
    '--store',
    `${work}/${store}.db`,
    '--cache-dir',
    `${work}/cache-${store}`,
    '--interval',
    '1s',
  ];

  before(async () => {
    fx = await startWorldFixture('berth-agent-trust-');
    ({ world, docker, work } = fx);
  });

  after(() => fx?.stop());

  describe('--verify-signatures with SSH keys', () => {
    let remote: AgentRemote;
    const key = (name: string) => {
      const file = path.join(work, name);
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file]);
      return file;
    };
    const signWith = (file: string) => {
      remote.git('config', 'gpg.format', 'ssh');
      remote.git('config', 'user.signingkey', file);
    };
    let allowed: string;
    let unknown: string;
    let signers: string;

    before(() => {
      allowed = key('allowed');
      unknown = key('unknown');
      signers = path.join(work, 'allowed_signers');
      writeFileSync(signers, `test@berth.invalid namespaces="git" ${readFileSync(`${allowed}.pub`, 'utf8')}`);
      remote = createRemote({
        'berth.yaml': `env_dir: ${work}/env-sig\n`,
        'services/signed.yaml': svc(world.images.web1, 24941),
      });
    });
    after(() => remote?.remove());

    test('unsigned: refused; signed by an allowed key: applied; signed by another key: refused', async () => {
      const agent = await startAgentProcess(
        [...flags(remote, 'sig'), '--verify-signatures', '--allowed-signers', signers],
        { DOCKER_HOST: world.dockerHost },
      );
      try {
        const unsigned = remote.git('rev-parse', 'HEAD');
        let s = await agent.waitStatus('the unsigned commit refused', (s) => s.refused?.commit === unsigned);
        assert.match(s.refused!.reason, /signature check failed: the commit is not signed/);
        assert.equal(s.applied.commit, null);
        assert.equal(s.agent.verifySignatures, true);
        assert.deepEqual(await docker.listContainers({ all: true }), [], 'nothing was created');

        signWith(allowed);
        const good = remote.push(
          { 'services/signed.yaml': svc(world.images.web1, 24941, "  V: 'good'\n") },
          'signed',
          ['-S'],
        );
        s = await agent.waitStatus('the signed commit applied', (s) => s.applied.commit === good);
        assert.equal(s.refused, null);
        assert.ok((await docker.getContainer('signed').inspect()).Config.Env.includes('V=good'));
        assert.ok(agent.logs().some((l) => l.msg === 'signature verified' && l.commit === good));

        signWith(unknown);
        const bad = remote.push(
          { 'services/signed.yaml': svc(world.images.web2, 24941, "  V: 'bad'\n") },
          'other key',
          ['-S'],
        );
        s = await agent.waitStatus('the commit by another key refused', (s) => s.refused?.commit === bad);
        assert.match(s.refused!.reason, /not an allowed signer/);
        assert.equal(s.applied.commit, good, 'the host stays on the last good commit');
        const c = await docker.getContainer('signed').inspect();
        assert.equal(c.Config.Image, world.images.web1);
        assert.ok(c.Config.Env.includes('V=good'));
        assert.equal(c.State.Running, true);
        // Refused once, not tried again every turn.
        const refusals = agent
          .logs()
          .filter((l) => l.msg === 'commit refused: it is not applied' && l.commit === bad);
        await new Promise((r) => setTimeout(r, 3_000));
        assert.equal(
          agent.logs().filter((l) => l.msg === 'commit refused: it is not applied' && l.commit === bad)
            .length,
          refusals.length,
        );
      } finally {
        await agent.stop();
      }
    });
  });

  describe('--verify-signatures with GPG keys', () => {
    let remote: AgentRemote;
    const homes: string[] = [];
    /** A gpg home with one signing key, and a gpg.program that uses it (for git commit -S). */
    const gpgSigner = (name: string) => {
      const home = mkdtempSync(path.join(work, `gpg-${name}-`));
      execFileSync(
        'gpg',
        [
          '--batch',
          '--homedir',
          home,
          '--passphrase',
          '',
          '--quick-gen-key',
          `${name} <${name}@berth.invalid>`,
          'ed25519',
          'sign',
          'never',
        ],
        { stdio: 'ignore' },
      );
      homes.push(home);
      const program = path.join(home, 'gpg.sh');
      writeFileSync(program, `#!/bin/sh\nexec gpg --homedir '${home}' "$@"\n`, { mode: 0o755 });
      return { home, program, email: `${name}@berth.invalid` };
    };
    const signWith = (k: { program: string; email: string }) => {
      remote.git('config', 'gpg.format', 'openpgp');
      remote.git('config', 'gpg.program', k.program);
      remote.git('config', 'user.signingkey', k.email);
    };

    before(() => {
      remote = createRemote({
        'berth.yaml': `env_dir: ${work}/env-gpg\n`,
        'services/gpgsigned.yaml': svc(world.images.web1, 24943),
      });
    });
    after(() => {
      remote?.remove();
      // Signing started a gpg-agent for each home: stop them.
      for (const home of homes) execFileSync('gpgconf', ['--homedir', home, '--kill', 'all']);
    });

    test('signed by an allowed GPG key: applied; unsigned or by another key: refused', async () => {
      const allowed = gpgSigner('allowed');
      const other = gpgSigner('other');
      const keys = path.join(work, 'allowed.asc');
      writeFileSync(
        keys,
        execFileSync('gpg', ['--homedir', allowed.home, '--armor', '--export', allowed.email]),
      );
      const agent = await startAgentProcess(
        [...flags(remote, 'gpg'), '--verify-signatures', '--gpg-keys', keys],
        { DOCKER_HOST: world.dockerHost },
      );
      try {
        const unsigned = remote.git('rev-parse', 'HEAD');
        let s = await agent.waitStatus('the unsigned commit refused', (s) => s.refused?.commit === unsigned);
        assert.match(s.refused!.reason, /not signed/);

        signWith(allowed);
        const good = remote.push(
          { 'services/gpgsigned.yaml': svc(world.images.web1, 24943, "  G: 'good'\n") },
          'signed',
          ['-S'],
        );
        s = await agent.waitStatus('the GPG-signed commit applied', (s) => s.applied.commit === good);
        assert.ok((await docker.getContainer('gpgsigned').inspect()).Config.Env.includes('G=good'));

        signWith(other);
        const bad = remote.push(
          { 'services/gpgsigned.yaml': svc(world.images.web1, 24943, "  G: 'bad'\n") },
          'other key',
          ['-S'],
        );
        s = await agent.waitStatus('the commit by another GPG key refused', (s) => s.refused?.commit === bad);
        assert.match(s.refused!.reason, /not allowed/);
        assert.equal(s.applied.commit, good);
        assert.ok((await docker.getContainer('gpgsigned').inspect()).Config.Env.includes('G=good'));
      } finally {
        await agent.stop();
      }
    });
  });

  describe('commit statuses and notifications', () => {
    let remote: AgentRemote;
    let github: FakePlatform;
    let chat: http.Server;
    let chatUrl: string;
    const received: Array<{ text: string; berth: Record<string, unknown> }> = [];

    before(async () => {
      github = await startFakePlatform('github');
      chat = http.createServer((req, res) => {
        let raw = '';
        req.on('data', (d: Buffer) => (raw += d.toString()));
        req.on('end', () => {
          received.push(JSON.parse(raw) as (typeof received)[number]);
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end('ok');
        });
      });
      await new Promise<void>((r) => chat.listen(0, '127.0.0.1', r));
      chatUrl = `http://127.0.0.1:${(chat.address() as AddressInfo).port}/services/T000/B000/secret-path`;
      const dead = await freePort();
      remote = createRemote({
        'berth.yaml': [
          `env_dir: ${work}/env-report`,
          'agent:',
          '  commit_status:',
          '    platform: github',
          `    project: ${github.project}`,
          `    api_url: ${github.apiUrl}`,
          '    target_url: https://dash.invalid/berth',
          '  notify:',
          '    - url_env: CHAT_WEBHOOK_URL',
          // Nothing listens here: a failing notifier must not fail the deploy.
          `    - url: http://127.0.0.1:${dead}/hook`,
          '',
        ].join('\n'),
        'services/reported.yaml': svc(world.images.web1, 24942),
      });
    });
    after(async () => {
      remote?.remove();
      await github?.stop();
      await new Promise<void>((r) => (chat ? chat.close(() => r()) : r()));
    });

    test('each new commit gets pending then success or failure on the platform, and a chat message', async () => {
      const agent = await startAgentProcess(flags(remote, 'report'), {
        DOCKER_HOST: world.dockerHost,
        ...github.env(),
        CHAT_WEBHOOK_URL: chatUrl,
      });
      try {
        const first = remote.git('rev-parse', 'HEAD');
        await agent.waitStatus('the first commit applied', (s) => s.applied.commit === first);
        const context = `berth/${hostname()}`;
        const statusesOf = (commit: string) =>
          github.statuses.filter((x) => x.sha === commit).map((x) => [x.state, x.context]);
        assert.deepEqual(statusesOf(first), [
          ['pending', context],
          ['success', context],
        ]);
        const done = github.statuses.find((x) => x.sha === first && x.state === 'success')!;
        assert.match(done.description, /^applied: /);
        assert.equal(done.targetUrl, 'https://dash.invalid/berth');
        assert.deepEqual(github.unexpected, []);
        const msg = received.find((m) => m.berth.commit === first);
        assert.ok(msg, 'the chat server got a message');
        assert.match(msg.text, new RegExp(`^berth/${hostname()} main ${first.slice(0, 12)} applied: `));
        assert.equal(msg.berth.state, 'success');

        const missing = `${world.registry.address}/demo/web:nowhere`;
        const bad = remote.push(
          { 'services/reported.yaml': svc(missing, 24942) },
          'an image that does not exist',
        );
        await agent.waitStatus('the failing commit seen', (s) => s.failure?.commit === bad);
        await agent.waitStatus('reported', () =>
          github.statuses.some((x) => x.sha === bad && x.state === 'failure'),
        );
        assert.deepEqual(statusesOf(bad), [
          ['pending', context],
          ['failure', context],
        ]);
        const failed = github.statuses.find((x) => x.sha === bad && x.state === 'failure')!;
        assert.ok(failed.description.length > 0 && failed.description.length <= 140, failed.description);
        assert.ok(!failed.description.includes('\n'));
        const chatFail = received.find((m) => m.berth.commit === bad);
        assert.ok(chatFail, 'the failure reached the chat server');
        assert.match(chatFail.text, /FAILED/);

        // The dead notifier failed every time, and nothing else did.
        const m = (await agent.get('/metrics')).body;
        assert.match(
          m,
          /berth_agent_notifications_total\{notifier="webhook 127\.0\.0\.1:\d+",result="failed"\} [1-9]/,
        );
        assert.match(m, /berth_agent_notifications_total\{notifier="commit-status github",result="sent"\} 4/);
        assert.ok(agent.logs().some((l) => l.msg === 'a notifier failed; the deploy is not affected'));
        // Secrets: the token and the secret chat URL are in no log line.
        assert.ok(!agent.output().includes(github.token), 'the token is never logged');
        assert.ok(!agent.output().includes('secret-path'), 'the secret URL is never logged');
      } finally {
        await agent.stop();
      }
    });
  });
});
