import type { Reload } from './files.js';
import type { RotationPlan } from './rotation.js';
import type { ServiceSpec } from './service.js';

/** Why an operation is in the plan, in words a person reads in `berth plan`. */
export type Cause = string;

export type Operation =
  | { kind: 'create'; service: string; spec: ServiceSpec; cause: Cause }
  | {
      kind: 'recreate';
      service: string;
      spec: ServiceSpec;
      containerId: string;
      fromImage: string;
      cause: Cause;
    }
  | {
      kind: 'adopt';
      service: string;
      spec: ServiceSpec;
      containerId: string;
      fromImage: string;
      cause: Cause;
    }
  | { kind: 'start'; service: string; containerId: string; image: string; cause: Cause }
  /** A container someone paused (`docker pause`): it only needs to run again. */
  | { kind: 'unpause'; service: string; containerId: string; image: string; cause: Cause }
  | {
      kind: 'remove';
      service: string;
      containerId: string;
      fromImage: string;
      /** The service's env file, removed with its container; only when berth wrote it. */
      envFile?: string;
      /** The service's rendered files on the host (`files:`), removed with its container. */
      files?: string[];
      cause: Cause;
    }
  | {
      kind: 'write-env';
      service: string;
      path: string;
      content: string;
      /** What the file held before (null: there was none), put back if the service is rolled back. */
      previous: string | null;
      cause: Cause;
    }
  /** An env file berth wrote for a service that is gone, container or not: it may hold secrets. */
  | { kind: 'remove-env'; service: string; path: string; cause: Cause }
  /**
   * A rendered `files:` entry written to the host. `atomic` (a rename) for a container about to
   * be created, which mounts the new inode; `in-place` (same inode) for a running container that
   * rereads it on `reload`, since a bind-mounted file keeps the inode it was mounted with.
   */
  | {
      kind: 'write-file';
      service: string;
      /** The file on the host. */
      path: string;
      /** Where the container sees it (what the plan line names). */
      target: string;
      content: string;
      mode: number;
      how: 'atomic' | 'in-place';
      /** What the file held before (null: there was none), put back if the service is rolled back. */
      previous: string | null;
      /**
       * For a file that uses a secret: the redacted text, kept beside it on the host so that a
       * later `plan --diff` can show what changed without the secret (`previous` likewise);
       * `content` null removes a copy left from when the file used one.
       */
      redacted?: { path: string; content: string | null; previous: string | null };
      /** What the file showed before and shows now, secrets redacted, for `plan --diff`; null: unknown. */
      shownBefore: string | null;
      shown: string;
      cause: Cause;
    }
  /** Tell a running container to reread its files (a signal or a command), then check its health. */
  | {
      kind: 'reload';
      service: string;
      containerId: string;
      reload: Reload;
      /** The service as it runs, for its health check. */
      spec: ServiceSpec;
      cause: Cause;
    }
  /** A host file of a `files:` entry that is no longer mounted (removed after its container moved on). */
  | { kind: 'remove-file'; service: string; path: string; target: string; cause: Cause }
  /** An interrupted apply left the previous container aside and none under the name: give it back. */
  | { kind: 'recover'; service: string; containerId: string; cause: Cause }
  /** An interrupted apply left the previous container aside beside its successor: remove it. */
  | { kind: 'remove-aside'; service: string; containerId: string; cause: Cause };

export type OperationKind = Operation['kind'];

/** An image to pull before anything is stopped. */
export interface Pull {
  image: string;
  services: string[];
  cause: Cause;
}

export interface Plan {
  host?: string;
  commit?: string;
  ref: string;
  pulls: Pull[];
  operations: Operation[];
  /** Services that already match. */
  unchanged: string[];
  /** Things the user should know that do not stop the plan. */
  warnings: string[];
  /** Problems that forbid applying this plan (e.g. a foreign container in the way). */
  blockers: string[];
  /**
   * Services left exactly as they run because their values could not be made (a missing
   * secret, a failed decryption): neither changed nor removed. The apply still fails.
   */
  held: Array<{ service: string; reason: string }>;
  /**
   * How the host leaves and rejoins its load balancer around the operations; absent when it
   * stays in rotation (no load balancer, or no change interrupts a `drain: true` service).
   */
  rotation?: RotationPlan;
}

/** Whether applying the plan would do anything: an operation, a pull, or putting the host back in rotation. */
export function hasChanges(plan: Plan): boolean {
  return plan.operations.length > 0 || plan.pulls.length > 0 || plan.rotation !== undefined;
}
