/**
 * A service's story on one branch, from git alone: each commit that changed its file, newest
 * first, with the release it left behind. What `history --git` prints and what `rollback`
 * chooses from.
 */
import { ConfigError } from '../model/errors.js';
import { when } from '../store/format.js';
import { EditError, readRelease, type Release } from './edit.js';
import { describeRelease, sameRelease, shortImage, shortSha } from './release.js';
import { findService, loadOrThrow, type LoadRepo } from './repo.js';
import type { BranchFiles, Workspace } from './workspace.js';

/** What a commit did to the service. */
export type StoryChange = 'added' | 'release' | 'settings' | 'removed' | 'unreadable';

/** One commit in a service's story. */
export interface StoryEntry {
  /** The state repo commit (on the branch's first-parent line). */
  commit: string;
  /** When it entered the branch (the commit's committer date, ISO 8601). */
  date: string;
  /** Who made it: the commit's author. */
  author: string;
  authorEmail: string;
  subject: string;
  change: StoryChange;
  /** The release the file holds after this commit; undefined when removed or unreadable. */
  release?: Partial<Release>;
}

/**
 * The story of `service` as of the branch files given (newest first). The file is the one the
 * service has now; a repo that does not load still gives its story when the file is found by
 * its usual name, since this is what one reads to find out what broke.
 */
export async function serviceStory(
  ws: Workspace,
  files: BranchFiles,
  service: string,
  load: LoadRepo,
  opts: { limit?: number } = {},
): Promise<{ file: string; entries: StoryEntry[] }> {
  let file: string;
  try {
    file = findService(loadOrThrow(files, load), service, files.branch).file;
  } catch (e) {
    const guess = [`services/${service}.yaml`, `services/${service}.yml`].find((f) => files.files.has(f));
    if (!(e instanceof ConfigError) || !guess) throw e;
    file = guess;
  }
  const log = await ws.fileLog(files.commit, file, opts.limit);
  const texts = await ws.blobs(log.flatMap((c) => (c.blob ? [c.blob] : [])));
  // Oldest first, to say what each commit changed compared with the one before it.
  const entries: StoryEntry[] = [];
  let prev: Partial<Release> | undefined;
  let existed = false;
  for (const c of [...log].reverse()) {
    const base = {
      commit: c.commit,
      date: c.committerDate,
      author: c.authorName,
      authorEmail: c.authorEmail,
      subject: c.subject,
    };
    if (!c.blob) {
      entries.push({ ...base, change: 'removed' });
      prev = undefined;
      existed = false;
      continue;
    }
    let release: Partial<Release> | undefined;
    try {
      const text = texts.get(c.blob);
      release = text === undefined ? undefined : readRelease(text);
    } catch (e) {
      if (!(e instanceof EditError)) throw e;
    }
    if (!release) {
      entries.push({ ...base, change: 'unreadable' });
      continue;
    }
    const change: StoryChange = !existed
      ? 'added'
      : prev && sameRelease(prev, release)
        ? 'settings'
        : 'release';
    entries.push({ ...base, change, release });
    prev = release;
    existed = true;
  }
  return { file, entries: entries.reverse() };
}

const HEADERS = ['WHEN', 'COMMIT', 'BY', 'CHANGE', 'RELEASE', 'IMAGE'] as const;

/** The story as an aligned table for people. */
export function formatStory(entries: readonly StoryEntry[], opts: { utc?: boolean } = {}): string {
  if (entries.length === 0) return 'No commits changed this service on the branch.\n';
  const rows = entries.map((e) => [
    when(e.date, opts.utc ?? false),
    shortSha(e.commit),
    e.author.replace(/\s+/g, ' '),
    e.change,
    e.release && (e.release.buildNumber !== undefined || e.release.gitCommit !== undefined)
      ? describeRelease(e.release)
      : '-',
    e.release?.image ? shortImage(e.release.image) : '-',
  ]);
  const widths = HEADERS.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(HEADERS), ...rows.map(line)].join('\n') + '\n';
}
