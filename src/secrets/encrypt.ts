import { Encrypter, armor } from 'age-encryption';
import { UsageError } from '../model/errors.js';

/**
 * The recipients of an age recipients file (`age -R` format): one `age1...` per line, `#`
 * comments and blank lines skipped. `file` names the file in messages.
 */
export function parseRecipients(text: string, file: string): string[] {
  const out: string[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (!line.startsWith('age1')) {
      throw new UsageError(
        `${file} line ${i + 1}: not an age recipient (expected age1...; ssh and plugin recipients are not supported)`,
      );
    }
    out.push(line);
  }
  return out;
}

/**
 * `value` encrypted for every recipient, as ASCII-armored age (text, one trailing newline), the
 * form `secrets/NAME.age` holds. Recipients are public keys, so their errors may be quoted.
 */
export async function encryptSecret(value: string, recipients: readonly string[]): Promise<string> {
  if (recipients.length === 0)
    throw new UsageError('no recipient: give --recipient age1... or --recipients-file');
  const e = new Encrypter();
  for (const r of new Set(recipients)) {
    if (!r.startsWith('age1'))
      throw new UsageError(`invalid recipient ${JSON.stringify(r)}: expected age1...`);
    try {
      e.addRecipient(r);
    } catch (err) {
      throw new UsageError(`invalid recipient ${JSON.stringify(r)}: ${(err as Error).message}`);
    }
  }
  return armor.encode(await e.encrypt(value));
}
