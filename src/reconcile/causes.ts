import { CONTAINER_FIELDS, type ContainerKey } from '../config/fields.js';
import { parseImageRef } from '../config/image-ref.js';
import { LABEL } from '../model/labels.js';
import type { ObservedContainer } from '../model/observed.js';
import type { ServiceSpec } from '../model/service.js';
import { labelEnv, labelFiles, type ContainerConfig, type LabelFile } from './container.js';

type Explain = (old: Partial<ContainerConfig>, s: ServiceSpec) => string[];

/**
 * Fields whose change is told in more words than `<file key> changed`: which image, which env
 * variable, which secret (named, never shown).
 */
const EXPLAIN: Partial<Record<ContainerKey, Explain>> = {
  image: (old, s) => (old.image !== s.image ? [imageChange(old.image ?? '?', s.image)] : []),
  env: (old, s) => {
    const causes: string[] = [];
    const oldEnv = old.env ?? {};
    const newEnv = labelEnv(s);
    const keys = [...new Set([...Object.keys(oldEnv), ...Object.keys(newEnv)])].sort();
    const secretsChanged = new Set<string>();
    for (const k of keys) {
      if (!(k in oldEnv)) causes.push(`env ${k} added`);
      else if (!(k in newEnv)) causes.push(`env ${k} removed`);
      else if (oldEnv[k] !== newEnv[k]) {
        // Same shown form, other digest: only a secret inside it changed. Name it, never show it.
        const sameShape = s.secretEnv?.[k] && withoutDigest(oldEnv[k]!) === withoutDigest(newEnv[k]!);
        if (sameShape) s.secretEnv![k]!.forEach((n) => secretsChanged.add(n));
        else causes.push(`env ${k} changed`);
      }
    }
    for (const n of [...secretsChanged].sort()) causes.push(`secret ${n} changed`);
    return causes;
  },
  files: (old, s) => {
    const before = new Map(((old.files ?? []) as unknown as LabelFile[]).map((f) => [f.target, f]));
    const after = new Map((labelFiles(s) ?? []).map((f) => [f.target, f]));
    const causes: string[] = [];
    for (const target of [...new Set([...before.keys(), ...after.keys()])].sort()) {
      const a = before.get(target);
      const b = after.get(target);
      if (!a) causes.push(`file ${target} added`);
      else if (!b) causes.push(`file ${target} removed`);
      else {
        const what: string[] = [];
        if (a.digest !== b.digest) {
          // Its text is the same as shown, only a secret in it changed: name the secret, never show it.
          const secrets = s.files?.find((f) => f.target === target)?.rendered?.secrets ?? [];
          what.push(
            secrets.length && a.shown !== undefined && a.shown === b.shown
              ? `secret ${secrets.join(', ')} changed`
              : 'changed',
          );
        }
        if (a.mode !== b.mode) what.push(`mode ${a.mode} → ${b.mode}`);
        if (JSON.stringify(a.reload) !== JSON.stringify(b.reload))
          what.push(b.reload ? 'now reloaded' : 'no longer reloaded');
        if (a.path !== b.path) what.push(`now at ${b.path} on the host`);
        if (what.length) causes.push(`file ${target} ${what.join(', ')}`);
      }
    }
    return causes;
  },
};

/**
 * Explain a config-hash change from the spec the old container carries in its label: every
 * container field of the table that differs, in table order, under its file key
 * (`working_dir changed`). "config changed" only when the label is missing or unreadable.
 */
export function specChange(c: ObservedContainer, s: ServiceSpec): string {
  const raw = c.labels[LABEL.spec];
  let old: Partial<ContainerConfig>;
  try {
    old = raw ? (JSON.parse(raw) as Partial<ContainerConfig>) : {};
  } catch {
    return 'config changed';
  }
  if (!raw) return 'config changed';
  const causes: string[] = [];
  for (const [key, f] of CONTAINER_FIELDS) {
    const explain = EXPLAIN[f.spec];
    if (explain) causes.push(...explain(old, s));
    else if (JSON.stringify(sorted(old[f.spec])) !== JSON.stringify(sorted(s[f.spec])))
      causes.push(`${key} changed`);
  }
  return causes.length ? causes.join(', ') : 'config changed';
}

function withoutDigest(v: string): string {
  return v.replace(/ hmac-sha256:[0-9a-f]+$/, '');
}

function sorted(v: unknown): unknown {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    return Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)));
  }
  return v;
}

/** `sha256:ab12…`: enough to tell two digests apart in a plan line. */
export function shortDigest(d: string): string {
  return `${d.slice(0, 'sha256:'.length + 4)}…`;
}

function imageChange(from: string, to: string): string {
  const a = parseImageRef(from);
  const b = parseImageRef(to);
  if (a.repository === b.repository) {
    const av = a.digest ? `@${shortDigest(a.digest)}` : `:${a.tag ?? 'latest'}`;
    const bv = b.digest ? `@${shortDigest(b.digest)}` : `:${b.tag ?? 'latest'}`;
    return `image ${av} → ${bv}`;
  }
  return `image ${from} → ${to}`;
}
