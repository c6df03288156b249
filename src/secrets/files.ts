import { constants, promises as fsp } from 'node:fs';
import path from 'node:path';
import { checkSecretName, MAX_SECRET_SIZE, SecretError, secretValue, type SecretSource } from './types.js';

/** The host's secrets folder unless berth.yaml's `secrets_dir` says otherwise. */
export const DEFAULT_SECRETS_DIR = '/etc/berth/secrets';

/**
 * Secrets as files on the host: `<dir>/NAME` holds the value of secret NAME. A missing folder or
 * file means the secret is not here. A file others could read is refused, not used: a secret
 * that leaked on the host is worse than a deploy that stops.
 *
 * A symlink is followed and its target checked, so folders kept up to date by links (as
 * credential tools do) work; what is checked is exactly what is read (one open, then fstat).
 */
export function fileSecrets(dir: string = DEFAULT_SECRETS_DIR): SecretSource {
  return {
    async get(name) {
      checkSecretName(name);
      const file = path.join(dir, name);
      let fh: fsp.FileHandle;
      try {
        // O_NONBLOCK: a FIFO in the folder must be refused below, not hang the open.
        fh = await fsp.open(file, constants.O_RDONLY | constants.O_NONBLOCK);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return undefined;
        if (code === 'ENOTDIR') throw new SecretError(`secrets folder ${dir} is not a folder`);
        if (code === 'EACCES') {
          throw new SecretError(
            `secret ${name}: cannot read ${file}: permission denied (run berth as its owner)`,
          );
        }
        throw new SecretError(`secret ${name}: cannot open ${file}: ${code ?? (e as Error).message}`);
      }
      try {
        const st = await fh.stat();
        if (!st.isFile()) {
          throw new SecretError(
            `secret ${name}: ${file} is not a regular file; put the value in a file and chmod 600 it`,
          );
        }
        if (st.mode & 0o077) {
          const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
          throw new SecretError(
            `secret ${name}: ${file} can be read by group or others (mode ${mode}); run chmod 600 ${file}`,
          );
        }
        if (st.size > MAX_SECRET_SIZE) {
          throw new SecretError(`secret ${name}: ${file} is larger than ${MAX_SECRET_SIZE} bytes`);
        }
        return secretValue(name, file, await fh.readFile());
      } catch (e) {
        if (e instanceof SecretError) throw e;
        throw new SecretError(
          `secret ${name}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
        );
      } finally {
        await fh.close();
      }
    },
  };
}
