import { parseDuration } from '../../config/values.js';
import { ConfigError } from '../../model/errors.js';
import type { DrainProviderPlugin, DrainTarget, SettingIssue } from './types.js';
import { sleep as clockSleep } from '../../adapters/clock.js';

/** Where load-balancer settings are written; group and host overrides keep the same keys. */
export const SETTINGS_FILE = 'berth.yaml';

export function hasTemplate(v: unknown): boolean {
  return typeof v === 'string' && v.includes('{{');
}

/** Check that only `known` keys are present: a typo must not silently fall back to a default. */
export function unknownKeys(
  settings: Record<string, unknown>,
  known: readonly string[],
  base: string,
): SettingIssue[] {
  return Object.keys(settings)
    .filter((k) => k !== 'provider' && !known.includes(k))
    .map((k) => ({ path: `${base}.${k}`, message: `unknown setting; known: ${known.join(', ')}` }));
}

/** An integer setting given as a number, or as digits (what a rendered template gives). */
export function intOf(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^\d+$/.test(v.trim())) return Number(v.trim());
  return undefined;
}

/**
 * Checks of single settings for a provider's `validate`, each adding its issues to `issues`
 * (`required by the PROVIDER provider`, wrong type or range) and returning the value to check
 * further, or undefined when it is absent, still templated (validate time) or wrong.
 */
export function settingChecks(
  s: Record<string, unknown>,
  { base, rendered }: { base: string; rendered: boolean },
  provider: string,
  issues: SettingIssue[],
) {
  const at = (key: string) => `${base}.${key}`;
  const absent = (key: string, required: boolean): undefined => {
    if (required) issues.push({ path: at(key), message: `required by the ${provider} provider` });
    return undefined;
  };
  return {
    /** The setting's dotted path, for the provider's own issues. */
    at,
    /** A non-empty string. */
    text(key: string, required: boolean): string | undefined {
      const v = s[key];
      if (v === undefined) return absent(key, required);
      if (typeof v !== 'string' || v.trim() === '') {
        issues.push({ path: at(key), message: 'expected a non-empty string' });
        return undefined;
      }
      return !rendered && hasTemplate(v) ? undefined : v;
    },
    /** An integer from `min` to `max`, given as a number or as digits. */
    int(key: string, required: boolean, min: number, max: number): number | undefined {
      const v = s[key];
      if (v === undefined) return absent(key, required);
      if (!rendered && hasTemplate(v)) return undefined;
      const n = intOf(v);
      if (n === undefined || n < min || n > max) {
        issues.push({ path: at(key), message: `expected an integer from ${min} to ${max}` });
        return undefined;
      }
      return n;
    },
  };
}

/** A duration setting, or an issue. Bare numbers are seconds, as in the rest of berth.yaml. */
export function durationIssue(value: unknown, path: string, rendered: boolean): SettingIssue[] {
  if (value === undefined || (!rendered && hasTemplate(value))) return [];
  if (typeof value !== 'string' && typeof value !== 'number') {
    return [{ path, message: 'expected a duration such as 30s' }];
  }
  const ms = parseDuration(value);
  return typeof ms === 'number' ? [] : [{ path, message: ms.error }];
}

export function readDurationMs(value: unknown, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  const ms = parseDuration(value as string | number);
  return typeof ms === 'number' ? ms : fallbackMs;
}

/**
 * Refuse a host's rendered settings when they are wrong: the config's fault, reported with the
 * setting's path and the host it was rendered for.
 */
export function assertValid(t: DrainTarget, issues: SettingIssue[]): void {
  if (issues.length === 0) return;
  throw new ConfigError(
    issues.map((i) => ({
      file: SETTINGS_FILE,
      path: i.path,
      message: `${i.message} (for host ${t.host})`,
      severity: 'error' as const,
    })),
  );
}

/**
 * A host's rendered settings with `key` defaulting to the host's inventory address, checked by
 * the provider's own `validate`: a ConfigError naming the host when any is wrong, or when neither
 * the setting nor the inventory gives `key` (`missing` says what to do).
 */
export function renderedWithAddress(
  t: DrainTarget,
  validate: DrainProviderPlugin['validate'],
  key: string,
  missing: string,
): { settings: Record<string, unknown>; value: string } {
  const value = t.settings[key] ?? t.address;
  const settings = { ...t.settings, [key]: value };
  const issues = validate(settings, { base: 'load_balancer', rendered: true });
  if (value === undefined) issues.push({ path: `load_balancer.${key}`, message: `required: ${missing}` });
  assertValid(t, issues);
  return { settings, value: value as string };
}

/** An error for an aborted wait: the signal's own reason when it has one. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new Error('aborted');
}

/**
 * Sleep `ms` (the one sleep of src/adapters/clock.ts); when `signal` aborts, stop early and
 * reject with its reason, so a provider's wait ends the drain at once.
 */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  await clockSleep(ms, signal);
  if (signal?.aborted) throw abortReason(signal);
}

export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

/** A target's `drain_timeout` (every provider reads the same key), for the caller of drain(). */
export function drainTimeoutMs(t: DrainTarget): number {
  return readDurationMs(t.settings.drain_timeout, DEFAULT_DRAIN_TIMEOUT_MS);
}
