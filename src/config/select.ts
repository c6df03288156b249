import { ConfigError, UsageError } from '../model/errors.js';
import type { DesiredState, HostRollout, Inventory, InventoryHost, StateRepo } from '../model/service.js';
import { looksLikeTemplate, parseTemplate } from '../template/parse.js';
import { renderTemplate, type RenderContext, type SecretAnswer } from '../template/render.js';
import { mapStrings, renderService, type HostContext } from './templates.js';
import { dotted } from './yaml-file.js';

/** What templates need beyond the repo and the host. */
export interface RenderOptions {
  /**
   * The environment's name, as templates read `env`. Default: the environment of berth.yaml
   * whose branch is `repo.ref`, else `repo.ref` itself.
   */
  env?: string;
  /**
   * Secret lookup: the value, undefined when there is no such secret, or why it could not be
   * read (a failed decryption). Asked at most once per secret per call. Without it, a service
   * using a secret is held (see `DesiredState.held`).
   */
  secret?: (name: string) => SecretAnswer;
}

/**
 * The host as templates see it when there is no inventory: pure code, so no OS hostname. It is
 * named as `--host` names it, else "localhost", and reached at 127.0.0.1, which is right for the
 * host itself under the default host network mode; no groups, no vars.
 */
function localHost(name: string | undefined): InventoryHost {
  return { name: name ?? 'localhost', address: '127.0.0.1', groups: [], vars: {} };
}

/** A host with its groups' vars merged under its own; groups in the order it lists them, later wins. */
function withGroupVars(h: InventoryHost, inv: Inventory): InventoryHost {
  const vars: Record<string, unknown> = {};
  for (const g of h.groups) Object.assign(vars, inv.groups[g]?.vars);
  Object.assign(vars, h.vars);
  return { name: h.name, address: h.address, groups: [...h.groups], vars };
}

function environmentName(repo: StateRepo): string {
  const envs = Object.entries(repo.settings?.environments ?? {});
  return envs.find(([, e]) => e.branch === repo.ref)?.[0] ?? repo.ref;
}

/**
 * What one host should run. Without an inventory every service runs everywhere. With one,
 * `host` must be an inventory host, and a service runs there when its `hosts:` is absent or
 * names the host or one of its groups.
 *
 * Every templated value is rendered for the host. A service whose values cannot be rendered (a
 * missing secret, a missing host var) is left out of `services`, listed in `failed` with its
 * issues and named in `held`, so that only its change stops and its container is left alone.
 * @throws UsageError when the repo has an inventory and `host` is missing or not in it.
 */
export function desiredForHost(repo: StateRepo, host?: string, opts: RenderOptions = {}): DesiredState {
  const base: DesiredState = { ref: repo.ref, envDir: repo.envDir, services: repo.services };
  if (repo.commit !== undefined) base.commit = repo.commit;
  if (host !== undefined) base.host = host;
  const inv = repo.inventory;
  const env = opts.env ?? environmentName(repo);
  const secret = opts.secret && memo(opts.secret);
  if (!inv) return render(base, { host: localHost(host), groups: {}, env, secret }, repo);

  const known = inv.hosts.map((h) => h.name).sort();
  const list = known.length ? known.join(', ') : 'none: inventory.yaml lists no hosts';
  if (host === undefined)
    throw new UsageError(`this repo has an inventory; pass --host NAME (one of: ${list})`);
  const h = inv.hosts.find((x) => x.name === host);
  if (!h) throw new UsageError(`host ${JSON.stringify(host)} is not in the inventory (known hosts: ${list})`);

  const hosts = inv.hosts.map((x) => withGroupVars(x, inv));
  const groups: Record<string, InventoryHost[]> = {};
  for (const g of Object.keys(inv.groups)) groups[g] = hosts.filter((x) => x.groups.includes(g));
  const mine = new Set([h.name, ...h.groups]);
  return render(
    {
      ...base,
      services: repo.services.filter((s) => s.hosts === undefined || s.hosts.some((t) => mine.has(t))),
    },
    { host: hosts.find((x) => x.name === host)!, groups, env, secret },
    repo,
  );
}

function render(selected: DesiredState, ctx: HostContext, repo?: StateRepo): DesiredState {
  const out: DesiredState = { ...selected, address: ctx.host.address, services: [] };
  if (repo) {
    const lb = loadBalancerFor(repo, ctx);
    if (lb) out.loadBalancer = lb;
    out.env = ctx.env;
    out.rollout = rolloutFor(repo, ctx);
  }
  const failed: NonNullable<DesiredState['failed']> = [];
  for (const s of selected.services) {
    const r = renderService(s, ctx);
    if (r.ok) out.services.push(r.spec);
    else failed.push({ service: s.name, issues: r.issues });
  }
  if (failed.length) {
    out.failed = failed;
    out.held = failed.map((f) => f.service);
  }
  return out;
}

/** How long a lease lasts when its holder stops renewing it, unless berth.yaml says otherwise. */
export const DEFAULT_LEASE_EXPIRY_MS = 30_000;
/** The group of hosts the inventory puts in no group, as Ansible names it. */
export const UNGROUPED = 'ungrouped';

/**
 * The leases this host takes before it leaves rotation: one in each of its inventory groups
 * (or in `ungrouped`), each capped by `rollout.max_unavailable` of that group's hosts, within the
 * environment (and berth.yaml's `project`), so staging and production never wait for each other.
 */
function rolloutFor(repo: StateRepo, ctx: HostContext): HostRollout {
  const hosts = repo.inventory?.hosts ?? [];
  const size = (group: string) =>
    Math.max(
      1,
      hosts.filter((h) => (group === UNGROUPED ? h.groups.length === 0 : h.groups.includes(group))).length,
    );
  const names = ctx.host.groups.length ? [...new Set(ctx.host.groups)] : [UNGROUPED];
  const r = repo.settings?.rollout;
  const project = repo.settings?.project;
  return {
    scope: project ? `${project}/${ctx.env}` : ctx.env,
    groups: names.map((name) => ({ name, size: size(name) })),
    maxUnavailable: r?.maxUnavailable ?? 1,
    leaseExpiryMs: r?.leaseExpiryMs ?? DEFAULT_LEASE_EXPIRY_MS,
  };
}

function memo(lookup: (name: string) => SecretAnswer): (name: string) => SecretAnswer {
  const seen = new Map<string, SecretAnswer>();
  return (name) => {
    if (!seen.has(name)) seen.set(name, lookup(name));
    return seen.get(name);
  };
}

/**
 * The host's load balancer: berth.yaml's `load_balancer`, overridden key by key by a
 * `load_balancer` map in the host's vars (group vars under host vars), every string rendered
 * for the host (`server: "{{ host.name }}"`). Secrets are not available here.
 */
function loadBalancerFor(repo: StateRepo, ctx: HostContext): DesiredState['loadBalancer'] {
  const fromVars = ctx.host.vars.load_balancer;
  const merged: Record<string, unknown> = {
    ...repo.settings?.loadBalancer,
    ...(fromVars && typeof fromVars === 'object' && !Array.isArray(fromVars) ? fromVars : {}),
  };
  const { provider, ...rest } = merged;
  if (typeof provider !== 'string' || provider === '') return undefined;
  const rctx: RenderContext = { host: ctx.host, groups: ctx.groups, env: ctx.env, service: {} };
  const settings = mapStrings(rest, ['load_balancer'], (v, where) => {
    if (!looksLikeTemplate(v)) return v;
    const parsed = parseTemplate(v);
    const r = parsed.ok ? renderTemplate(parsed.template, rctx) : parsed;
    if (!r.ok) {
      throw new ConfigError([
        {
          file: 'berth.yaml',
          path: dotted(where),
          message: `${r.error.message} (for host ${ctx.host.name})`,
          severity: 'error',
        },
      ]);
    }
    return r.value;
  });
  return { provider, settings: settings as Record<string, unknown> };
}
