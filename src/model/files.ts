/**
 * Config files rendered per host and mounted into containers (`files:` in a service): the plain
 * data every layer shares, and the names berth gives them on a host.
 */

/** How a service rereads its config files without a restart. */
export type Reload =
  /** Send this signal to the container (`docker kill --signal`), e.g. SIGHUP. */
  | { signal: string }
  /** Run this command in the container (the engine's exec API); exit 0 means reloaded. */
  | { command: string[] };

/** One `files:` entry of a service. */
export interface ServiceFile {
  /** The template's path in the repo, under `files/`. */
  source: string;
  /** Where the container sees it: an absolute path. */
  target: string;
  /** Permission bits as written; absent: 0644, or 0600 when the file uses a secret. */
  mode?: number;
  /** How the service rereads it; absent: a change recreates the container. */
  reload?: Reload;
  /** The file made for one host; set when the service is rendered for it. */
  rendered?: RenderedFile;
}

/** A file rendered for one host. */
export interface RenderedFile {
  /** The text to write, secrets in clear: only for the file itself. */
  content: string;
  /** The text to show (plan --diff, render): each secret as `<secret:NAME>`. Same as content without secrets. */
  shown: string;
  /** Secrets the content depends on, sorted. */
  secrets: string[];
  /** Permission bits it is written with. */
  mode: number;
  /**
   * What the config hash keeps of the content: `sha256:…`, or for a file that uses a secret a
   * keyed `hmac-sha256:…` under this host's key (set with the secret digests), never the text.
   */
  digest?: string;
  /** Where it is written on the host: `<files_dir>/<service>/<hostFileName(target)>`; set once placed. */
  path?: string;
}

/** The folder on each host under which berth writes services' files, one folder per service. */
export const DEFAULT_FILES_DIR = '/etc/berth/files';
/** Where `source` templates live in the repo; berth reads every file under it. */
export const FILES_SOURCE_DIR = 'files/';
/** The largest rendered file berth writes. */
export const MAX_RENDERED_FILE_BYTES = 1024 * 1024;
/** The longest name a file gets on the host, leaving room for REDACTED_PREFIX under the usual 255. */
export const MAX_HOST_FILE_NAME = 240;

/** Beside a file that holds secrets: the same text with each secret redacted, for `plan --diff`. */
export const REDACTED_PREFIX = '.redacted-';

/** Where the redacted copy of a host file that uses a secret is kept: beside it, a dot file. */
export function redactedPath(hostPath: string): string {
  const cut = hostPath.lastIndexOf('/');
  return `${hostPath.slice(0, cut + 1)}${REDACTED_PREFIX}${hostPath.slice(cut + 1)}`;
}

const KEEP = /[A-Za-z0-9_.:]/;

/**
 * The name of a target's file in its service's folder: systemd's path escaping
 * (`systemd-escape --path`): `/etc/squid/squid.conf` → `etc-squid-squid.conf`, "/" as "-",
 * any other byte outside `A-Z a-z 0-9 _ . :` (and a leading ".") as `\xNN`. One flat folder, so
 * no path component on the host is ever a folder someone else could have made.
 */
export function hostFileName(target: string): string {
  const bytes = Buffer.from(target.replace(/^\/+|\/+$/g, ''), 'utf8');
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const c = String.fromCharCode(bytes[i]!);
    if (c === '/') out += '-';
    else if (bytes[i]! < 0x80 && KEEP.test(c) && !(i === 0 && c === '.')) out += c;
    else out += `\\x${bytes[i]!.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** Permission bits as people write them: `0644`. */
export function modeText(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}

/** How a reload is shown: `SIGHUP`, or the command as one line. */
export function reloadText(r: Reload): string {
  return 'signal' in r
    ? r.signal
    : r.command.map((a) => (/^[\w./:=@%+,-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

/** How a reload reads in the plan: `SIGHUP`, or `exec nginx -s reload`. */
export function reloadLabel(op: { reload: Reload }): string {
  return 'signal' in op.reload ? op.reload.signal : `exec ${reloadText(op.reload)}`;
}
