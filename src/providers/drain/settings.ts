import { parseDuration } from '../../config/values.js';
import { ConfigError } from '../../model/errors.js';
import type { DrainTarget, SettingIssue } from './types.js';
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
