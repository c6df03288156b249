/**
 * `berth promote`: carry a verified release from one environment to the next.
 *
 * What moves is the release of each service (image, gitCommit, buildNumber) at one exact source
 * commit (default: the source branch's head, recorded in the commit and the pull request), never
 * whatever the source holds by the time someone merges. Settings that differ per environment
 * stay as the target has them unless asked (`allFields`); a service new in the source comes only
 * when asked (`includeNew`); nothing is ever removed from the target. Three ways to deliver it:
 * a commit pushed to the target branch, a pull request (opened, or the open one updated), or a
 * fast-forward of the target to the source commit for teams that keep the branches identical.
 */
import path from 'node:path';
import { lostRace, type FileChange } from '../adapters/git.js';
import { ExternalError, UsageError } from '../model/errors.js';
import type { StateRepo } from '../model/service.js';
import { diffRepos, markdownTable, type ServiceDiff, type Side } from './diff.js';
import { editServiceFile, readRelease, type Release } from './edit.js';
import { land } from './land.js';
import { openOrUpdate } from './platforms/registry.js';
import type { Platform, PullRequest } from './platforms/types.js';
import { compareBuilds, describeRelease, shortSha } from './release.js';
import { envLabel, loadOrThrow, resolveEnv, type LoadRepo } from './repo.js';
import type { BranchFiles, Workspace } from './workspace.js';

export type PromoteMode = 'push' | 'pr' | 'merge';

export interface PromoteRequest {
  /** Source environment. */
  from: string;
  /** Target environment; default: the source's `promote_to` in berth.yaml. */
  to?: string;
  /** The verified source commit; default: the source branch's head. */
  commit?: string;
  /** Only these services. */
  services?: string[];
  /** Carry every setting, not only the release fields. */
  allFields?: boolean;
  /** Carry services the target does not have yet. */
  includeNew?: boolean;
  /** Allow a build number lower than the target's. */
  force?: boolean;
  mode: PromoteMode;
  /** With mode `pr`: where, and the branch the pull request comes from. */
  pr?: { platform: Platform; branch?: string };
}

/** One service that moves. */
export interface Move {
  service: string;
  /** The target's file that changes. */
  file: string;
  kind: 'release' | 'all-fields' | 'new';
  before?: Partial<Release>;
  after: Partial<Release>;
}

/** What a promotion does to the target, computed from both sides' files. Pure. */
export interface PromotionPlan {
  changes: FileChange[];
  moves: Move[];
  /** The differences that move, per service (the pull request's table). */
  moving: ServiceDiff[];
  /** Selected services whose other settings differ and stay as the target has them. */
  kept: ServiceDiff[];
  /** Services only the source has, left out (no includeNew). */
  newLeftOut: string[];
}

/** The side of a promotion as people read it. */
function sideOf(env: { env: string; branch: string }, commit: string): Side {
  return { env: env.env, branch: env.branch, commit };
}

/**
 * The target's new files for promoting `source` onto `target`. Throws UsageError for a service
 * named in `services` that the source lacks, and for builds that would go down (unless force).
 */
export function planPromotion(
  source: { files: BranchFiles; repo: StateRepo; side: Side },
  target: { files: BranchFiles; repo: StateRepo; side: Side },
  req: Pick<PromoteRequest, 'services' | 'allFields' | 'includeNew' | 'force'>,
): PromotionPlan {
  const src = new Map(source.repo.services.map((s) => [s.name, s]));
  const tgt = new Map(target.repo.services.map((s) => [s.name, s]));
  const names = req.services ?? [...src.keys()];
  const missing = names.filter((n) => !src.has(n));
  if (missing.length) {
    throw new UsageError(
      `--services: ${missing.map((n) => JSON.stringify(n)).join(', ')} not on ${source.side.env}; ` +
        `services there: ${[...src.keys()].join(', ') || 'none'}`,
    );
  }
  const wanted = new Set(names);
  const changes: FileChange[] = [];
  const moves: Move[] = [];
  const newLeftOut: string[] = [];
  const lower: string[] = [];
  for (const name of [...wanted].sort()) {
    const s = src.get(name)!;
    const sText = source.files.files.get(s.file)!;
    const after = readRelease(sText);
    const t = tgt.get(name);
    if (!t) {
      if (!req.includeNew) {
        newLeftOut.push(name);
        continue;
      }
      const dir = target.repo.settings?.servicesDir ?? 'services';
      const file = `${dir}/${path.posix.basename(s.file)}`;
      changes.push({ path: file, content: sText });
      moves.push({ service: name, file, kind: 'new', after });
      continue;
    }
    const tText = target.files.files.get(t.file)!;
    const before = readRelease(tText);
    const cmp = compareBuilds(after.buildNumber, before.buildNumber);
    if (cmp !== undefined && cmp < 0 && !req.force) {
      lower.push(
        `${name} (${describeRelease(before)} on ${target.side.env}, ${describeRelease(after)} on ${source.side.env})`,
      );
      continue;
    }
    const out = req.allFields
      ? sText
      : editServiceFile(tText, {
          image: after.image!,
          gitCommit: after.gitCommit ?? null,
          buildNumber: after.buildNumber ?? null,
        });
    if (out === tText) continue;
    changes.push({ path: t.file, content: out });
    moves.push({
      service: name,
      file: t.file,
      kind: req.allFields ? 'all-fields' : 'release',
      before,
      after,
    });
  }
  if (lower.length) {
    throw new UsageError(
      `${target.side.env} has a higher build than ${source.side.env} for: ${lower.join('; ')}. ` +
        `Refused, nothing was pushed: a fix made on ${target.side.env} would be undone ` +
        `(bring it to ${source.side.env} first, leave the service out with --services, or pass --force)`,
    );
  }
  const diff = diffRepos(target.repo, source.repo).services.filter((d) => wanted.has(d.service));
  const moved = new Set(moves.map((m) => m.service));
  const isRelease = (what: string) => what === 'build' || what === 'image' || what === 'service';
  const moving = diff
    .filter((d) => moved.has(d.service))
    .map((d) => (req.allFields ? d : { ...d, fields: d.fields.filter((f) => isRelease(f.what)) }));
  const kept = req.allFields
    ? []
    : diff
        .filter((d) => d.status === 'changed')
        .map((d) => ({ ...d, fields: d.fields.filter((f) => !isRelease(f.what)) }))
        .filter((d) => d.fields.length);
  return { changes, moves, moving, kept, newLeftOut };
}

function moveName(m: Move): string {
  return `${m.service} ${m.kind === 'new' ? `(new) ${describeRelease(m.after)}` : describeRelease(m.after)}`;
}

/** The commit message: which source commit, what moved, and a trailer machines can read. */
export function promotionMessage(p: PromotionPlan, source: Side, target: Side): string {
  let subject = `promote ${source.env} (${shortSha(source.commit)}) to ${target.env}: ${p.moves.map(moveName).join(', ')}`;
  if (subject.length > 120)
    subject = `promote ${source.env} (${shortSha(source.commit)}) to ${target.env}: ${p.moves.length} services`;
  const lines = p.moves.map((m) =>
    m.kind === 'new'
      ? `${m.service}: new, ${describeRelease(m.after)}`
      : `${m.service}: ${describeRelease(m.before ?? {})} → ${describeRelease(m.after)}${m.kind === 'all-fields' ? ' (all settings)' : ''}`,
  );
  return `${subject}\n\n${lines.join('\n')}\n\nPromoted-from: ${source.env} ${source.commit}\n`;
}

/** The pull request's title and body: the source commit, and the diff as a table. */
export function pullRequestText(
  p: PromotionPlan,
  source: Side,
  target: Side,
): { title: string; body: string } {
  let title = `Promote ${source.env} to ${target.env}: ${p.moves.map(moveName).join(', ')}`;
  if (title.length > 120) title = `Promote ${source.env} to ${target.env}: ${p.moves.length} services`;
  const parts = [
    `Promotes **${source.env}** at \`${source.commit}\` to **${target.env}** ` +
      `(branch \`${target.branch}\`, now at \`${shortSha(target.commit)}\`).`,
    '',
    markdownTable(p.moving, target, source),
  ];
  if (p.kept.length) {
    const list = p.kept.map((d) => `\`${d.service}\`: ${d.fields.map((f) => f.what).join(', ')}`).join('; ');
    parts.push(
      `Stays as ${target.env} has it (differs per environment; \`--all-fields\` carries it): ${list}.`,
      '',
    );
  }
  if (p.newLeftOut.length) {
    parts.push(
      `Only on ${source.env}, not carried (\`--include-new\` carries them): ${p.newLeftOut.map((n) => `\`${n}\``).join(', ')}.`,
      '',
    );
  }
  parts.push(`<sub>Written by \`berth promote\`; running it again updates this pull request.</sub>`);
  return { title, body: parts.join('\n') + '\n' };
}

/** How a promotion ended. */
export interface Promoted {
  source: Side;
  target: Side;
  mode: PromoteMode;
  plan?: PromotionPlan;
  /** The commit now on the target branch (push, merge) or on the pull request's branch (pr). */
  commit?: string;
  pullRequest?: PullRequest & { created: boolean; branch: string };
  /** Why nothing was done, when nothing was. */
  nothing?: string;
  tries: number;
}

/** The promotion branch a pull request comes from, one per source and target. */
export function promotionBranch(from: string, to: string): string {
  return `berth/promote-${from}-to-${to}`;
}

async function readSource(ws: Workspace, req: PromoteRequest, load: LoadRepo) {
  const env = await resolveEnv(ws, req.from);
  const head = env.files ?? (await ws.read(env.branch));
  let files = head;
  if (req.commit !== undefined) {
    if (!/^[0-9a-f]{4,64}$/i.test(req.commit)) {
      throw new UsageError(`--commit ${JSON.stringify(req.commit)}: expected a commit id (hex)`);
    }
    try {
      files = await ws.readCommit(req.commit, env.branch);
    } catch (e) {
      if (e instanceof UsageError)
        throw new UsageError(`--commit ${req.commit} is not a commit in ${ws.label}`);
      throw e;
    }
    if (!(await ws.isAncestor(files.commit, head.commit))) {
      throw new UsageError(
        `--commit ${req.commit} is not on ${envLabel(env)} (head ${shortSha(head.commit)}); promote only what was verified there`,
      );
    }
  }
  return { env, files, repo: loadOrThrow(files, load) };
}

export async function promote(
  ws: Workspace,
  req: PromoteRequest,
  opts: { load: LoadRepo; maxTries: number; onRetry?: (attempt: number, why: string) => void },
): Promise<Promoted> {
  return ws.exclusive(async () => {
    const source = await readSource(ws, req, opts.load);
    const toName = req.to ?? source.repo.settings?.environments[req.from]?.promoteTo;
    if (!toName) {
      throw new UsageError(
        `promote --from ${req.from}: no --to, and berth.yaml on ${envLabel(source.env)} declares no ` +
          `environments.${req.from}.promote_to`,
      );
    }
    if (toName === req.from) throw new UsageError(`--to ${toName} is the environment promoted from`);
    // The source's read fetched every branch: the target's branch is read from the cache.
    const targetEnv = await resolveEnv(ws, toName, source.repo, { fetch: false });
    if (targetEnv.branch === source.env.branch) {
      throw new UsageError(`${req.from} and ${toName} are the same branch (${targetEnv.branch})`);
    }
    const sourceSide = sideOf(source.env, source.files.commit);
    const src = { files: source.files, repo: source.repo, side: sourceSide };

    if (req.mode === 'merge') return merge(ws, src, targetEnv, opts.maxTries, opts.load, targetEnv.files);

    const first = targetEnv.files ?? (await ws.read(targetEnv.branch, { fetch: false }));
    const planFor = (files: BranchFiles) => {
      const repo = loadOrThrow(files, opts.load);
      const target = { files, repo, side: sideOf(targetEnv, files.commit) };
      const plan = planPromotion(src, target, req);
      if (plan.changes.length) {
        loadOrThrow({ ...files, files: applyChanges(files.files, plan.changes) }, opts.load);
      }
      return { plan, target: target.side };
    };

    if (req.mode === 'pr') {
      if (!req.pr) throw new Error('promote --pr without a platform');
      // The pull request's commit must sit on what the target holds now.
      const files = first.fresh ? first : await ws.read(targetEnv.branch);
      const { plan, target } = planFor(files);
      if (!plan.changes.length) {
        return {
          source: sourceSide,
          target,
          mode: 'pr',
          plan,
          nothing: nothingSaid(target, sourceSide),
          tries: 1,
        };
      }
      const branch = req.pr.branch ?? promotionBranch(req.from, toName);
      const commit = await ws.commit(files.commit, plan.changes, promotionMessage(plan, sourceSide, target));
      const pushed = await ws.push(commit, branch, { force: true });
      if (!pushed.ok) {
        throw new ExternalError(
          'git',
          `${ws.label} refused the push to ${branch}: ${pushed.summary} ${pushed.reason ?? ''}`.trim(),
        );
      }
      const text = pullRequestText(plan, sourceSide, target);
      const { pull, created } = await openOrUpdate(req.pr.platform, {
        head: branch,
        base: targetEnv.branch,
        title: text.title,
        body: text.body,
      });
      return {
        source: sourceSide,
        target,
        mode: 'pr',
        plan,
        commit,
        pullRequest: { ...pull, created, branch },
        tries: 1,
      };
    }

    let last: { plan: PromotionPlan; target: Side } | undefined;
    const landed = await land(ws, {
      branch: targetEnv.branch,
      maxTries: opts.maxTries,
      first,
      ...(opts.onRetry ? { onRetry: opts.onRetry } : {}),
      compute: (files) => {
        last = planFor(files);
        const { plan, target } = last;
        if (!plan.changes.length) return { kind: 'unchanged', result: undefined };
        return {
          kind: 'change',
          changes: plan.changes,
          message: promotionMessage(plan, sourceSide, target),
          result: undefined,
        };
      },
    });
    const { plan, target } = last!;
    if (!landed.commit) {
      return {
        source: sourceSide,
        target,
        mode: 'push',
        plan,
        nothing: nothingSaid(target, sourceSide),
        tries: landed.tries,
      };
    }
    return { source: sourceSide, target, mode: 'push', plan, commit: landed.commit, tries: landed.tries };
  });
}

function nothingSaid(target: Side, source: Side): string {
  return `${target.env} already has the releases of ${source.env} at ${shortSha(source.commit)}; nothing to promote`;
}

function applyChanges(files: Map<string, string>, changes: FileChange[]): Map<string, string> {
  const out = new Map(files);
  for (const c of changes) {
    if (c.content === null) out.delete(c.path);
    else out.set(c.path, c.content);
  }
  return out;
}

/**
 * `--merge`: move the target branch to the verified source commit, only as a fast-forward. A
 * target with commits the source lacks (a hotfix) is refused: merging would need a decision.
 */
async function merge(
  ws: Workspace,
  source: { files: BranchFiles; side: Side },
  targetEnv: { env: string; branch: string },
  maxTries: number,
  load: LoadRepo,
  first?: BranchFiles,
): Promise<Promoted> {
  let files = first;
  for (let attempt = 1; attempt <= maxTries; attempt++) {
    files = attempt === 1 && files?.fresh ? files : await ws.read(targetEnv.branch);
    const target = sideOf(targetEnv, files.commit);
    const s = source.side.commit;
    if (files.commit === s || (await ws.isAncestor(s, files.commit))) {
      return {
        source: source.side,
        target,
        mode: 'merge',
        nothing: `${target.env} already contains ${source.side.env} at ${shortSha(s)}; nothing to merge`,
        tries: attempt,
      };
    }
    if (!(await ws.isAncestor(files.commit, s))) {
      throw new UsageError(
        `${target.env} (at ${shortSha(files.commit)}) has commits that ${source.side.env} at ${shortSha(s)} lacks, ` +
          `such as a hotfix made there; --merge only fast-forwards. Bring them to ${source.side.env} first, ` +
          `or carry the releases with --push or --pr. Nothing was pushed.`,
      );
    }
    loadOrThrow(source.files, load);
    const pushed = await ws.push(s, targetEnv.branch);
    if (pushed.ok) return { source: source.side, target, mode: 'merge', commit: s, tries: attempt };
    if (!lostRace(pushed)) {
      throw new ExternalError(
        'git',
        `${ws.label} refused the push to ${targetEnv.branch}: ${pushed.summary} (${pushed.reason ?? ''}); nothing was changed`,
      );
    }
  }
  throw new ExternalError(
    'git',
    `gave up after ${maxTries} tries: ${targetEnv.branch} kept moving; nothing was changed by this run`,
  );
}
