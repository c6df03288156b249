/**
 * Local stand-ins for the hosted git platforms berth opens pull requests on. GitHub, GitLab and
 * Gitea cannot run here, so each fake is a small HTTP server on 127.0.0.1 that implements the
 * documented endpoints berth calls, with their paths, query parameters, auth headers, request and
 * response field names and their conflict answers:
 *
 *   GitHub  GET/POST /repos/{owner}/{repo}/pulls, PATCH /repos/{owner}/{repo}/pulls/{number}
 *           (Authorization: Bearer|token; `head` filter is `owner:branch`; 422 when a PR for the
 *           same head and base is open)
 *   GitLab  GET/POST /projects/{id}/merge_requests, PUT /projects/{id}/merge_requests/{iid}
 *           (PRIVATE-TOKEN; {id} is the URL-encoded path; 409 when one is open for the branch)
 *   Gitea   GET/POST /repos/{owner}/{repo}/pulls (paged by page/limit), PATCH .../pulls/{index}
 *           (Authorization: token; 409 when one is open for the same branches)
 *
 * Anything else is answered 404 and recorded in `unexpected`, which tests check is empty.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type PlatformName = 'github' | 'gitlab' | 'gitea';

/** A pull request as the fake server holds it. */
export interface FakePull {
  number: number;
  head: string;
  base: string;
  title: string;
  body: string;
  state: 'open' | 'closed';
}

export interface FakePlatform {
  name: PlatformName;
  /** The API root berth is given (`--api-url`). */
  apiUrl: string;
  token: string;
  /** `owner/name` (GitLab: group/.../name). */
  project: string;
  /** The server's state; tests may add pull requests or close them. */
  pulls: FakePull[];
  /** `METHOD path?query` of every request, in order. */
  requests: string[];
  /** Requests that matched no documented endpoint. */
  unexpected: string[];
  /** Environment that gives berth this server's token. */
  env(): Record<string, string>;
  stop(): Promise<void>;
}

interface Ctx {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

type Answer = { status: number; json: unknown };

const TOKEN_VARS: Record<PlatformName, string> = {
  github: 'GITHUB_TOKEN',
  gitlab: 'GITLAB_TOKEN',
  gitea: 'GITEA_TOKEN',
};

export async function startFakePlatform(
  name: PlatformName,
  opts: { token?: string; project?: string } = {},
): Promise<FakePlatform> {
  const token = opts.token ?? `tok-${name}-0123456789abcdef`;
  const project = opts.project ?? (name === 'gitlab' ? 'ops/infra/state' : 'ops/state');
  const pulls: FakePull[] = [];
  const requests: string[] = [];
  const unexpected: string[] = [];
  let base = '';
  const web = (n: number) =>
    name === 'gitlab'
      ? `https://gitlab.invalid/${project}/-/merge_requests/${n}`
      : `https://${name}.invalid/${project}/pull/${n}`;
  const next = () => pulls.reduce((m, p) => Math.max(m, p.number), 0) + 1;

  const authorized = (h: http.IncomingHttpHeaders): boolean => {
    if (name === 'gitlab') return h['private-token'] === token;
    const a = h.authorization ?? '';
    if (name === 'github') return a === `Bearer ${token}` || a === `token ${token}`;
    return a === `token ${token}`;
  };

  const ghPull = (p: FakePull) => ({
    number: p.number,
    html_url: web(p.number),
    state: p.state,
    title: p.title,
    body: p.body,
    head: { ref: p.head, label: `${project.split('/')[0]}:${p.head}` },
    base: { ref: p.base },
  });
  const glMr = (p: FakePull) => ({
    iid: p.number,
    id: 1000 + p.number,
    web_url: web(p.number),
    state: p.state === 'open' ? 'opened' : 'closed',
    title: p.title,
    description: p.body,
    source_branch: p.head,
    target_branch: p.base,
  });

  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

  /** The documented endpoints; undefined means "no such endpoint". */
  const route = (c: Ctx): Answer | undefined => {
    if (name === 'github' || name === 'gitea') {
      const prefix = `/repos/${project}/pulls`;
      if (c.path === prefix && c.method === 'GET') {
        let list = pulls.filter((p) => p.state === (c.query.get('state') ?? 'open'));
        if (name === 'github') {
          const head = c.query.get('head');
          if (head) list = list.filter((p) => `${project.split('/')[0]}:${p.head}` === head);
          const b = c.query.get('base');
          if (b) list = list.filter((p) => p.base === b);
          return { status: 200, json: list.slice(0, Number(c.query.get('per_page') ?? 30)).map(ghPull) };
        }
        const limit = Number(c.query.get('limit') ?? 30);
        const page = Number(c.query.get('page') ?? 1);
        return { status: 200, json: list.slice((page - 1) * limit, page * limit).map(ghPull) };
      }
      if (c.path === prefix && c.method === 'POST') {
        const [title, head, b, body] = [
          str(c.body.title),
          str(c.body.head),
          str(c.body.base),
          str(c.body.body) ?? '',
        ];
        if (!title || !head || !b) return { status: 422, json: { message: 'Validation Failed' } };
        if (pulls.some((p) => p.state === 'open' && p.head === head && p.base === b)) {
          return name === 'github'
            ? {
                status: 422,
                json: {
                  message: 'Validation Failed',
                  errors: [{ message: `A pull request already exists for ${head}.` }],
                },
              }
            : { status: 409, json: { message: 'pull request already exists for these targets' } };
        }
        const p: FakePull = { number: next(), head, base: b, title, body, state: 'open' };
        pulls.push(p);
        return { status: 201, json: ghPull(p) };
      }
      const m = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/(\\d+)$`).exec(c.path);
      if (m && c.method === 'PATCH') {
        const p = pulls.find((x) => x.number === Number(m[1]));
        if (!p) return { status: 404, json: { message: 'Not Found' } };
        if (str(c.body.title) !== undefined) p.title = str(c.body.title)!;
        if (str(c.body.body) !== undefined) p.body = str(c.body.body)!;
        return { status: 200, json: ghPull(p) };
      }
      return undefined;
    }
    const prefix = `/projects/${encodeURIComponent(project)}/merge_requests`;
    if (c.path === prefix && c.method === 'GET') {
      const state = c.query.get('state') === 'opened' ? 'open' : 'closed';
      let list = pulls.filter((p) => p.state === state);
      const src = c.query.get('source_branch');
      if (src) list = list.filter((p) => p.head === src);
      const tgt = c.query.get('target_branch');
      if (tgt) list = list.filter((p) => p.base === tgt);
      return { status: 200, json: list.map(glMr) };
    }
    if (c.path === prefix && c.method === 'POST') {
      const [head, b, title, body] = [
        str(c.body.source_branch),
        str(c.body.target_branch),
        str(c.body.title),
        str(c.body.description) ?? '',
      ];
      if (!head || !b || !title) return { status: 400, json: { error: 'title is missing' } };
      const open = pulls.find((p) => p.state === 'open' && p.head === head && p.base === b);
      if (open) {
        return {
          status: 409,
          json: {
            message: [`Another open merge request already exists for this source branch: !${open.number}`],
          },
        };
      }
      const p: FakePull = { number: next(), head, base: b, title, body, state: 'open' };
      pulls.push(p);
      return { status: 201, json: glMr(p) };
    }
    const m = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/(\\d+)$`).exec(c.path);
    if (m && c.method === 'PUT') {
      const p = pulls.find((x) => x.number === Number(m[1]));
      if (!p) return { status: 404, json: { message: '404 Not found' } };
      if (str(c.body.title) !== undefined) p.title = str(c.body.title)!;
      if (str(c.body.description) !== undefined) p.body = str(c.body.description)!;
      return { status: 200, json: glMr(p) };
    }
    return undefined;
  };

  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (raw += d));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      // GitLab's project id stays encoded (%2F) in the raw path; match on the raw path.
      const rawPath = (req.url ?? '/').split('?')[0]!;
      const path =
        name === 'gitlab' ? rawPath.replace(/^\/api\/v4/, '') : url.pathname.replace(/^\/api\/v[13]/, '');
      requests.push(`${req.method} ${path}${url.search}`);
      const send = (a: Answer) => {
        res.writeHead(a.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(a.json));
      };
      if (!authorized(req.headers)) {
        return send({
          status: 401,
          json: { message: name === 'gitlab' ? '401 Unauthorized' : 'Bad credentials' },
        });
      }
      let body: Record<string, unknown> = {};
      if (raw) {
        try {
          body = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          unexpected.push(`${req.method} ${path}: body is not JSON`);
          return send({ status: 400, json: { message: 'Problems parsing JSON' } });
        }
      }
      const answer = route({
        method: req.method ?? 'GET',
        path,
        query: url.searchParams,
        headers: req.headers,
        body,
      });
      if (!answer) {
        unexpected.push(`${req.method} ${path}${url.search}`);
        return send({ status: 404, json: { message: 'Not Found' } });
      }
      send(answer);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}${name === 'github' ? '/api/v3' : name === 'gitlab' ? '/api/v4' : '/api/v1'}`;
  let stopped: Promise<void> | undefined;
  return {
    name,
    apiUrl: base,
    token,
    project,
    pulls,
    requests,
    unexpected,
    env: () => ({ [TOKEN_VARS[name]]: token }),
    stop: () =>
      (stopped ??= new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      })),
  };
}

/**
 * The contract harness (src/gitops/platforms/contract.ts) for a fake server: clients made the
 * way berth makes them (openPlatform, with --api-url), and the server's own view of its state.
 */
export function fakeHarness(
  fake: FakePlatform,
  deadPort: number,
  open: (
    name: string,
    o: { repo: string; project: string; apiUrl: string; env: Record<string, string> },
  ) => unknown,
) {
  const client = (token = fake.token, apiUrl = fake.apiUrl) =>
    open(fake.name, {
      repo: 'file:///nowhere/state.git',
      project: fake.project,
      apiUrl,
      env: { [TOKEN_VARS[fake.name]]: token },
    });
  return {
    client,
    unreachable: () => client(fake.token, `http://127.0.0.1:${deadPort}/api`),
    token: fake.token,
    open: () => fake.pulls.filter((p) => p.state === 'open'),
    reset: () => {
      fake.pulls.length = 0;
      fake.unexpected.length = 0;
    },
    unexpected: () => [...fake.unexpected],
  };
}
