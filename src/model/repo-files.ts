import type { ConfigIssue } from './errors.js';

/** The state repo's files as berth reads them: what src/source gives and src/config loads. */
export interface RepoFiles {
  /** Path from the repo root (`/`-separated) → UTF-8 content, for every file berth may read. */
  files: Map<string, string>;
  /** The commit the files are exactly the content of; undefined for a dirty or non-git folder. */
  commit?: string;
  /** What was read, for people: a branch, a tag or sha as given, or "working tree". */
  ref: string;
  /**
   * Files that exist but could not be read safely (a symlink leaving the repo, too large, not
   * UTF-8). They are missing from `files`, so whoever loads the repo must refuse it: a missing
   * service file would mean "remove this service". Reported with every other problem.
   */
  unreadable?: ConfigIssue[];
}
