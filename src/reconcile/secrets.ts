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
    if (!usesSecret(s)) return s;
    const out = { ...s };
    if (s.secretEnv) {
      const secretDigests: Record<string, string> = {};
      for (const k of Object.keys(s.secretEnv)) {
        const mac = createHmac('sha256', key).update(`${s.name}\0${k}\0${s.env[k] ?? ''}`);
        secretDigests[k] = `hmac-sha256:${mac.digest('hex')}`;
      }
      out.secretDigests = secretDigests;
    }
    // A rendered file that uses a secret: the same keyed digest stands for its content.
    if (s.files?.some((f) => f.rendered?.secrets.length)) {
      out.files = s.files.map((f) => {
        if (!f.rendered?.secrets.length) return f;
        const mac = createHmac('sha256', key).update(`${s.name}\0file\0${f.target}\0${f.rendered.content}`);
        return { ...f, rendered: { ...f.rendered, digest: `hmac-sha256:${mac.digest('hex')}` } };
      });
    }
    return out;
  });
}

/** Whether any value of the service, env or a rendered file, uses a secret. */
export function usesSecret(s: ServiceSpec): boolean {
  return s.secretEnv !== undefined || (s.files?.some((f) => (f.rendered?.secrets.length ?? 0) > 0) ?? false);
}
