import { UsageError } from '../../model/errors.js';
import { isLocalRepo } from '../../source/read.js';
import { giteaPlugin } from './gitea.js';
import { githubPlugin } from './github.js';
import { gitlabPlugin } from './gitlab.js';
import type { Platform, PlatformPlugin, PullRequest, PullRequestSpec } from './types.js';

/** Every git hosting platform berth can open pull requests on, by the name `--pr` takes. */
export const platforms: ReadonlyMap<string, PlatformPlugin> = new Map<string, PlatformPlugin>([
  [githubPlugin.name, githubPlugin],
  [gitlabPlugin.name, gitlabPlugin],
  [giteaPlugin.name, giteaPlugin],
]);

/** Deadline of one API request. */
export const PLATFORM_TIMEOUT_MS = 30_000;

/**
 * Where a git URL's repo is hosted and its path there: `git@github.com:team/state.git`,
 * `https://gitlab.example.com/ops/infra/state`, `ssh://git@host:2222/team/state.git`. Undefined
 * for a local path or file:// URL, which no platform hosts.
 */
export function hostedAt(repo: string): { host: string; project: string } | undefined {
  if (isLocalRepo(repo) || /^file:/i.test(repo)) return undefined;
  let host: string;
  let p: string;
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(repo) ? URL.parse(repo) : undefined;
  if (url) {
    host = url.hostname;
    p = decodeURIComponent(url.pathname);
  } else {
    const m = /^(?:[^@/]+@)?([^:/]+):(.+)$/.exec(repo);
    if (!m) return undefined;
    host = m[1]!;
    p = m[2]!;
  }
  const project = p
    .replace(/^\/+/, '')
    .replace(/\/+$/, '')
    .replace(/\.git$/, '');
  return host && project ? { host, project } : undefined;
}

/** What `openPlatform` needs to know; `env` is where tokens and API roots are looked up. */
export interface PlatformOptions {
  repo: string;
  project?: string;
  apiUrl?: string;
  env: NodeJS.ProcessEnv;
}

/** The plugin named `name`; a UsageError listing the known ones otherwise. */
export function getPlatform(name: string): PlatformPlugin {
  const plugin = platforms.get(name);
  if (!plugin) {
    throw new UsageError(
      `--pr ${JSON.stringify(name)}: unknown platform; known: ${[...platforms.keys()].sort().join(', ')}`,
    );
  }
  return plugin;
}

/**
 * A client for the repo's project on platform `name`: the token from the platform's usual
 * variables, the project from --project or the repo's URL, the API root from --api-url, the
 * platform's variable, or the repo's host. Every missing piece is a UsageError naming how to give
 * it, raised before anything is pushed.
 */
export function openPlatform(name: string, o: PlatformOptions): Platform {
  const plugin = getPlatform(name);
  const tokenVar = plugin.tokenEnv.find((v) => o.env[v]);
  if (!tokenVar) throw new UsageError(`--pr ${name} needs a token in ${plugin.tokenEnv.join(' or ')}`);
  const hosted = hostedAt(o.repo);
  const project = o.project ?? hosted?.project;
  if (!project) {
    throw new UsageError(
      `--pr ${name}: cannot tell the project from --repo ${o.repo}; give --project owner/name`,
    );
  }
  const envUrl = plugin.apiUrlEnv.map((v) => o.env[v]).find(Boolean);
  const apiUrl = o.apiUrl ?? envUrl ?? (hosted ? plugin.apiUrlFor(hosted.host) : undefined);
  if (!apiUrl) {
    throw new UsageError(
      `--pr ${name}: cannot tell the API address from --repo ${o.repo}; give --api-url URL`,
    );
  }
  if (!/^https?:\/\/[^\s]+$/.test(apiUrl) || !URL.canParse(apiUrl)) {
    throw new UsageError(`--api-url ${JSON.stringify(apiUrl)} is not an http:// or https:// URL`);
  }
  return plugin.create({
    apiUrl: apiUrl.replace(/\/+$/, ''),
    token: o.env[tokenVar]!,
    project,
    timeoutMs: PLATFORM_TIMEOUT_MS,
  });
}

/** Open a pull request from `spec.head` into `spec.base`, or update the open one: never two. */
export async function openOrUpdate(
  p: Platform,
  spec: PullRequestSpec,
): Promise<{ pull: PullRequest; created: boolean }> {
  const open = await p.findOpen(spec.head, spec.base);
  if (open)
    return { pull: await p.update(open.number, { title: spec.title, body: spec.body }), created: false };
  return { pull: await p.create(spec), created: true };
}
