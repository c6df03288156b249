/**
 * Releases as people talk about them: "build 124 (3f2a1c9)". Pure helpers shared by set-image,
 * rollback, promote, diff and history, so each says the same thing the same way.
 */
import { short } from '../store/format.js';
import type { Release } from './edit.js';

/** Short form of a CI commit id, as git shows it. */
export function shortSha(sha: string): string {
  return /^[0-9a-f]{8,}$/i.test(sha) ? sha.slice(0, 7) : sha;
}

/** The short form of an image berth shows everywhere: `api:1.4.3` (see store/format.ts). */
export const shortImage = short;

/**
 * Compare two build numbers numerically: negative when `a` is lower. Undefined when either is
 * missing or not a whole number, which cannot be ordered.
 */
export function compareBuilds(a: string | undefined, b: string | undefined): number | undefined {
  if (a === undefined || b === undefined || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return undefined;
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** "build 124 (3f2a1c9)", "build 124", "3f2a1c9" or the short image: what this release is called. */
export function describeRelease(r: Partial<Release>): string {
  const commit = r.gitCommit ? shortSha(r.gitCommit) : undefined;
  if (r.buildNumber !== undefined) return `build ${r.buildNumber}${commit ? ` (${commit})` : ''}`;
  if (commit) return `commit ${commit}`;
  return r.image ? shortImage(r.image) : 'nothing';
}

/** Whether two releases are the same build (every release field equal). */
export function sameRelease(a: Partial<Release>, b: Partial<Release>): boolean {
  return a.image === b.image && a.gitCommit === b.gitCommit && a.buildNumber === b.buildNumber;
}

/** One line per release field that differs: `image: a → b`, for a commit message's body. */
export function releaseChanges(before: Partial<Release>, after: Partial<Release>): string[] {
  const lines: string[] = [];
  for (const f of ['image', 'gitCommit', 'buildNumber'] as const) {
    if (before[f] === after[f]) continue;
    lines.push(`${f}: ${before[f] ?? '(none)'} → ${after[f] ?? '(none)'}`);
  }
  return lines;
}

/** A commit message: a subject that says what the service now runs, and each field's change. */
export function commitMessage(subject: string, before: Partial<Release>, after: Partial<Release>): string {
  const body = releaseChanges(before, after);
  return body.length ? `${subject}\n\n${body.join('\n')}\n` : `${subject}\n`;
}
