import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError, ExternalError } from '../../model/errors.js';
import { CommandProvider } from './command.js';
import { drainContract } from './contract.js';
import { validateLoadBalancer } from './registry.js';
import type { DrainTarget, LbState } from './types.js';

/**
 * A load balancer CLI in a few lines of shell, keeping each server's state in a file and its open
 * sessions as a count in another: what a team's own script around their LB's CLI looks like. Its
 * drain waits for sessions to reach 0 or BERTH_DRAIN_TIMEOUT_MS, as the contract asks.
 */
const LB_SCRIPT = `#!/bin/sh
set -eu
[ -d "$BERTH_LB_DIR" ] || { echo "lb: cannot reach $BERTH_LB_DIR" >&2; exit 2; }
s="$BERTH_LB_DIR/$BERTH_LB_BACKEND/$BERTH_LB_SERVER"
[ -f "$s" ] || { echo "lb: no such server $BERTH_LB_BACKEND/$BERTH_LB_SERVER" >&2; exit 3; }
case "$1" in
  status) cat "$s" ;;
  undrain) echo ready > "$s" ;;
  drain)
    want="\${BERTH_STATE:-maint}"
    if [ "$want" = maint ] && [ "$(cat "$s")" = maint ]; then exit 0; fi
    echo drain > "$s"
    [ "$want" = drain ] && exit 0
    waited=0
    while [ "$(cat "$s.sessions" 2>/dev/null || echo 0)" -gt 0 ] && [ "$waited" -lt "$BERTH_DRAIN_TIMEOUT_MS" ]; do
      sleep 0.05; waited=$((waited + 50))
    done
    echo maint > "$s" ;;
esac
`;

let dir: string;
const serverFile = () => path.join(dir, 'app', 'web-1');
before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'berth-cmd-lb-'));
  writeFileSync(path.join(dir, 'lb'), LB_SCRIPT);
  chmodSync(path.join(dir, 'lb'), 0o755);
  mkdirSync(path.join(dir, 'app'));
  writeFileSync(serverFile(), 'ready\n');
});
after(() => rmSync(dir, { recursive: true, force: true }));

const provider = new CommandProvider();
const target = (settings: Record<string, unknown> = {}, host = 'web-1'): DrainTarget => ({
  host,
  address: '127.0.0.2',
  settings: {
    dir,
    cli: path.join(dir, 'lb'),
    backend: 'app',
    server: host,
    drain_command: '"$BERTH_LB_CLI" drain',
    undrain_command: '"$BERTH_LB_CLI" undrain',
    status_command: '"$BERTH_LB_CLI" status',
    ...settings,
  },
});

drainContract(provider, () => ({
  target: () => target(),
  observe: async () => readFileSync(serverFile(), 'utf8').trim() as LbState,
  set: async (state) => writeFileSync(serverFile(), `${state}\n`),
  async hold() {
    writeFileSync(`${serverFile()}.sessions`, '1\n');
    let release!: () => void;
    const done = new Promise<number>((r) => (release = () => r(200)));
    return {
      release: () => {
        rmSync(`${serverFile()}.sessions`, { force: true });
        release();
      },
      done,
    };
  },
  reaches: async () => readFileSync(serverFile(), 'utf8').trim() === 'ready',
  broken: () => [
    {
      what: 'wrong server',
      target: target({ server: 'web-9' }),
      mentions: ['no such server app/web-9', 'exited with 3'],
    },
    { what: 'wrong backend', target: target({ backend: 'api' }), mentions: ['no such server api/web-1'] },
    { what: 'unreachable', target: target({ dir: `${dir}/gone` }), mentions: [`cannot reach ${dir}/gone`] },
  ],
}));

describe('command provider', () => {
  test('host values arrive as environment variables, never as shell text', async () => {
    const out = path.join(dir, 'env-out');
    const evil = `x$(touch ${dir}/pwned);touch ${dir}/pwned2 \`touch ${dir}/pwned3\``;
    const t = target(
      {
        drain_command: `printf '%s\\n' "$BERTH_HOST" "$BERTH_ADDRESS" "$BERTH_LB_SERVER" "$BERTH_LB_WEIGHT" "$BERTH_DRAIN_TIMEOUT_MS" "$BERTH_STATE" > ${out}`,
        server: evil,
        weight: 10,
      },
      evil,
    );
    await provider.drain(t, { timeoutMs: 1_234 });
    assert.deepEqual(readFileSync(out, 'utf8').split('\n'), [
      evil,
      '127.0.0.2',
      evil,
      '10',
      '1234',
      'maint',
      '',
    ]);
    for (const f of ['pwned', 'pwned2', 'pwned3']) assert.equal(existsSync(path.join(dir, f)), false, f);
  });

  test('a failing command is an ExternalError with its stderr tail, without its environment', async () => {
    const t = target({
      undrain_command: 'echo "$BERTH_LB_TOKEN" >/dev/null; seq 1 500 >&2; echo "lb said no" >&2; exit 7',
      token: 'hunter2-secret',
    });
    await assert.rejects(provider.undrain(t), (e: unknown) => {
      assert.ok(e instanceof ExternalError);
      assert.match(e.message, /^load balancer command: undrain_command for web-1 exited with 7: …/);
      assert.match(e.message, /500\nlb said no$/);
      assert.ok(e.message.length < 800, 'stderr is cut to its tail');
      assert.doesNotMatch(e.message, /hunter2/);
      return true;
    });
  });

  test('a command that hangs is killed with its children at the timeout', async () => {
    const pidFile = path.join(dir, 'child.pid');
    const t = target({ undrain_command: `sleep 30 & echo $! > ${pidFile}; wait`, command_timeout: '300ms' });
    const started = performance.now();
    await assert.rejects(provider.undrain(t), /undrain_command for web-1 timed out after 300 ms/);
    const ms = performance.now() - started;
    assert.ok(ms >= 290 && ms < 10_000, `${Math.round(ms)} ms`);
    const child = Number(readFileSync(pidFile, 'utf8'));
    await new Promise((r) => setTimeout(r, 100));
    // Gone, or a zombie waiting for whoever adopted it to reap it.
    const stat = existsSync(`/proc/${child}/stat`) ? readFileSync(`/proc/${child}/stat`, 'utf8') : ') Z';
    assert.equal(
      stat.slice(stat.lastIndexOf(')') + 2)[0],
      'Z',
      'the backgrounded sleep outlived the timeout',
    );
  });

  test('drain may run for its timeout plus command_timeout', async () => {
    // The sleep outlasts command_timeout alone but not the drain timeout added to it; the
    // drain timeout is generous so that a busy machine's slow shell start cannot cross it.
    const t = target({ drain_command: 'sleep 0.4', command_timeout: '300ms' });
    await provider.drain(t, { timeoutMs: 5_000 });
    await assert.rejects(provider.drain(t, { timeoutMs: 0 }), /timed out after 300 ms/);
  });

  test('status: no status_command is unknown; anything but ready|drain|maint is an error', async () => {
    assert.equal(await provider.status(target({ status_command: undefined })), 'unknown');
    assert.equal(await provider.status(target({ status_command: 'echo " MAINT "' })), 'maint');
    await assert.rejects(
      provider.status(target({ status_command: 'echo up' })),
      /status_command for web-1 printed "up", expected ready, drain or maint/,
    );
  });

  test('invalid rendered settings are a ConfigError naming the setting and the host', async () => {
    await assert.rejects(provider.undrain(target({ undrain_command: '' })), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(
        e.message,
        /berth\.yaml load_balancer\.undrain_command: expected a shell command .*\(for host web-1\)/,
      );
      return true;
    });
  });

  test('validate: required commands, no templates in commands, setting names that make env names', () => {
    const issues = (block: Record<string, unknown>) =>
      validateLoadBalancer({ provider: 'command', ...block }).map((i) => `${i.path}: ${i.message}`);
    assert.deepEqual(
      issues({
        drain_command: 'lb drain "$BERTH_HOST"',
        undrain_command: 'lb up',
        pool: '{{ host.vars.pool }}',
      }),
      [],
    );
    assert.deepEqual(
      issues({
        drain_command: 'lb drain {{ host.name }}',
        'bad-key': 1,
        drain_timeout: 'soon',
        opts: { a: 1 },
      }),
      [
        'load_balancer.drain_command: use $BERTH_HOST, $BERTH_ADDRESS or $BERTH_LB_<SETTING> in commands, not {{ }}',
        'load_balancer.undrain_command: required by the command provider',
        'load_balancer.bad-key: setting names are letters, digits and _ (each becomes BERTH_LB_<NAME>)',
        'load_balancer.opts: expected a string, number or boolean',
        'load_balancer.drain_timeout: invalid duration "soon": use a number with a unit, e.g. 500ms, 5s, 1m, 1m30s',
      ],
    );
    assert.deepEqual(issues({ drain_command: 'a', undrain_command: 'b', pool: 'x', POOL: 'y' }), [
      'load_balancer.POOL: both this and load_balancer.pool would be BERTH_LB_POOL',
    ]);
  });
});
