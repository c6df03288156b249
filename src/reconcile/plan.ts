import { parseImageRef } from '../config/image-ref.js';
import { formatIssue } from '../model/errors.js';
import { asideName, LABEL } from '../model/labels.js';
import type { ObservedContainer, ObservedHost, ObservedImage } from '../model/observed.js';
import type { Operation, Plan, Pull } from '../model/plan.js';
import type { DesiredState, ServiceSpec } from '../model/service.js';
import { planRotation } from './rotation.js';
import { shortDigest, specChange } from './causes.js';
import { configHash, isBerthEnvFile, renderEnvFile } from './container.js';

export interface PlanOptions {
  /** Take over same-named containers berth did not make. */
  adopt?: boolean;
  /** Allow a repo with no services to remove every managed container. */
  allowEmpty?: boolean;
}

/** Desired × observed → plan. Pure: every decision berth makes is taken here, with its cause. */
export function planHost(desired: DesiredState, observed: ObservedHost, opts: PlanOptions = {}): Plan {
  const plan: Plan = {
    host: desired.host,
    commit: desired.commit,
    ref: desired.ref,
    pulls: [],
    operations: [],
    unchanged: [],
    warnings: [],
    blockers: [],
    held: (desired.failed ?? []).map((f) => ({
      service: f.service,
      reason: f.issues.map(formatIssue).join('; '),
    })),
  };
  const held = new Set([...(desired.held ?? []), ...plan.held.map((h) => h.service)]);
  const byName = new Map(observed.containers.map((c) => [c.name, c]));
  // A container set aside by an apply that was killed before it finished (see apply/execute).
  const aside = new Map(
    observed.containers
      .filter((c) => c.labels[LABEL.service] !== undefined && c.name === asideName(c.labels[LABEL.service]!))
      .map((c) => [c.labels[LABEL.service]!, c]),
  );
  const recovery: Operation[] = [];
  for (const [service, c] of [...aside].sort(([a], [b]) => a.localeCompare(b))) {
    if (byName.has(service)) {
      recovery.push({
        kind: 'remove-aside',
        service,
        containerId: c.id,
        cause: 'left aside by an interrupted apply; its successor is in place',
      });
    } else {
      recovery.push({
        kind: 'recover',
        service,
        containerId: c.id,
        cause: 'left aside by an interrupted apply; it gets its name back',
      });
      // From here on it is the service's container, as it was before the interrupted apply.
      byName.set(service, { ...c, name: service });
    }
  }
  const imagesById = new Map(observed.images.map((i) => [i.id, i]));
  const wanted = new Set(desired.services.map((s) => s.name));
  const pulls = new Map<string, Pull>();
  const needImage = (s: ServiceSpec, cause = s.pull === 'always' ? 'pull: always' : 'not on this host') => {
    if (s.pull === 'missing' && imageIsLocal(s.image, observed.images)) return;
    // pull: always means "ask the registry every time"; observe already asked, so a local image
    // that has the digest the tag names now needs no second trip.
    if (s.pull === 'always' && localHasRemoteDigest(s.image, observed)) return;
    const p = pulls.get(s.image);
    if (p) p.services.push(s.name);
    else pulls.set(s.image, { image: s.image, services: [s.name], cause });
  };

  for (const s of [...desired.services].sort((a, b) => a.name.localeCompare(b.name))) {
    if (held.has(s.name)) continue;
    const ops: Operation[] = [];
    const envPath = joinPath(desired.envDir, s.name);
    const envContent = renderEnvFile(s);
    const current = observed.envFiles[s.name] ?? null;
    if (current !== null && !isBerthEnvFile(s.name, current)) {
      plan.blockers.push(
        `${s.name}: ${envPath} exists and berth did not write it (its first line is not berth's); ` +
          `berth never overwrites a file it did not write: move it away or choose another env_dir`,
      );
      continue;
    }
    if (current !== envContent) {
      ops.push({
        kind: 'write-env',
        service: s.name,
        path: envPath,
        content: envContent,
        previous: current,
        cause: current === null ? 'env file missing' : 'env file differs',
      });
    }
    const c = byName.get(s.name);
    const hash = configHash(s);
    if (!c) {
      needImage(s);
      ops.push({ kind: 'create', service: s.name, spec: s, cause: 'new service' });
    } else if (c.labels[LABEL.service] === undefined) {
      if (opts.adopt) {
        needImage(s);
        ops.push({
          kind: 'adopt',
          service: s.name,
          spec: s,
          containerId: c.id,
          fromImage: c.image,
          cause: `taking over unmanaged container ${short(c.id)} (--adopt)`,
        });
      } else {
        plan.blockers.push(
          `${s.name}: a container named "${s.name}" exists that berth did not create; ` +
            `pass --adopt to replace it with the managed one`,
        );
      }
    } else if (c.labels[LABEL.service] !== s.name) {
      plan.blockers.push(
        `${s.name}: container "${s.name}" is labelled as berth service "${c.labels[LABEL.service]}"; ` +
          `remove or rename it by hand`,
      );
    } else if (c.labels[LABEL.configHash] !== hash) {
      const cause = specChange(c, s);
      needImage(s);
      ops.push(recreate(s, c, cause));
    } else {
      const moved = movedTag(s, c, observed, imagesById);
      if (moved.warning) plan.warnings.push(moved.warning);
      if (moved.cause) {
        needImage(s, moved.cause);
        ops.push(recreate(s, c, moved.cause));
      } else if (c.state === 'paused') {
        ops.push({
          kind: 'unpause',
          service: s.name,
          containerId: c.id,
          image: c.image,
          cause: 'container is paused (docker pause)',
        });
      } else if (c.state !== 'running') {
        ops.push({
          kind: 'start',
          service: s.name,
          containerId: c.id,
          image: c.image,
          cause: `container is ${c.state}`,
        });
      }
    }
    if (ops.length === 0) plan.unchanged.push(s.name);
    else if (ops.some((op) => op.kind === 'create' || op.kind === 'recreate' || op.kind === 'adopt')) {
      plan.warnings.push(...powerfulBinds(s));
    }
    plan.operations.push(...ops);
  }

  const strays = observed.containers
    .filter((c) => c.labels[LABEL.service] !== undefined && c.name === c.labels[LABEL.service])
    .filter((c) => !wanted.has(c.name) && !held.has(c.name))
    .sort((a, b) => a.name.localeCompare(b.name));
  if (desired.services.length === 0 && strays.length > 0 && !opts.allowEmpty) {
    plan.blockers.push(
      `the state repo has no services for this host, which would remove all ${strays.length} ` +
        `managed container(s); pass --allow-empty if that is really wanted`,
    );
  }
  const gone = desired.host ? `not in the repo for host ${desired.host}` : 'no longer in the repo';
  const ownedEnv = new Set((observed.strayEnvFiles ?? []).filter((n) => !wanted.has(n) && !held.has(n)));
  for (const c of strays) {
    const op: Operation = {
      kind: 'remove',
      service: c.name,
      containerId: c.id,
      fromImage: c.image,
      cause: gone,
    };
    if (ownedEnv.delete(c.name)) op.envFile = joinPath(desired.envDir, c.name);
    plan.operations.push(op);
  }
  // Env files of services that are gone though their container is not here (it failed to
  // start, or someone removed it): they may hold secrets, so they go too.
  for (const name of [...ownedEnv].sort()) {
    plan.operations.push({
      kind: 'remove-env',
      service: name,
      path: joinPath(desired.envDir, name),
      cause: `${gone}; its env file is left without a container`,
    });
  }
  plan.operations.unshift(...recovery);
  plan.pulls = [...pulls.values()];
  const rotation = planRotation(desired, observed.rotation, plan.operations);
  if (rotation) {
    plan.rotation = rotation;
    if (observed.rotation?.error) {
      plan.warnings.push(
        `could not ask ${rotation.provider} where this host stands (${observed.rotation.error}); ` +
          `it will be put back into rotation afterwards`,
      );
    }
  }
  return plan;
}

/** Docker sockets: a container that mounts one can run anything as root on the host. */
const DOCKER_SOCKETS = new Set(['/var/run/docker.sock', '/run/docker.sock']);

/**
 * Binds that hand a container the host: its root folder or the Docker socket. The repo may ask
 * for them (its authors can run any container anyway), but whoever reads the plan should see it.
 */
function powerfulBinds(s: ServiceSpec): string[] {
  const out: string[] = [];
  for (const v of s.volumes) {
    const src = v.split(':')[0] ?? '';
    if (!src.startsWith('/')) continue;
    const norm = `/${src
      .split('/')
      .filter((p) => p && p !== '.')
      .join('/')}`;
    if (norm === '/')
      out.push(
        `${s.name}: mounts the host's root folder (${v}): it can read and change every file on this host`,
      );
    else if (DOCKER_SOCKETS.has(norm))
      out.push(`${s.name}: mounts the Docker socket (${v}): it can control every container on this host`);
  }
  return out;
}

function recreate(s: ServiceSpec, c: ObservedContainer, cause: string): Operation {
  return { kind: 'recreate', service: s.name, spec: s, containerId: c.id, fromImage: c.image, cause };
}

function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

function short(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** Names under which docker lists a reference among an image's RepoTags. */
function normalisedTag(ref: string): string | undefined {
  const r = parseImageRef(ref);
  if (r.digest) return undefined;
  return `${r.repository}:${r.tag ?? 'latest'}`;
}

function imageIsLocal(ref: string, images: ObservedImage[]): boolean {
  const r = parseImageRef(ref);
  if (r.digest) return images.some((i) => i.repoDigests.includes(`${r.repository}@${r.digest}`));
  const tag = normalisedTag(ref);
  return images.some((i) => i.repoTags.includes(tag ?? ref) || i.repoTags.includes(ref));
}

function localHasRemoteDigest(ref: string, observed: ObservedHost): boolean {
  const remote = observed.remoteDigests[ref];
  if (!remote || !('digest' in remote)) return false;
  const r = parseImageRef(ref);
  const tag = normalisedTag(ref);
  const local = observed.images.find((i) => i.repoTags.includes(tag ?? ref) || i.repoTags.includes(ref));
  return Boolean(local?.repoDigests.includes(`${r.repository}@${remote.digest}`));
}

/** `pull: always` and the tag now names another digest than the running image. */
function movedTag(
  s: ServiceSpec,
  c: ObservedContainer,
  observed: ObservedHost,
  imagesById: Map<string, ObservedImage>,
): { cause?: string; warning?: string } {
  if (s.pull !== 'always') return {};
  const r = parseImageRef(s.image);
  if (r.digest) return {};
  const remote = observed.remoteDigests[s.image];
  if (!remote) return {};
  if ('error' in remote) {
    return {
      warning: `${s.name}: could not ask the registry about ${s.image} (${remote.error}); left as is`,
    };
  }
  const running = imagesById.get(c.imageId);
  const digests = (running?.repoDigests ?? [])
    .filter((d) => d.startsWith(`${r.repository}@`))
    .map((d) => d.slice(d.indexOf('@') + 1));
  if (digests.includes(remote.digest)) return {};
  const tag = `:${r.tag ?? 'latest'}`;
  const was = digests[0] ? `was ${shortDigest(digests[0])}` : 'running image has no registry digest';
  return { cause: `${tag} now names ${shortDigest(remote.digest)} (${was})` };
}
