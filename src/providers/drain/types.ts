import type { LbState } from '../../model/rotation.js';

/**
 * The load-balancer drain plugin family: one interface, one registry (registry.ts), one contract
 * suite (contract.ts) that every provider passes.
 */

/** The host a provider acts on, with its load-balancer settings already rendered for it. */
export interface DrainTarget {
  /** The host's inventory name. */
  host: string;
  /** The host's address from the inventory, when it has one. */
  address?: string;
  /**
   * The host's `load_balancer` block from berth.yaml, group and host overrides applied and
   * `{{ host.* }}` resolved, without `provider`.
   */
  settings: Record<string, unknown>;
}

/** Where a host stands in its load balancer (the model's type, so the planner can reason about it). */
export type { LbState };

export interface DrainOptions {
  /** Longest wait for current connections to finish; the host goes out of rotation after it regardless. */
  timeoutMs: number;
  /** Stops the wait early: drain rejects with the signal's reason and leaves the state as it is. */
  signal?: AbortSignal;
  /** Human-readable progress ("3 sessions left"), for a TTY. */
  onProgress?: (message: string) => void;
}

export interface DrainProvider {
  readonly name: string;
  /** Current state in the load balancer, to restore it if anything fails. */
  status(t: DrainTarget): Promise<LbState>;
  /**
   * Take the host out: stop new connections, wait for current ones to finish (or the timeout),
   * then out of rotation. Idempotent: a host already out of rotation returns at once.
   */
  drain(t: DrainTarget, opts: DrainOptions): Promise<void>;
  /** Back into rotation. Idempotent. */
  undrain(t: DrainTarget): Promise<void>;
  /** Put back exactly a previously observed state (used when a drain fails half-way); `unknown` does nothing. */
  restore(t: DrainTarget, state: LbState): Promise<void>;
}

/** A problem with one provider setting; `path` is dotted from the top of berth.yaml. */
export interface SettingIssue {
  path: string;
  message: string;
}

/** What the registry knows of one provider. */
export interface DrainProviderPlugin {
  name: string;
  /** A provider instance; cheap, holds no connection. */
  create(): DrainProvider;
  /**
   * Check the provider's settings (the `load_balancer` block without `provider`). With
   * `rendered: false` (validate time) strings that still hold `{{ templates }}` are checked for
   * type only; with `rendered: true` (a host's final values) every value is checked.
   */
  validate(settings: Record<string, unknown>, opts: { base: string; rendered: boolean }): SettingIssue[];
}
