/**
 * `berth rollback`: a new commit that gives a service back an earlier release from its own file's
 * history on the branch. History is never rewritten: the bad build stays in the log, and the
 * rollback is one more commit that says from what to what.
 */
import { UsageError } from '../model/errors.js';
import { editServiceFile, readRelease, type Release } from './edit.js';
import { serviceStory, type StoryEntry } from './history.js';
import { land, type Attempt, type Landed } from './land.js';
import { commitMessage, compareBuilds, describeRelease, sameRelease, shortSha } from './release.js';
import { envLabel, findService, loadOrThrow, resolveEnv, type LoadRepo } from './repo.js';
import type { Workspace } from './workspace.js';

export interface RollbackRequest {
  service: string;
  env: string;
  /** A build number, a CI commit (gitCommit, 4+ hex digits) or a state repo commit; default: the previous build. */
  to?: string;
}

export interface RollbackResult {
  service: string;
  file: string;
  before: Partial<Release>;
  after: Partial<Release>;
  /** The state repo commit whose release was restored. */
  from: string;
}

/**
 * Which earlier release to go back to. Without `to`: going back from the release the file holds
 * now, the first one that differs from it and (when both have whole build numbers) is lower, so
 * a second rollback goes further back rather than forward again. With `to`: the newest release
 * whose buildNumber is `to`, else whose gitCommit starts with it, else the release of the state
 * commit it names.
 */
export function chooseTarget(
  entries: readonly StoryEntry[],
  current: Partial<Release>,
  to?: string,
  where = 'the branch',
): StoryEntry {
  const releases = entries.filter((e) => e.release && (e.change === 'release' || e.change === 'added'));
  if (to === undefined) {
    const target = releases.find(
      (e) =>
        !sameRelease(e.release!, current) &&
        (compareBuilds(e.release!.buildNumber, current.buildNumber) ?? -1) < 0,
    );
    if (!target) {
      throw new UsageError(
        `${where}: there is no earlier build to roll back to (now ${describeRelease(current)})`,
      );
    }
    return target;
  }
  const byBuild = releases.find((e) => e.release!.buildNumber === to);
  if (byBuild) return byBuild;
  if (/^[0-9a-f]{4,64}$/i.test(to)) {
    const prefix = to.toLowerCase();
    // A prefix of one gitCommit may name several releases (an image pushed again for one
    // commit): the newest is meant. A prefix of two different commits is ambiguous.
    for (const key of [(e: StoryEntry) => e.release!.gitCommit, (e: StoryEntry) => e.commit]) {
      const found = releases.filter((e) => key(e)?.toLowerCase().startsWith(prefix));
      const distinct = [...new Set(found.map((e) => key(e)!))];
      if (distinct.length > 1) {
        throw new UsageError(
          `--to ${to} matches more than one commit on ${where} (${distinct.map(shortSha).join(', ')}); give more digits`,
        );
      }
      if (found[0]) return found[0];
    }
  }
  const known = [...new Set(releases.map((e) => e.release!.buildNumber).filter(Boolean))].slice(0, 10);
  throw new UsageError(
    `--to ${to}: no release on ${where} has that build number, gitCommit or state commit` +
      (known.length ? ` (builds: ${known.join(', ')})` : ''),
  );
}

export async function rollback(
  ws: Workspace,
  req: RollbackRequest,
  opts: { load: LoadRepo; maxTries: number; onRetry?: (attempt: number, why: string) => void },
): Promise<Landed<RollbackResult> & { branch: string }> {
  return ws.exclusive(async () => {
    const env = await resolveEnv(ws, req.env);
    const where = envLabel(env);
    const landed = await land(ws, {
      branch: env.branch,
      maxTries: opts.maxTries,
      ...(env.files ? { first: env.files } : {}),
      ...(opts.onRetry ? { onRetry: opts.onRetry } : {}),
      compute: async (files): Promise<Attempt<RollbackResult>> => {
        const repo = loadOrThrow(files, opts.load);
        const spec = findService(repo, req.service, where);
        const mode = (await ws.modes(files.commit, [spec.file])).get(spec.file);
        if (mode === '120000')
          throw new UsageError(`${spec.file} is a symlink on ${where}; rollback edits only regular files`);
        const text = files.files.get(spec.file)!;
        const before = readRelease(text);
        const { entries } = await serviceStory(ws, files, req.service, opts.load);
        const target = chooseTarget(entries, before, req.to, `${req.service} on ${where}`);
        const t = target.release!;
        const out = editServiceFile(text, {
          image: t.image!,
          gitCommit: t.gitCommit ?? null,
          buildNumber: t.buildNumber ?? null,
        });
        const after = readRelease(out);
        const result = { service: req.service, file: spec.file, before, after, from: target.commit };
        if (out === text) return { kind: 'unchanged', result };
        loadOrThrow({ ...files, files: new Map(files.files).set(spec.file, out) }, opts.load);
        const subject = `${req.service}: rollback ${describeRelease(before)} → ${describeRelease(after)}`;
        const message =
          commitMessage(subject, before, after) +
          `\nRestores the release of ${shortSha(target.commit)} (${target.subject}).\n`;
        return {
          kind: 'change',
          changes: [{ path: spec.file, content: out, ...(mode ? { mode } : {}) }],
          message,
          result,
        };
      },
    });
    return { ...landed, branch: env.branch };
  });
}
