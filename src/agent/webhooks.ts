import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Checking that a webhook comes from who holds the shared secret. A webhook only ever makes the
 * agent look at its remote sooner: nothing in its body is read as desired state, so the body is
 * only hashed, never parsed.
 */

/** The webhook forms the agent accepts, by the path they arrive on (`/hooks/<kind>`). */
export const HOOK_KINDS = ['github', 'gitlab', 'gitea', 'generic'] as const;
export type HookKind = (typeof HOOK_KINDS)[number];

export function isHookKind(s: string): s is HookKind {
  return (HOOK_KINDS as readonly string[]).includes(s);
}

/** Where each form carries its proof, and what the proof is. */
const PROOF: Record<HookKind, { header: string; form: 'hmac-prefixed' | 'hmac-hex' | 'token' }> = {
  // GitHub: HMAC-SHA256 of the raw body, `sha256=<hex>`.
  github: { header: 'x-hub-signature-256', form: 'hmac-prefixed' },
  // GitLab sends the secret token itself.
  gitlab: { header: 'x-gitlab-token', form: 'token' },
  // Gitea: HMAC-SHA256 of the raw body, plain hex.
  gitea: { header: 'x-gitea-signature', form: 'hmac-hex' },
  // Anything else that can sign: HMAC-SHA256 of the raw body, `sha256=<hex>`.
  generic: { header: 'x-berth-signature', form: 'hmac-prefixed' },
};

/** The header a form's proof travels in. */
export function proofHeader(kind: HookKind): string {
  return PROOF[kind].header;
}

export type HookCheck = { ok: true } | { ok: false; reason: string };

/**
 * Whether `body` with the proof in `headerValue` was sent by someone holding `secret`. Every
 * comparison takes the same time whatever the value (crypto.timingSafeEqual over digests of
 * equal length), so the proof cannot be guessed byte by byte.
 */
export function checkHook(
  kind: HookKind,
  headerValue: string | undefined,
  body: Uint8Array,
  secret: string,
): HookCheck {
  const { header, form } = PROOF[kind];
  if (headerValue === undefined || headerValue === '') return { ok: false, reason: `no ${header} header` };
  if (form === 'token') {
    // Hash both sides first: equal lengths, and the secret's length is not revealed.
    const a = createHash('sha256').update(headerValue, 'utf8').digest();
    const b = createHash('sha256').update(secret, 'utf8').digest();
    return timingSafeEqual(a, b) ? { ok: true } : { ok: false, reason: `${header} does not match` };
  }
  let hex = headerValue.trim();
  if (form === 'hmac-prefixed') {
    if (!hex.toLowerCase().startsWith('sha256='))
      return { ok: false, reason: `${header} is not sha256=<hex>` };
    hex = hex.slice('sha256='.length);
  }
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) return { ok: false, reason: `${header} is not a SHA-256 hex digest` };
  const expected = createHmac('sha256', secret).update(body).digest();
  const given = Buffer.from(hex, 'hex');
  return timingSafeEqual(expected, given) ? { ok: true } : { ok: false, reason: `${header} does not match` };
}

/** The proof a sender would attach: for tests, the bench and the README's curl example. */
export function signBody(body: Uint8Array | string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}
