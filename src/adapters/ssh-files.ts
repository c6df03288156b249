/**
 * A host's files and network as seen from the host, over its SSH connection: the same contracts
 * as this machine's (fs.ts HostFiles, secrets' PrivateFiles), carried out by small POSIX shell
 * scripts in the host's long-lived shells (ssh-shell.ts). Data travels base64-encoded, so any
 * byte survives; file names and paths are arguments, never pasted into script text.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { ExternalError } from '../model/errors.js';
import type { PrivateFiles, PrivateRead } from '../secrets/private.js';
import type { HostNetwork } from './engine.js';
import type { HostFiles } from './fs.js';
import type { SshConnection } from './ssh.js';
import type { RemoteShells, ShellResult } from './ssh-shell.js';

const fail = (conn: SshConnection, what: string, r: ShellResult) =>
  new ExternalError(
    'ssh',
    `${conn.description}: ${what}: ${r.stderr.trim().split('\n').slice(-2).join('; ') || `exit ${r.code}`}`,
  );

/** Lines of base64 back to bytes (base64 wraps its output; line breaks are ignored). */
const unbase64 = (lines: string[]) => Buffer.from(lines.join(''), 'base64');

// The scripts use shell built-ins wherever they can: on a busy host every program started costs.
// Env files are text without NUL (the loader refuses NUL), so the shell's `read` carries them.

// Each file: "=N" (none), "=E why", or "=F", its lines each after "|", then "=" (it ended with a
// newline) or "=-" (it did not).
const READ_MANY = `d=$1; shift
for n do
  f=$d/$n
  if [ -f "$f" ]; then
    if [ -r "$f" ]; then
      echo =F
      l=
      while IFS= read -r l; do printf '|%s\\n' "$l"; l=; done < "$f"
      if [ -n "$l" ]; then printf '|%s\\n=-\\n' "$l"; else echo =; fi
    else echo '=E permission denied'; fi
  elif [ -e "$f" ]; then echo '=E not a regular file'
  else echo =N
  fi
done`;

// Plain files (not links, not dot files), each name followed by NUL, at most $2.
const LIST = `d=$1; max=$2; i=0
[ -d "$d" ] || exit 0
[ -r "$d" ] && [ -x "$d" ] || { echo "cannot list $d: permission denied" >&2; exit 2; }
for f in "$d"/*; do
  [ -f "$f" ] && [ ! -L "$f" ] || continue
  printf '%s\\000' "\${f##*/}"
  i=$((i + 1)); [ "$i" -ge "$max" ] && break
done
exit 0`;

// Write $4 through a temporary file in the same folder (0600 by umask), flushed, then renamed
// over the target.
const WRITE = `f=$1; m=$2; t=$3
d=\${f%/*}; [ -n "$d" ] || d=/
[ -d "$d" ] || mkdir -p -- "$d" || exit 1
umask 077
printf %s "$4" > "$t" || { rm -f -- "$t"; exit 1; }
[ "$m" = 600 ] || chmod "$m" "$t" || { rm -f -- "$t"; exit 1; }
{ sync -- "$t" 2>/dev/null || sync; } && mv -f -- "$t" "$f" || { rm -f -- "$t"; exit 1; }`;

// Write $3 over the file's own bytes (1<> opens it without truncating: same inode, so a
// container that bind-mounts it sees the change), then cut what is left of the old content.
const REWRITE = `f=$1; m=$2; n=$4
[ -f "$f" ] || { echo "$f: no such file" >&2; exit 1; }
printf %s "$3" 1<> "$f" || exit 1
truncate -s "$n" -- "$f" && chmod "$m" "$f" && { sync -- "$f" 2>/dev/null || sync; }`;

const REMOVE = `rm -f -- "$1"`;

// One open of the file; stat of what was opened (/dev/fd/3), checks, then its bytes.
const READ_PRIVATE = `f=$1; max=$2
if [ ! -e "$f" ]; then
  p=$(dirname -- "$f"); while [ ! -e "$p" ]; do p=$(dirname -- "$p"); done
  if [ -d "$p" ]; then echo =missing; else echo =not-dir; fi; exit 0
fi
[ -f "$f" ] || { echo =not-file; exit 0; }
[ -r "$f" ] || { echo =denied; exit 0; }
{
  s=$(stat -L -c '%f %s' /dev/fd/3) || { echo '=error read stat'; exit 0; }
  set -- $s
  m=$((0x$1)); size=$2
  [ $((m & 61440)) -eq 32768 ] || { echo =not-file; exit 0; }
  [ $((m & 63)) -eq 0 ] || { echo "=open-mode $((m & 511))"; exit 0; }
  [ "$size" -le "$max" ] || { echo =too-large; exit 0; }
  echo =ok; base64 <&3
} 3< "$f"`;

// A TCP connection tried from the host: bash's /dev/tcp (without its rc files, which bash
// reads under sshd otherwise), else nc.
const TCP_CHECK = `h=$1; p=$2; t=$3
if command -v bash >/dev/null 2>&1; then
  set -- bash --norc --noprofile -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$h" "$p"
  if command -v timeout >/dev/null 2>&1; then exec timeout "$t" "$@"; fi
  exec "$@"
fi
if command -v nc >/dev/null 2>&1; then exec nc -z -w "$t" "$h" "$p"; fi
echo 'neither bash nor nc on the host to try a tcp connection' >&2; exit 127`;

/** The host's env files, over SSH: HostFiles as fs.ts defines it. */
export function sshHostFiles(conn: SshConnection, shells: RemoteShells): HostFiles {
  return {
    async readMany(dir, names) {
      const out: Record<string, string | null> = {};
      if (!names.length) return out;
      const r = await shells.run(READ_MANY, [dir, ...names]);
      if (r.code !== 0) throw fail(conn, `cannot read files in ${dir}`, r);
      const lines = r.stdout.split('\n');
      let i = 0;
      for (const name of names) {
        const head = lines[i++];
        if (head === '=N') out[name] = null;
        else if (head?.startsWith('=E')) {
          throw new ExternalError(
            'ssh',
            `${conn.description}: cannot read ${path.posix.join(dir, name)}: ${head.slice(3)}`,
          );
        } else if (head === '=F') {
          const body: string[] = [];
          while (i < lines.length && lines[i]!.startsWith('|')) body.push(lines[i++]!.slice(1));
          const end = lines[i++];
          if (end !== '=' && end !== '=-')
            throw new ExternalError('ssh', `${conn.description}: unexpected answer reading ${dir}`);
          out[name] = end === '=' ? body.map((l) => `${l}\n`).join('') : body.join('\n');
        } else {
          throw new ExternalError('ssh', `${conn.description}: unexpected answer reading ${dir}`);
        }
      }
      return out;
    },

    async list(dir, limit) {
      const r = await shells.run(LIST, [dir, String(limit)]);
      if (r.code !== 0) throw fail(conn, `cannot list ${dir}`, r);
      return r.stdout.split('\0').filter(Boolean).sort();
    },

    async writeAtomic(file, content, mode = 0o600) {
      if (content.includes('\0'))
        throw new ExternalError('ssh', `cannot write ${file}: the content holds a NUL byte`);
      const dir = path.posix.dirname(file);
      const tmp = path.posix.join(dir, `.${path.posix.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
      const r = await shells.run(WRITE, [file, mode.toString(8), tmp, content]);
      if (r.code !== 0) throw fail(conn, `cannot write ${file}`, r);
    },

    async rewrite(file, content, mode) {
      if (content.includes('\0'))
        throw new ExternalError('ssh', `cannot rewrite ${file}: the content holds a NUL byte`);
      const size = String(Buffer.byteLength(content, 'utf8'));
      const r = await shells.run(REWRITE, [file, mode.toString(8), content, size]);
      if (r.code !== 0) throw fail(conn, `cannot rewrite ${file}`, r);
    },

    async remove(file) {
      const r = await shells.run(REMOVE, [file]);
      if (r.code !== 0) throw fail(conn, `cannot remove ${file}`, r);
    },
  };
}

/** The host's secrets and age identity, over SSH, with the same checks as on this machine. */
export function sshPrivateFiles(conn: SshConnection, shells: RemoteShells, host: string): PrivateFiles {
  return {
    host,
    async read(file, maxSize): Promise<PrivateRead> {
      const r = await shells.run(READ_PRIVATE, [file, String(maxSize)]);
      const [head = '', ...rest] = r.stdout.split('\n');
      const [kind, a, b] = head.slice(1).split(' ');
      switch (kind) {
        case 'ok':
          return { kind: 'ok', bytes: unbase64(rest) };
        case 'missing':
        case 'not-dir':
        case 'not-file':
        case 'denied':
        case 'too-large':
          return { kind };
        case 'open-mode':
          return { kind: 'open-mode', mode: Number(a) };
        case 'error':
          return { kind: 'error', stage: a === 'open' ? 'open' : 'read', code: b ?? 'error' };
        default:
          throw fail(conn, `cannot read ${file}`, r);
      }
    },
  };
}

/** The host's network, for health checks that must test what the host sees. */
export function sshNetwork(conn: SshConnection, shells: RemoteShells): HostNetwork {
  return {
    from: conn.endpoint.name,
    socketTo: (host, port) => conn.forward(`${host.includes(':') ? `[${host}]` : host}:${port}`),
    async tcpCheck(host, port, timeoutMs) {
      const secs = Math.max(1, Math.ceil(timeoutMs / 1000));
      const r = await shells.run(TCP_CHECK, [host, String(port), String(secs)], {
        timeoutMs: timeoutMs + 10_000,
      });
      if (r.code === 0)
        return { ok: true, output: `connected to ${host}:${port} from ${conn.endpoint.name}` };
      const said = r.stderr.trim().split('\n').slice(-1)[0];
      return {
        ok: false,
        output: `no connection to ${host}:${port} from ${conn.endpoint.name}${said ? `: ${said}` : r.code === 124 ? ': timed out' : ''}`,
      };
    },
  };
}
