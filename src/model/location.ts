/**
 * The one rule for "is this a URL?": a scheme, a colon and two slashes (`postgres://…`,
 * `https://…`, `file://…`), or a `sqlite:` prefix. Anything else is a path (git's scp-like
 * `user@host:repo` is a question for the git source alone, see source/read.ts isLocalRepo).
 */
export function urlScheme(location: string): string | undefined {
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(location) ?? /^(sqlite):/i.exec(location);
  return m ? m[1]!.toLowerCase() : undefined;
}
