import path from 'node:path';
import { localPrivateFiles, modeText, type PrivateFiles } from './private.js';
import { checkSecretName, MAX_SECRET_SIZE, SecretError, secretValue, type SecretSource } from './types.js';

/** The host's secrets folder unless berth.yaml's `secrets_dir` says otherwise. */
export const DEFAULT_SECRETS_DIR = '/etc/berth/secrets';

/**
 * Secrets as files on the host: `<dir>/NAME` holds the value of secret NAME. A missing folder or
 * file means the secret is not here. A file others could read is refused, not used: a secret
 * that leaked on the host is worse than a deploy that stops.
 *
 * A symlink is followed and its target checked, so folders kept up to date by links (as
 * credential tools do) work; what is checked is exactly what is read (see private.ts). `files`
 * reads the host's files: this machine's by default, a remote host's over SSH for `deploy`.
 */
export function fileSecrets(
  dir: string = DEFAULT_SECRETS_DIR,
  files: PrivateFiles = localPrivateFiles,
): SecretSource {
  const on = files.host ? ` on ${files.host}` : '';
  return {
    async get(name) {
      checkSecretName(name);
      const file = path.join(dir, name);
      const r = await files.read(file, MAX_SECRET_SIZE);
      switch (r.kind) {
        case 'ok':
          return secretValue(name, file, r.bytes);
        case 'missing':
          return undefined;
        case 'not-dir':
          throw new SecretError(`secrets folder ${dir}${on} is not a folder`);
        case 'denied':
          throw new SecretError(
            `secret ${name}: cannot read ${file}${on}: permission denied (run berth as its owner)`,
          );
        case 'not-file':
          throw new SecretError(
            `secret ${name}: ${file}${on} is not a regular file; put the value in a file and chmod 600 it`,
          );
        case 'open-mode':
          throw new SecretError(
            `secret ${name}: ${file}${on} can be read by group or others (mode ${modeText(r.mode)}); run chmod 600 ${file}`,
          );
        case 'too-large':
          throw new SecretError(`secret ${name}: ${file}${on} is larger than ${MAX_SECRET_SIZE} bytes`);
        case 'error':
          throw new SecretError(
            r.stage === 'open'
              ? `secret ${name}: cannot open ${file}${on}: ${r.code}`
              : `secret ${name}: cannot read ${file}${on}: ${r.code}`,
          );
      }
    },
  };
}
