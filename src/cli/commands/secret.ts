import type { Command } from 'commander';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../../model/errors.js';
import { ageSecretPath, DEFAULT_AGE_IDENTITY } from '../../secrets/age.js';
import { MAX_SECRET_SIZE, secretNameProblem, secretValue } from '../../secrets/types.js';

interface EncryptFlags {
  recipient?: string[];
  recipientsFile?: string[];
  repo: string;
}

const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];

const HELP = `
The value is read from stdin, never from the command line, so it stays out of shell history
and ps. One line; a trailing newline is dropped.

  berth secret encrypt --recipient age1... db_password < db_password.txt
  read -rs V && printf '%s' "$V" | berth secret encrypt --recipients-file recipients.txt db_password

Recipients are the public keys of every host that runs a service using the secret (and of
whoever else may decrypt it). On each host, make its identity once, as root:

  age-keygen -o ${DEFAULT_AGE_IDENTITY}      # writes it 0600, prints the public key (age1...)
  age-keygen -y ${DEFAULT_AGE_IDENTITY}      # prints the public key again

berth decrypts secrets/NAME.age with that identity (--age-identity to use another file). A file
in the host's secrets folder (/etc/berth/secrets/NAME, mode 0600) overrides the repo's value.`;

export function registerSecret(program: Command): void {
  const secret = program
    .command('secret')
    .description('secrets in the state repo, encrypted with age for the hosts that use them');

  secret
    .command('encrypt')
    .argument('<name>', 'secret name: letters, digits, "_", "." and "-"')
    .description('encrypt a value from stdin into secrets/NAME.age in the repo')
    .option('--recipient <key>', 'public key (age1...) to encrypt for (repeatable)', collect)
    .option('--recipients-file <file>', 'file of public keys, one per line, # comments (repeatable)', collect)
    .option('--repo <path>', 'local checkout of the state repo', '.')
    .addHelpText('after', HELP)
    .action(async (name: string, flags: EncryptFlags) => {
      // age and the repo reader are loaded only when the command runs.
      const [{ encryptSecret, parseRecipients }, { isLocalRepo }, { hostFiles }] = await Promise.all([
        import('../../secrets/encrypt.js'),
        import('../../source/read.js'),
        import('../../adapters/fs.js'),
      ]);
      const problem = secretNameProblem(name);
      if (problem) throw new UsageError(problem);
      if (!isLocalRepo(flags.repo)) {
        throw new UsageError(
          `--repo ${flags.repo}: give a local checkout; commit and push the file yourself`,
        );
      }
      const st = await fsp.stat(flags.repo).catch(() => undefined);
      if (!st?.isDirectory()) throw new UsageError(`--repo ${flags.repo}: not a folder`);

      const recipients = [...(flags.recipient ?? [])];
      for (const f of flags.recipientsFile ?? []) {
        let text: string;
        try {
          text = await fsp.readFile(f, 'utf8');
        } catch (e) {
          throw new UsageError(
            `cannot read recipients file ${f}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
          );
        }
        recipients.push(...parseRecipients(text, f));
      }
      if (recipients.length === 0) {
        throw new UsageError('no recipient: give --recipient age1... or --recipients-file FILE');
      }
      if (process.stdin.isTTY) {
        throw new UsageError(
          'the value is read from stdin, which is a terminal here: pipe it in (see berth secret encrypt --help)',
        );
      }
      const value = secretValue(name, 'the value on stdin', await readStdin());
      const armored = await encryptSecret(value, recipients);
      const rel = ageSecretPath(name);
      await hostFiles.writeAtomic(path.join(flags.repo, rel), armored, 0o644);
      const n = new Set(recipients).size;
      process.stdout.write(`wrote ${rel} for ${n} recipient(s); commit it\n`);
    });
}

/** All of stdin, refusing more than a secret can be before it fills memory. */
async function readStdin(): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_SECRET_SIZE)
      throw new UsageError(`the value on stdin is larger than ${MAX_SECRET_SIZE} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
