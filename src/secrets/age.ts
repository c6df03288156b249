import type { Decrypter } from 'age-encryption';
import { localPrivateFiles, modeText, type PrivateFiles } from './private.js';
import { checkSecretName, SecretError, secretValue, type SecretSource } from './types.js';

/** The host's age identity unless `--age-identity` says otherwise. */
export const DEFAULT_AGE_IDENTITY = '/etc/berth/age.key';

/** Where a secret lives in the state repo. */
export function ageSecretPath(name: string): string {
  return `secrets/${name}.age`;
}

const ARMOR_BEGIN = '-----BEGIN AGE ENCRYPTED FILE-----';
const MAX_IDENTITY_FILE_SIZE = 64 * 1024;

/**
 * Secrets encrypted in the state repo: `secrets/NAME.age`, ASCII-armored age (the repo reader
 * gives text), decrypted with the host's identity file. A secret without a file is not here; a
 * file that cannot be decrypted is an error.
 *
 * The identity file is read once, on the first secret that needs it, so a host that uses no
 * encrypted secrets needs no identity. The age library is loaded then too: most repos have no
 * `.age` file, and it is among the largest things berth could load.
 *
 * @param files the state repo's files: repo-relative path → content.
 * @param identityFile an age identity file (`age-keygen -o FILE`): `AGE-SECRET-KEY-1...` lines,
 *   `#` comments and blank lines.
 * @param hostFiles reads the identity file on the host: this machine by default, over SSH for
 *   `deploy` (the identity stays on its host).
 */
export function ageSecrets(
  files: ReadonlyMap<string, string>,
  identityFile: string = DEFAULT_AGE_IDENTITY,
  hostFiles: PrivateFiles = localPrivateFiles,
): SecretSource {
  let decrypter: Promise<Decrypter | { problem: string }> | undefined;
  return {
    async get(name) {
      checkSecretName(name);
      const where = ageSecretPath(name);
      const text = files.get(where);
      if (text === undefined) return undefined;
      const fail = (why: string): SecretError =>
        new SecretError(`cannot decrypt ${where} with identity ${identityFile}: ${why}`);
      decrypter ??= loadIdentity(identityFile, hostFiles);
      const d = await decrypter;
      if ('problem' in d) throw fail(d.problem);
      if (!text.trimStart().startsWith(ARMOR_BEGIN)) {
        throw fail(
          `not an ASCII-armored age file (expected ${ARMOR_BEGIN}; encrypt with berth secret encrypt)`,
        );
      }
      const { armor } = await import('age-encryption');
      let sealed: Uint8Array;
      try {
        sealed = armor.decode(text);
      } catch {
        // The decoder's messages can quote the file's bytes; say what is wrong in our words.
        throw fail('the armor is damaged (not the base64 age wrote)');
      }
      let plain: Uint8Array;
      try {
        plain = await d.decrypt(sealed);
      } catch (e) {
        const msg = e instanceof Error ? e.message : '';
        if (/no identity matched/i.test(msg)) throw fail('no matching key');
        // age's own messages describe the header or a failed check, never the plaintext.
        const detail = /^[\x20-\x7e]{1,200}$/.test(msg) ? ` (${msg})` : '';
        throw fail(`the file is damaged or not an age file${detail}`);
      }
      return secretValue(name, where, plain);
    },
  };
}

/**
 * The identities of an age identity file, or why there are none. Never quotes a line: a line
 * that fails to parse may be a secret key with a typo, and the age library's own parse errors
 * quote the whole key, so they are not passed on.
 */
async function loadIdentity(file: string, files: PrivateFiles): Promise<Decrypter | { problem: string }> {
  const on = files.host ? ` on ${files.host}` : '';
  const r = await files.read(file, MAX_IDENTITY_FILE_SIZE);
  switch (r.kind) {
    case 'ok':
      break;
    case 'missing':
      return {
        problem: `${file} does not exist${on} (make one on the host with age-keygen -o ${file}, or pass --age-identity)`,
      };
    case 'denied':
      return { problem: `cannot read ${file}${on}: permission denied` };
    case 'not-dir':
      return { problem: `cannot open ${file}${on}: ENOTDIR` };
    case 'not-file':
      return { problem: `${file}${on} is not a regular file` };
    case 'open-mode':
      return {
        problem: `${file}${on} can be read by group or others (mode ${modeText(r.mode)}); run chmod 600 ${file}`,
      };
    case 'too-large':
      return { problem: `${file}${on} is too large for an identity file` };
    case 'error':
      return { problem: `cannot ${r.stage} ${file}${on}: ${r.code}` };
  }
  const text = r.bytes.toString('utf8');
  const { Decrypter } = await import('age-encryption');
  const d = new Decrypter();
  let count = 0;
  const lines = text.split('\n');
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (!line.startsWith('AGE-SECRET-KEY-')) {
      return {
        problem: `${file} line ${i + 1} is not an age identity (expected AGE-SECRET-KEY-1...; plugin and ssh keys are not supported)`,
      };
    }
    try {
      d.addIdentity(line);
    } catch {
      return { problem: `${file} line ${i + 1} is not a valid age identity (damaged or mistyped)` };
    }
    count++;
  }
  if (count === 0) return { problem: `${file} holds no identity (AGE-SECRET-KEY-1... line)` };
  return d;
}
