import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MAIN } from './cli.js';
import { GiveUp, alive, freePort, killOnExit, stopPid, waitUntil } from '../world/proc.js';
import type { AgentStatusV1 } from '../../src/agent/status.js';

/** A `berth agent` process started by a test, with its API's address and its log lines. */
export interface AgentProcess {
  pid: number;
  url: string;
  /** Every log line so far, parsed (the agent logs JSON when not on a terminal). */
  logs(): Array<Record<string, unknown>>;
  /** Everything it printed, raw (stdout and stderr). */
  output(): string;
  status(): Promise<AgentStatusV1>;
  get(p: string): Promise<{ status: number; body: string }>;
  post(
    p: string,
    body: string | Uint8Array,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: string }>;
  /** Wait (bounded) until the status satisfies `check`; the last status is in the error. */
  waitStatus(what: string, check: (s: AgentStatusV1) => boolean, timeoutMs?: number): Promise<AgentStatusV1>;
  /** SIGTERM and wait for the exit, by PID; the exit code, or the signal. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A git repository for the agent to follow: a bare remote and a work tree that pushes to it. */
export interface AgentRemote {
  /** file:// URL of the bare repository. */
  url: string;
  bare: string;
  work: string;
  /** Write (string) or delete (null) files, commit, push to `branch`; the new commit. */
  push(files: Record<string, string | null>, message?: string, extraArgs?: string[]): string;
  git(...args: string[]): string;
  remove(): void;
}

export function createRemote(files: Record<string, string>, branch = 'main'): AgentRemote {
  const root = mkdtempSync(path.join(tmpdir(), 'berth-remote-'));
  const bare = path.join(root, 'state.git');
  const work = path.join(root, 'work');
  const run = (cwd: string, ...args: string[]) =>
    execFileSync(
      'git',
      [
        '-c',
        'user.name=berth-test',
        '-c',
        'user.email=test@berth.invalid',
        '-c',
        'commit.gpgsign=false',
        ...args,
      ],
      { cwd, encoding: 'utf8' },
    ).trim();
  run(root, 'init', '-q', '--bare', '-b', branch, bare);
  run(root, 'init', '-q', '-b', branch, work);
  run(work, 'remote', 'add', 'origin', bare);
  const remote: AgentRemote = {
    url: `file://${bare}`,
    bare,
    work,
    git: (...args) => run(work, ...args),
    push(changes, message = 'change', extraArgs = []) {
      for (const [file, content] of Object.entries(changes)) {
        const full = path.join(work, file);
        if (content === null) rmSync(full, { force: true });
        else {
          execFileSync('mkdir', ['-p', path.dirname(full)]);
          execFileSync('tee', [full], { input: content, stdio: ['pipe', 'ignore', 'inherit'] });
        }
      }
      run(work, 'add', '-A');
      run(work, 'commit', '-q', '--allow-empty', ...extraArgs, '-m', message);
      run(work, 'push', '-q', 'origin', `HEAD:refs/heads/${branch}`);
      return run(work, 'rev-parse', 'HEAD');
    },
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
  remote.push(files, 'initial state');
  return remote;
}

/**
 * Start the built `berth agent` with `args`, on a free loopback port, and wait until its API
 * answers. Stopped by PID (SIGTERM, then SIGKILL) by `stop()`, or when the test process exits.
 */
export async function startAgentProcess(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<AgentProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    process.execPath,
    [MAIN, 'agent', '--listen', `127.0.0.1:${port}`, ...args],
    {
      env: { ...process.env, NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const pid = child.pid!;
  const forget = killOnExit(pid);
  let out = '';
  // BERTH_TEST_AGENT_LOG=FILE keeps every agent's output, for a person debugging a test.
  const keep = process.env.BERTH_TEST_AGENT_LOG;
  const take = (d: Buffer) => {
    out += d.toString();
    if (keep) appendFileSync(keep, d);
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      forget();
      resolve({ code, signal });
    }),
  );
  const request = async (
    method: string,
    p: string,
    body?: string | Uint8Array,
    headers?: Record<string, string>,
  ) => {
    const res = await fetch(`${url}${p}`, { method, body, headers, signal: AbortSignal.timeout(10_000) });
    return { status: res.status, body: await res.text() };
  };
  const status = async () => JSON.parse((await request('GET', '/v1/status')).body) as AgentStatusV1;
  const a: AgentProcess = {
    pid,
    url,
    exited,
    output: () => out,
    logs: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    status,
    get: (p) => request('GET', p),
    post: (p, body, headers) => request('POST', p, body, headers),
    async waitStatus(what, check, timeoutMs = 60_000) {
      let last: AgentStatusV1 | undefined;
      try {
        await waitUntil(
          what,
          async () => {
            if (!alive(pid)) throw new GiveUp('the agent exited');
            last = await status();
            return check(last);
          },
          { timeoutMs, intervalMs: 200 },
        );
      } catch (e) {
        throw new Error(
          `${(e as Error).message}\nlast status: ${JSON.stringify(last, null, 1)}\nlog:\n${out.slice(-6000)}`,
        );
      }
      return last!;
    },
    async stop() {
      await stopPid(pid, 60_000);
      return exited;
    },
  };
  try {
    await waitUntil(
      'the agent API to answer',
      async () => {
        if (!alive(pid)) throw new GiveUp('exited');
        return (await request('GET', '/healthz')).status === 200;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
  } catch {
    await stopPid(pid, 5_000);
    throw new Error(`berth agent did not start:\n${out}`);
  }
  return a;
}
