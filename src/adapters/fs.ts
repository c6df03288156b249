import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ExternalError } from '../model/errors.js';

/** The files berth writes on a host. Env files hold secrets later, so everything is 0600. */
export interface HostFiles {
  /** Content of each named file in dir, or null where it does not exist. */
  readMany(dir: string, names: string[]): Promise<Record<string, string | null>>;
  /** Names of the plain files in dir (none when dir does not exist), at most `limit`. */
  list(dir: string, limit: number): Promise<string[]>;
  /** Replace a file in one step: readers see the old content or the new, never half. */
  writeAtomic(file: string, content: string, mode?: number): Promise<void>;
  /**
   * Rewrite an existing file in place, keeping its inode: a container that bind-mounts the file
   * sees the new content (after a rename it would keep reading the old inode). Readers may see
   * a mix while it is written, so the container is told to reread it only afterwards.
   */
  rewrite(file: string, content: string, mode: number): Promise<void>;
  remove(file: string): Promise<void>;
}

export const hostFiles: HostFiles = {
  async readMany(dir, names) {
    const out: Record<string, string | null> = {};
    await Promise.all(
      names.map(async (n) => {
        try {
          out[n] = await fsp.readFile(path.join(dir, n), 'utf8');
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') out[n] = null;
          else throw new ExternalError('fs', `cannot read ${path.join(dir, n)}: ${(e as Error).message}`);
        }
      }),
    );
    return out;
  },

  async list(dir, limit) {
    try {
      const names: string[] = [];
      for await (const e of await fsp.opendir(dir)) {
        if (e.isFile() && !e.name.startsWith('.')) names.push(e.name);
        if (names.length >= limit) break;
      }
      return names.sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new ExternalError('fs', `cannot list ${dir}: ${(e as Error).message}`, { cause: e });
    }
  },

  async writeAtomic(file, content, mode = 0o600) {
    const dir = path.dirname(file);
    const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
      const fh = await fsp.open(tmp, 'wx', mode);
      try {
        await fh.writeFile(content);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fsp.chmod(tmp, mode);
      await fsp.rename(tmp, file);
    } catch (e) {
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw new ExternalError('fs', `cannot write ${file}: ${(e as Error).message}`, { cause: e });
    }
  },

  async rewrite(file, content, mode) {
    try {
      const fh = await fsp.open(file, 'r+');
      try {
        const data = Buffer.from(content, 'utf8');
        // Write over the old bytes, then cut what is left of them: the file is never empty.
        await fh.write(data, 0, data.length, 0);
        await fh.truncate(data.length);
        await fh.chmod(mode);
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (e) {
      throw new ExternalError('fs', `cannot rewrite ${file}: ${(e as Error).message}`, { cause: e });
    }
  },

  async remove(file) {
    try {
      await fsp.rm(file, { force: true });
    } catch (e) {
      throw new ExternalError('fs', `cannot remove ${file}: ${(e as Error).message}`, { cause: e });
    }
  },
};
