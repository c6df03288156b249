import type { SecretSource } from './types.js';

/**
 * One source made of several, asked in order: the first that has a secret gives it. An error
 * from an earlier source stops the lookup rather than falling through, so a host file refused
 * for its mode is never silently replaced by another value.
 *
 * berth's order is `[fileSecrets(secretsDir), ageSecrets(...)]`: the host's folder overrides
 * the repo, so in an emergency an operator can change one host's value without a commit.
 */
export function chainSources(sources: readonly SecretSource[]): SecretSource {
  return {
    async get(name) {
      for (const s of sources) {
        const v = await s.get(name);
        if (v !== undefined) return v;
      }
      return undefined;
    },
  };
}
