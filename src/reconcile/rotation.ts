import type { LeasePlan, ObservedRotation, RotationPlan } from '../model/rotation.js';
import type { Operation } from '../model/plan.js';
import type { DesiredState, HostRollout } from '../model/service.js';

/**
 * Whether the host leaves its load balancer for these operations, and how it comes back.
 *
 * The host is drained only when an operation restarts a service that asked for it
 * (`drain: true`, recreated or adopted). Afterwards it goes back to the state it had: ready,
 * unless someone else had drained it before berth came, in which case it is restored to that.
 * A drain marker left by an interrupted apply means the host is still out because of berth:
 * its recorded state is the one to go back to, even when nothing else changes.
 */
export function planRotation(
  desired: DesiredState,
  observed: ObservedRotation | undefined,
  operations: Operation[],
): RotationPlan | undefined {
  if (!desired.loadBalancer || !observed) return undefined;
  const restarting = restartsDrained(operations);
  if (restarting.length === 0 && observed.leftover === undefined) return undefined;
  const previous = observed.leftover ?? observed.state;
  const plan: RotationPlan = { provider: desired.loadBalancer.provider, previous };
  if (restarting.length) {
    plan.drain = { cause: `${plan.provider}: ${restarting.join(', ')} will restart` };
    if (desired.rollout) plan.lease = leasePlan(desired.rollout);
  }
  if (observed.leftover !== undefined) plan.alreadyOut = true;
  const back = previous === 'ready' || previous === 'unknown';
  plan.rejoin = back
    ? {
        kind: 'undrain',
        cause: restarting.length ? 'changes done' : 'an interrupted apply left it out of rotation',
      }
    : { kind: 'restore', cause: `back to ${previous}, as before berth drained it` };
  return plan;
}

/** The services whose operations restart a `drain: true` container: why a host must leave rotation. */
export function restartsDrained(operations: Operation[]): string[] {
  return [
    ...new Set(
      operations
        .filter((op) => (op.kind === 'recreate' || op.kind === 'adopt') && op.spec.drain)
        .map((op) => op.service),
    ),
  ];
}

/**
 * The lease to take before draining: in every group of the host, at most `max_unavailable` of
 * that group's hosts at once.
 */
export function leasePlan(r: HostRollout): LeasePlan {
  const groups = r.groups.map((g) => ({ name: g.name, cap: leaseCap(r.maxUnavailable, g.size) }));
  const words = groups.map((g) => {
    const size = r.groups.find((x) => x.name === g.name)!.size;
    return `${g.cap} of ${size} host${size === 1 ? '' : 's'} of ${g.name}`;
  });
  return {
    scope: r.scope,
    groups,
    expiryMs: r.leaseExpiryMs,
    cause: `max_unavailable ${r.maxUnavailable}: at most ${words.join(', ')} out of rotation at once (${r.scope})`,
  };
}

/**
 * How many hosts of a group may be out at once: a number as is, a percentage of the group's
 * hosts rounded down, never below 1 (0 would keep every change that needs a drain waiting).
 */
export function leaseCap(maxUnavailable: number | string, groupSize: number): number {
  if (typeof maxUnavailable === 'number') return Math.max(1, Math.floor(maxUnavailable));
  const pct = Number(maxUnavailable.replace(/%$/, ''));
  return Math.max(1, Math.floor((pct * groupSize) / 100));
}
