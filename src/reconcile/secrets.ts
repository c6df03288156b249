import { createHmac } from 'node:crypto';
import type { ServiceSpec } from '../model/service.js';

/**
 * Give each env value that uses a secret a keyed digest (HMAC-SHA256 with this host's own
 * key), the only trace of the value that labels and the record may hold. Without the key a
 * reader cannot test guesses of the secret offline; with a new key every such service is
 * recreated once.
 */
export function withSecretDigests(services: ServiceSpec[], key: Buffer): ServiceSpec[] {
  return services.map((s) => {
    if (!s.secretEnv) return s;
    const secretDigests: Record<string, string> = {};
    for (const k of Object.keys(s.secretEnv)) {
      const mac = createHmac('sha256', key).update(`${s.name}\0${k}\0${s.env[k] ?? ''}`);
      secretDigests[k] = `hmac-sha256:${mac.digest('hex')}`;
    }
    return { ...s, secretDigests };
  });
}
