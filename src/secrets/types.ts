import { ExternalError } from '../model/errors.js';

/**
 * Where secret values come from. Implementations: the host's secrets folder (files.ts), values
 * encrypted in the repo with age (age.ts), and an ordered chain of both (chain.ts).
 */
export interface SecretSource {
  /**
   * The value of the named secret, or undefined when this source does not have it. Throws a
   * SecretError when it has the secret but cannot give it (wrong mode, failed decryption, ...).
   * A value is one line: never empty, no line break, no NUL.
   */
  get(name: string): Promise<string | undefined>;
}

/**
 * A secret exists but cannot be used. The message names the secret and the file, never the
 * value; no `cause` is attached where a library's message could quote secret material.
 */
export class SecretError extends ExternalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('secrets', message, options);
    this.name = 'SecretError';
  }
}

/** A secret's name becomes a file name (`<secrets_dir>/NAME`, `secrets/NAME.age`). */
export const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** Why `name` is not a valid secret name, or undefined when it is: the one rule, for every caller. */
export function secretNameProblem(name: string): string | undefined {
  if (SECRET_NAME.test(name)) return undefined;
  return (
    `invalid secret name ${JSON.stringify(name)}: use letters, digits, "_", "." and "-", ` +
    'starting with a letter or digit, at most 63 characters'
  );
}

/** Throws unless `name` is a valid secret name; never lets a name climb out of a folder. */
export function checkSecretName(name: string): void {
  const problem = secretNameProblem(name);
  if (problem) throw new SecretError(problem);
}

/** Larger than any password, token or connection string; protects memory from a stray file. */
export const MAX_SECRET_SIZE = 64 * 1024;

/**
 * The value a secret's bytes stand for: UTF-8, one trailing newline stripped (editors and
 * `echo` add one), and then one non-empty line, because it goes into an env file.
 * `where` names the file for messages; the value itself is never quoted.
 */
export function secretValue(name: string, where: string, bytes: Uint8Array): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new SecretError(`secret ${name}: ${where} is not UTF-8 text`);
  }
  if (text.endsWith('\n')) text = text.slice(0, -1);
  if (text === '') throw new SecretError(`secret ${name}: ${where} is empty`);
  if (/[\n\r]/.test(text)) {
    throw new SecretError(
      `secret ${name}: ${where} holds more than one line; a secret is one line (one trailing newline is allowed)`,
    );
  }
  if (text.includes('\0')) throw new SecretError(`secret ${name}: ${where} contains a NUL character`);
  return text;
}
