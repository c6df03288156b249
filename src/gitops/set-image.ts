/**
 * `berth set-image`: CI's one step after pushing an image. Sets a service's release fields on an
 * environment's branch, as a commit that says what changed, pushed; safe to run from many jobs
 * at once (see land.ts).
 */
import { imageRefProblem } from '../config/image-ref.js';
import { UsageError } from '../model/errors.js';
import { editServiceFile, EditError, readRelease, type FieldEdits, type Release } from './edit.js';
import { land, type Attempt, type Landed } from './land.js';
import { commitMessage, compareBuilds, describeRelease, shortImage } from './release.js';
import { envLabel, findService, loadOrThrow, resolveEnv, type LoadRepo } from './repo.js';
import type { BranchFiles, Workspace } from './workspace.js';

/** What CI asks for. */
export interface SetImageRequest {
  service: string;
  env: string;
  image: string;
  gitCommit?: string;
  buildNumber?: string;
  /** Allow a build number lower than the branch's. */
  force?: boolean;
}

/** What happened to the service, for output. */
export interface SetImageResult {
  service: string;
  file: string;
  before: Partial<Release>;
  after: Partial<Release>;
}

/** Flag values that are wrong whatever the repo holds; checked before anything is read. */
export function checkSetImageRequest(req: SetImageRequest): void {
  const problem = imageRefProblem(req.image);
  if (problem)
    throw new UsageError(`--image ${JSON.stringify(req.image)} is not a valid image reference: ${problem}`);
  if (req.buildNumber !== undefined && !/^\d{1,30}$/.test(req.buildNumber)) {
    throw new UsageError(`--build ${JSON.stringify(req.buildNumber)}: expected a whole number, e.g. 124`);
  }
  if (req.gitCommit !== undefined && !/^[0-9A-Za-z._-]{1,100}$/.test(req.gitCommit)) {
    throw new UsageError(
      `--commit ${JSON.stringify(req.gitCommit)}: expected a commit id (letters, digits, ".", "_", "-"), e.g. 3f2a1c9d`,
    );
  }
}

/**
 * What a change is called: `build 124 (3f2a1c9)` when the CI metadata moved with it, else the
 * image (`image team/api:1.4.3`): a re-pushed image under the same build says so.
 */
export function changeName(before: Partial<Release>, after: Partial<Release>): { now: string; was: string } {
  const metadataMoved = before.buildNumber !== after.buildNumber || before.gitCommit !== after.gitCommit;
  if (metadataMoved && (after.buildNumber !== undefined || after.gitCommit !== undefined)) {
    return { now: describeRelease(after), was: describeRelease(before) };
  }
  return { now: `image ${shortImage(after.image ?? '')}`, was: `image ${shortImage(before.image ?? '')}` };
}

/** The subject of a set-image commit: `api: build 124 (3f2a1c9)`, or `api: image team/api:1.4.3`. */
export function setImageSubject(service: string, before: Partial<Release>, after: Partial<Release>): string {
  return `${service}: ${changeName(before, after).now}`;
}

/**
 * What set-image does to a branch as read. `modeOf` gives a file's git mode: a symlinked service
 * file is refused, since editing the link would replace it with a copy.
 */
export function planSetImage(
  files: BranchFiles,
  req: SetImageRequest,
  load: LoadRepo,
  where: string,
  modeOf: (file: string) => string | undefined = () => undefined,
): Attempt<SetImageResult> {
  const repo = loadOrThrow(files, load);
  const spec = findService(repo, req.service, where);
  const fileMode = modeOf(spec.file);
  if (fileMode === '120000') {
    throw new UsageError(`${spec.file} is a symlink on ${where}; set-image edits only regular files`);
  }
  const text = files.files.get(spec.file);
  if (text === undefined) throw new Error(`${spec.file} was loaded but not read`);
  const before = readRelease(text);
  const cmp = compareBuilds(req.buildNumber, before.buildNumber);
  if (cmp !== undefined && cmp < 0 && !req.force) {
    throw new UsageError(
      `${req.service}: build ${req.buildNumber} is lower than build ${before.buildNumber} on ${where}; ` +
        `refused, nothing was pushed (pass --force to go back on purpose, or use berth rollback)`,
    );
  }
  const edits: FieldEdits = { image: req.image };
  if (req.gitCommit !== undefined) edits.gitCommit = req.gitCommit;
  if (req.buildNumber !== undefined) edits.buildNumber = req.buildNumber;
  let out: string;
  try {
    out = editServiceFile(text, edits);
  } catch (e) {
    if (e instanceof EditError) throw new UsageError(`${spec.file} on ${where}: ${e.message}`);
    throw e;
  }
  const after = readRelease(out);
  const result: SetImageResult = { service: req.service, file: spec.file, before, after };
  if (out === text) return { kind: 'unchanged', result };
  // The edited repo must still be valid as a whole.
  loadOrThrow({ ...files, files: new Map(files.files).set(spec.file, out) }, load);
  return {
    kind: 'change',
    changes: [{ path: spec.file, content: out, ...(fileMode ? { mode: fileMode } : {}) }],
    message: commitMessage(setImageSubject(req.service, before, after), before, after),
    result,
  };
}

/** Run set-image against the remote: resolve the environment, then land the edit. */
export async function setImage(
  ws: Workspace,
  req: SetImageRequest,
  opts: { load: LoadRepo; maxTries: number; onRetry?: (attempt: number, why: string) => void },
): Promise<Landed<SetImageResult> & { branch: string }> {
  checkSetImageRequest(req);
  return ws.exclusive(async (waited) => {
    const env = await resolveEnv(ws, req.env, undefined, { fetch: !waited });
    const where = envLabel(env);
    const landed = await land(ws, {
      branch: env.branch,
      maxTries: opts.maxTries,
      ...(env.files ? { first: env.files } : {}),
      ...(opts.onRetry ? { onRetry: opts.onRetry } : {}),
      compute: async (files) => {
        const modes = await ws.modes(files.commit, [...files.files.keys()]);
        return planSetImage(files, req, opts.load, where, (file) => modes.get(file));
      },
    });
    return { ...landed, branch: env.branch };
  });
}
