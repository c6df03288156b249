/**
 * A few long-lived POSIX shells on a host, over its SSH connection, for file work (env files,
 * secrets) and checks that must run on the host.
 *
 * Why not one `ssh host command` per file: sshd runs every command through the user's login
 * shell, whose start-up files (~/.bashrc under sshd) can take seconds on a real host. A shell
 * kept open pays that once per run. Each request is a small script sent on the shell's stdin
 * with its arguments quoted in; its stdout comes back, its stderr and exit status after a marker
 * line that carries a random token, so no output can be taken for the end of another. Scripts
 * never read stdin (it is the request stream): data to write travels in a here-document.
 */
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { quote } from 'shell-quote';
import { ExternalError } from '../model/errors.js';
import type { SshConnection } from './ssh.js';

/** What one script run answered. */
export interface ShellResult {
  code: number;
  stdout: string;
  /** At most the first 2000 bytes of what the script wrote to stderr. */
  stderr: string;
}

/** How long a fresh shell may take to start (the login shell's start-up files run first). */
const READY_MS = 60_000;
/** Default bound on one request. */
const REQUEST_MS = 60_000;
/**
 * Shells per host: a second one lets a slow check (a tcp health check) and file work overlap;
 * more would only pay the login shell's start-up again.
 */
const MAX_SHELLS = 2;

interface Shell {
  child: ChildProcess;
  busy: boolean;
  dead: boolean;
  /** Output not yet claimed by a request. */
  buffer: string;
  onData?: () => void;
  onEnd?: () => void;
}

/** The shells of one host. */
export class RemoteShells {
  private readonly shells: Shell[] = [];
  private starting = 0;
  private readonly waiting: Array<{ take: (s: Shell) => void; fail: (e: unknown) => void }> = [];

  constructor(private readonly conn: SshConnection) {}

  /**
   * Run `script` with positional parameters `args` ($1, $2, ...) in a subshell of an idle shell.
   * @throws ExternalError when the host does not answer in time or the connection is lost.
   */
  async run(script: string, args: string[] = [], opts: { timeoutMs?: number } = {}): Promise<ShellResult> {
    const shell = await this.acquire();
    try {
      return await this.request(shell, script, args, opts.timeoutMs ?? REQUEST_MS);
    } finally {
      this.release(shell);
    }
  }

  /**
   * Start the first shell now, in the background, so its start-up overlaps other work; a
   * failure is left for the first request to meet.
   */
  warm(): void {
    if (this.shells.length || this.starting) return;
    this.starting++;
    this.start().then(
      (s) => {
        this.starting--;
        this.shells.push(s);
        this.release(s);
      },
      () => {
        this.starting--;
        for (const w of this.waiting.splice(0)) this.acquire().then(w.take, w.fail);
      },
    );
  }

  private async acquire(): Promise<Shell> {
    const idle = this.shells.find((s) => !s.busy && !s.dead);
    if (idle) {
      idle.busy = true;
      return idle;
    }
    // A new shell only when every one is busy and none is on its way: starting one can take
    // seconds (the login shell's start-up files), longer than waiting for the one that starts.
    if (!this.starting && this.shells.filter((s) => !s.dead).length < MAX_SHELLS) {
      this.starting++;
      try {
        const s = await this.start();
        s.busy = true;
        this.shells.push(s);
        return s;
      } catch (e) {
        // Whoever waited for this shell gets its failure, unless another shell can serve them.
        if (!this.shells.some((x) => !x.dead)) for (const w of this.waiting.splice(0)) w.fail(e);
        throw e;
      } finally {
        this.starting--;
      }
    }
    return new Promise<Shell>((take, fail) => this.waiting.push({ take, fail }));
  }

  private release(shell: Shell): void {
    const i = this.shells.indexOf(shell);
    if (shell.dead && i >= 0) this.shells.splice(i, 1);
    const next = this.waiting.shift();
    if (!next) {
      shell.busy = false;
      return;
    }
    if (!shell.dead) {
      shell.busy = true;
      next.take(shell);
      return;
    }
    // The shell died: the waiter gets a new one, or the error of starting it.
    shell.busy = false;
    this.acquire().then(next.take, next.fail);
  }

  private start(): Promise<Shell> {
    const child = this.conn.spawn('exec /bin/sh');
    const shell: Shell = { child, busy: false, dead: false, buffer: '' };
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      shell.buffer += d;
      shell.onData?.();
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-2_000)));
    child.stdin!.on('error', () => undefined);
    child.once('close', () => {
      shell.dead = true;
      shell.onEnd?.();
    });
    const token = randomBytes(9).toString('hex');
    child.stdin!.write(`export LC_ALL=C; printf '\\n@@berth-ready %s\\n' ${token}\n`);
    return new Promise<Shell>((resolve, reject) => {
      const marker = `\n@@berth-ready ${token}\n`;
      const timer = setTimeout(() => fail(`no shell within ${READY_MS / 1000} s`), READY_MS);
      const fail = (why: string) => {
        clearTimeout(timer);
        shell.onData = shell.onEnd = undefined;
        child.kill('SIGKILL');
        reject(
          new ExternalError(
            'ssh',
            `${this.conn.description}: cannot start a shell on the host: ${why}${err.trim() ? ` (${err.trim().split('\n').slice(-2).join('; ')})` : ''}`,
          ),
        );
      };
      shell.onData = () => {
        const at = shell.buffer.indexOf(marker);
        if (at < 0) return;
        // Whatever the login shell printed before (a banner, rc noise) is dropped.
        shell.buffer = shell.buffer.slice(at + marker.length);
        clearTimeout(timer);
        shell.onData = shell.onEnd = undefined;
        resolve(shell);
      };
      shell.onEnd = () => fail('the session ended');
    });
  }

  private request(shell: Shell, script: string, args: string[], timeoutMs: number): Promise<ShellResult> {
    const token = randomBytes(9).toString('hex');
    const setArgs = args.length ? `set -- ${quote(args)}` : 'set --';
    // The script runs in the subshell of a command substitution, with stdin closed; its stderr
    // is captured into a variable while its stdout goes straight out (fd 3); then the marker
    // line carries its status and stderr (base64, only when there is any: every program started
    // costs on a busy host).
    const text =
      `{ __berth_e=$( { ${setArgs}\n${script}\n} </dev/null 2>&1 1>&3 3>&- ); __berth_s=$?; } 3>&1\n` +
      `if [ -n "$__berth_e" ]; then __berth_e=$(printf %s "$__berth_e" | head -c 2000 | base64 | tr -d '\\n'); fi\n` +
      `printf '\\n@@berth-done %s %s %s\\n' ${token} "$__berth_s" "$__berth_e"\n`;
    return new Promise<ShellResult>((resolve, reject) => {
      const marker = new RegExp(`\\n@@berth-done ${token} (\\d+) ([A-Za-z0-9+/=]*)\\n`);
      const timer = setTimeout(() => {
        done();
        shell.dead = true;
        shell.child.kill('SIGKILL');
        reject(
          new ExternalError(
            'ssh',
            `${this.conn.description}: no answer from the host within ${Math.round(timeoutMs / 1000)} s`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        shell.onData = shell.onEnd = undefined;
      };
      shell.onData = () => {
        const m = marker.exec(shell.buffer);
        if (!m) return;
        const stdout = shell.buffer.slice(0, m.index);
        shell.buffer = shell.buffer.slice(m.index + m[0].length);
        done();
        resolve({ code: Number(m[1]), stdout, stderr: Buffer.from(m[2]!, 'base64').toString('utf8') });
      };
      shell.onEnd = () => {
        done();
        reject(new ExternalError('ssh', `the connection to ${this.conn.description} was lost`));
      };
      shell.child.stdin!.write(text);
    });
  }
}
