import { createTwoFilesPatch, diffLines } from 'diff';
import { hostFileName, modeText, redactedPath, type ServiceFile } from '../model/files.js';
import { LABEL } from '../model/labels.js';
import type { ObservedContainer, ObservedHost } from '../model/observed.js';
import type { Operation, Plan } from '../model/plan.js';
import type { ServiceSpec } from '../model/service.js';
import type { LabelFile } from './container.js';

// Planning the rendered files of `files:` (pure). A file without `reload` is part of the config
// hash (its digest), so a change recreates the container and the new file is written, by rename,
// before the new container mounts it. A file with `reload` is rewritten in place (a bind-mounted
// file keeps its inode) and the container is told to reread it. Anything the host holds that
// the hash cannot see (a file someone edited or deleted) is found here by comparing content.

type WriteFile = Extract<Operation, { kind: 'write-file' }>;
type Reload = Extract<Operation, { kind: 'reload' }>;
type RemoveFile = Extract<Operation, { kind: 'remove-file' }>;

/** A rendered file with where it goes; only such files reach the planner. */
type Placed = ServiceFile & { rendered: NonNullable<ServiceFile['rendered']> & { path: string } };

function placed(s: ServiceSpec): Placed[] {
  return (s.files ?? []).map((f) => {
    if (!f.rendered?.path) throw new Error(`bug: file ${f.target} of ${s.name} is not rendered and placed`);
    return f as Placed;
  });
}

/** The files a managed container was made with, as its `berth.spec` label keeps them. */
export function containerFiles(c: ObservedContainer): LabelFile[] {
  try {
    const cfg = JSON.parse(c.labels[LABEL.spec] ?? '{}') as { files?: LabelFile[] };
    return Array.isArray(cfg.files) ? cfg.files : [];
  } catch {
    return [];
  }
}

/**
 * Why the container must be recreated although its config hash matches: a file it mounts is
 * missing on the host (a new one would not be seen through the old mount), or a file without
 * `reload` holds something else than berth wrote (someone edited it).
 */
export function fileDrift(s: ServiceSpec, observed: ObservedHost): string[] {
  const out: string[] = [];
  for (const f of placed(s)) {
    const current = observed.files?.[f.rendered.path] ?? null;
    if (current === null) out.push(`file ${f.target} missing on the host`);
    else if (current !== f.rendered.content && !f.reload) out.push(`file ${f.target} differs on the host`);
  }
  return out;
}

/** `+2 -1 lines` between two texts. */
function lineCounts(before: string, after: string): string {
  let added = 0;
  let removed = 0;
  for (const c of diffLines(before, after)) {
    if (c.added) added += c.count;
    else if (c.removed) removed += c.count;
  }
  return `+${added} -${removed} lines`;
}

function writeOp(
  s: ServiceSpec,
  f: Placed,
  observed: ObservedHost,
  how: WriteFile['how'],
  why?: string,
): WriteFile {
  const r = f.rendered;
  const previous = observed.files?.[r.path] ?? null;
  const side = redactedPath(r.path);
  const sideBefore = observed.files?.[side] ?? null;
  // Berth keeps a redacted copy beside every file that uses a secret (written before the file,
  // removed after it): without one, the file on the host holds no secret and can be shown.
  const shownBefore = sideBefore ?? previous;
  let cause: string;
  if (previous === null) cause = why ?? 'new file';
  else if (previous === r.content) cause = why ?? 'rewritten';
  else if (r.secrets.length && sideBefore !== null && sideBefore === r.shown)
    cause = `secret ${r.secrets.join(', ')} changed`;
  else cause = `changed: ${lineCounts(previous, r.content)}`;
  const op: WriteFile = {
    kind: 'write-file',
    service: s.name,
    path: r.path,
    target: f.target,
    content: r.content,
    mode: r.mode,
    how,
    previous,
    shownBefore,
    shown: r.shown,
    cause,
  };
  if (r.secrets.length) op.redacted = { path: side, content: r.shown, previous: sideBefore };
  else if (sideBefore !== null) op.redacted = { path: side, content: null, previous: sideBefore };
  return op;
}

/** The file operations of one service around its container operation (if any), in order. */
export interface FileOps {
  /** Before the container operation: files the new container mounts, or rewrites in place. */
  before: WriteFile[];
  /** After it: reloads of the running container, then files no longer mounted. */
  after: Array<Reload | RemoveFile>;
}

/**
 * The file operations for service `s` whose container `c` (if any) gets `containerOp`:
 * - created or recreated: every file whose content, mode or place differs is written by
 *   rename first; files the old container mounted and the new one does not go afterwards;
 * - kept running (or paused): files with `reload` whose content changed are rewritten in place,
 *   then one reload per distinct signal or command;
 * - kept but stopped: the same rewrite, and starting it is the reread.
 */
export function planFiles(
  s: ServiceSpec,
  c: ObservedContainer | undefined,
  containerOp: Operation | undefined,
  observed: ObservedHost,
): FileOps {
  const files = placed(s);
  const out: FileOps = { before: [], after: [] };
  const replaced =
    containerOp?.kind === 'create' || containerOp?.kind === 'recreate' || containerOp?.kind === 'adopt';
  if (replaced) {
    const old = c && containerOp.kind === 'recreate' ? containerFiles(c) : [];
    const oldByTarget = new Map(old.map((o) => [o.target, o]));
    for (const f of files) {
      const was = oldByTarget.get(f.target);
      const current = observed.files?.[f.rendered.path] ?? null;
      const mode = modeText(f.rendered.mode);
      const why =
        was === undefined
          ? undefined
          : current === null
            ? 'missing on the host'
            : was.path !== f.rendered.path
              ? `now at ${f.rendered.path}`
              : was.mode !== mode
                ? `mode ${was.mode} → ${mode}`
                : undefined;
      if (current !== f.rendered.content || why) out.before.push(writeOp(s, f, observed, 'atomic', why));
    }
    const kept = new Set(files.map((f) => f.rendered.path));
    for (const o of old) {
      if (kept.has(o.path) || !ownPath(s.name, o)) continue;
      out.after.push({
        kind: 'remove-file',
        service: s.name,
        path: o.path,
        target: o.target,
        cause: `file ${o.target} is no longer in the service`,
      });
    }
    return out;
  }
  if (!c) return out;
  const changed = files.filter((f) => {
    const current = observed.files?.[f.rendered.path] ?? null;
    return f.reload && current !== null && current !== f.rendered.content;
  });
  const reloads = new Map<string, Placed[]>();
  for (const f of changed) {
    out.before.push(writeOp(s, f, observed, 'in-place'));
    const key = JSON.stringify(f.reload);
    reloads.set(key, [...(reloads.get(key) ?? []), f]);
  }
  // A stopped container rereads everything when it starts.
  const running = containerOp?.kind === 'unpause' || (containerOp === undefined && c.state === 'running');
  if (!running) return out;
  for (const group of reloads.values()) {
    const targets = group.map((f) => f.target);
    out.after.push({
      kind: 'reload',
      service: s.name,
      containerId: c.id,
      reload: group[0]!.reload!,
      spec: s,
      cause: `${targets.length === 1 ? 'file' : 'files'} ${targets.join(', ')} changed`,
    });
  }
  return out;
}

/**
 * Whether a path from a container's label is one berth gives this service's file: a label is
 * data from the host, and only berth's own files are ever removed.
 */
function ownPath(service: string, f: LabelFile): boolean {
  return typeof f.path === 'string' && f.path.endsWith(`/${service}/${hostFileName(f.target)}`);
}

/** The host files of a service that is gone, from its container's label (with redacted copies). */
export function filesOfRemoved(service: string, c: ObservedContainer): string[] {
  return containerFiles(c)
    .filter((f) => ownPath(service, f))
    .flatMap((f) => [f.path, redactedPath(f.path)]);
}

/**
 * `plan --diff`: a unified diff of each file the plan writes, secrets redacted: the text shown
 * is what `renderRedacted` made, before and after. Empty when the plan writes no file.
 */
export function planFileDiffs(plan: Plan): string {
  const out: string[] = [];
  for (const op of plan.operations) {
    if (op.kind !== 'write-file') continue;
    const before = op.shownBefore ?? '';
    if (before === op.shown) {
      out.push(`${op.service} ${op.target}: ${op.cause} (no change to show)\n`);
      continue;
    }
    const patch = createTwoFilesPatch(
      op.previous === null ? '/dev/null' : `a${op.target}`,
      `b${op.target}`,
      before,
      op.shown,
      undefined,
      undefined,
      { context: 3 },
    );
    // The first line of the patch is a separator of "=" signs: the service names the file instead.
    out.push(`${op.service} ${op.target}:\n${patch.replace(/^=+\n/, '')}`);
  }
  return out.join('\n');
}
