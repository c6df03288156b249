import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ExternalError } from '../model/errors.js';

const KEY_BYTES = 32;

/**
 * This host's key for digests of secret-bearing values (see reconcile/secrets.ts). Made once,
 * 0600, beside the record; two first runs racing both end up with the one that won.
 */
export async function loadOrCreateDigestKey(file: string): Promise<Buffer> {
  try {
    return await readKey(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw wrap(file, e);
  }
  try {
    await fsp.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const fh = await fsp.open(file, 'wx', 0o600);
    try {
      await fh.writeFile(randomBytes(KEY_BYTES));
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw wrap(file, e);
  }
  return readKey(file).catch((e: unknown) => {
    throw wrap(file, e);
  });
}

async function readKey(file: string): Promise<Buffer> {
  const st = await fsp.stat(file);
  if ((st.mode & 0o077) !== 0) {
    throw new ExternalError('secrets', `${file} may be read by others; run chmod 600 ${file}`);
  }
  const key = await fsp.readFile(file);
  if (key.length !== KEY_BYTES) {
    throw new ExternalError(
      'secrets',
      `${file} is not a berth digest key (${key.length} bytes, want ${KEY_BYTES})`,
    );
  }
  return key;
}

function wrap(file: string, e: unknown): Error {
  if (e instanceof ExternalError) return e;
  return new ExternalError('secrets', `cannot use the digest key ${file}: ${(e as Error).message}`, {
    cause: e,
  });
}
