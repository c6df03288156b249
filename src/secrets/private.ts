import { constants, promises as fsp } from 'node:fs';

/**
 * How a private file on a host (a secret, the host's age identity) was found. The checks are
 * the same wherever the host is: here (local.ts below) or over SSH (adapters/ssh-files.ts); the
 * callers turn each answer into their own words.
 */
export type PrivateRead =
  | { kind: 'ok'; bytes: Buffer }
  /** No such file (a missing secret). */
  | { kind: 'missing' }
  /** A part of the path that should be a folder is a file. */
  | { kind: 'not-dir' }
  | { kind: 'denied' }
  /** Not a regular file after following links (a folder, a FIFO, a device). */
  | { kind: 'not-file' }
  /** Group or others may read it; `mode` is its permission bits. */
  | { kind: 'open-mode'; mode: number }
  | { kind: 'too-large' }
  /** Anything else; `stage` says whether opening or reading failed, `code` what the system said. */
  | { kind: 'error'; stage: 'open' | 'read'; code: string };

/** Reads private files of one host, checking them before anything is read. */
export interface PrivateFiles {
  /** Where the files are, for messages (`app-1`); absent for this machine. */
  readonly host?: string;
  read(file: string, maxSize: number): Promise<PrivateRead>;
}

/**
 * Private files on this machine: one open (non-blocking, so a FIFO is refused rather than hung
 * on), then fstat of what was opened, so what is checked is exactly what is read. A symlink is
 * followed and its target checked.
 */
export const localPrivateFiles: PrivateFiles = {
  async read(file, maxSize) {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(file, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return { kind: 'missing' };
      if (code === 'ENOTDIR') return { kind: 'not-dir' };
      if (code === 'EACCES') return { kind: 'denied' };
      return { kind: 'error', stage: 'open', code: code ?? (e as Error).message };
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) return { kind: 'not-file' };
      if (st.mode & 0o077) return { kind: 'open-mode', mode: st.mode & 0o777 };
      if (st.size > maxSize) return { kind: 'too-large' };
      return { kind: 'ok', bytes: await fh.readFile() };
    } catch (e) {
      return { kind: 'error', stage: 'read', code: (e as NodeJS.ErrnoException).code ?? 'error' };
    } finally {
      await fh.close();
    }
  },
};

/** `0644`: a mode as people write it. */
export function modeText(mode: number): string {
  return (mode & 0o777).toString(8).padStart(4, '0');
}
