import type { ConfigIssue } from '../model/errors.js';
import type { Inventory, RepoSettings, ServiceSpec, StateRepo, TemplateSource } from '../model/service.js';
import type { TemplateSchema } from '../template/check.js';
import { FIELD_LIST, SERVICE_TEMPLATE_FIELDS, type ServiceField } from './fields.js';
import { byPosition, fromZod, kindOf, suggest } from './issues.js';
import {
  berthSchema,
  inventorySchema,
  keyedServiceSchema,
  SAFE_NAME,
  reservedNameProblem,
  serviceSchema,
  type BerthInput,
  type InventoryInput,
  type ServiceInput,
} from './schema.js';
import { toAgentSettings } from './agent-schema.js';
import { checkServiceTemplates, checkSettingsTemplates } from './templates.js';
import { checkFiles, isTemplateOnly, volumeCollisions, type FilesAt } from './files.js';
import type { ServiceFile } from '../model/files.js';
import { hasTemplate } from './schema-parts.js';
import { issueAt, parseYamlFile, type YamlFile, type YamlPath } from './yaml-file.js';
import type { RepoFiles } from '../model/repo-files.js';

export type { RepoFiles };

/** The model and every problem found; `repo` is undefined when any issue is an error. */
export interface LoadResult {
  repo?: StateRepo;
  issues: ConfigIssue[];
}

const BERTH_FILE = 'berth.yaml';
const INVENTORY_FILE = 'inventory.yaml';
const DEFAULT_ENV_DIR = '/etc/berth/env';
const DEFAULT_SECRETS_DIR = '/etc/berth/secrets';
const DEFAULT_SERVICES_DIR = 'services';
const DEFAULT_SMOKE_TIMEOUT_MS = 10_000;

const FIELDS = new Map<string, ServiceField>(FIELD_LIST);

/** Inside a service body: fields whose YAML numbers and booleans are really strings. */
function stringishField(p: YamlPath): boolean {
  const [key, sub] = p;
  const text = typeof key === 'string' ? FIELDS.get(key)?.text : undefined;
  if (p.length === 1) return text === 'value';
  if (p.length === 2) return text === 'map' || (text === 'items' && typeof sub === 'number');
  return typeof key === 'string' && (FIELDS.get(key)?.textAt?.(p.slice(1)) ?? false);
}

const SERVICE_KEYS = new Set(Object.keys(serviceSchema.shape));

function isMapValue(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * The top-level key of a service file written in the reference design's keyed form (one key
 * holding the service's fields), or undefined for the canonical form. The one rule for telling
 * the two apart: the loader reads by it, and `set-image` edits by it.
 */
export function keyedFormKey(data: Record<string, unknown>): string | undefined {
  const keys = Object.keys(data);
  const only = keys.length === 1 ? keys[0]! : undefined;
  if ('image' in data || only === undefined || SERVICE_KEYS.has(only) || !isMapValue(data[only]))
    return undefined;
  return only;
}

/** One service file after its own checks. */
interface LoadedService {
  file: string;
  yaml: YamlFile;
  /** Where the service's fields sit: [] in canonical form, [key] in keyed form. */
  prefix: YamlPath;
  /** Known even when the body has errors, so cross-file rules still run. */
  name?: string;
  /** Where to point when the name clashes; undefined means the file name itself. */
  namePath?: { path: YamlPath; at: 'key' | 'value' };
  body?: ServiceInput;
  /** The file's templated values, by path in the body: where to point when one fails to render. */
  templates?: Record<string, TemplateSource>;
}

/**
 * Turn the state repo's files into a validated model, reporting every problem at once,
 * each with file, line and column. Reads `berth.yaml`, `inventory.yaml` and the direct
 * children `<services_dir>/<name>.yaml|.yml`; every other file is ignored.
 */
export function loadStateRepo(input: RepoFiles): LoadResult {
  // A file under files/ that cannot be read matters only when a service names it (checkFiles).
  const unreadable = input.unreadable ?? [];
  const issues: ConfigIssue[] = unreadable.filter((i) => !isTemplateOnly(i.file));
  const { files } = input;

  for (const [wrong, right] of [
    ['berth.yml', BERTH_FILE],
    ['inventory.yml', INVENTORY_FILE],
  ]) {
    if (files.has(wrong!) && !files.has(right!)) {
      issues.push({ file: wrong!, message: `this file is not read; name it ${right}`, severity: 'warning' });
    }
  }

  const berth = loadBerth(files.get(BERTH_FILE), issues);
  const staticInventory = (berth.config?.inventory?.source ?? 'static') === 'static';
  const inv = loadInventory(files.get(INVENTORY_FILE), issues);
  if (!staticInventory && inv?.yaml) checkDiscoveredHosts(inv.yaml, berth.config?.inventory?.source, issues);

  const services: LoadedService[] = [];
  const prefix = `${berth.servicesDir}/`;
  for (const [file, content] of [...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!file.startsWith(prefix)) continue;
    const base = file.slice(prefix.length);
    if (base.includes('/') || !/\.ya?ml$/.test(base)) continue;
    const s = loadServiceFile(file, base.replace(/\.ya?ml$/, ''), content, issues);
    if (s) services.push(s);
  }

  checkDuplicates(services, issues);
  if (staticInventory) checkHosts(services, berth, inv, issues);
  const schema = templateSchema(staticInventory, inv);
  const defaultTemplates = checkTemplates(services, berth, schema, issues);
  const fileTemplates = checkFiles(filesLists(services, berth), files, unreadable, schema, issues);
  checkVolumeCollisions(services, berth, issues);

  const blocked = issues.some((i) => i.severity === 'error');
  issues.sort(byPosition);
  if (blocked || !berth.config) return { issues };

  const repo: StateRepo = {
    ref: input.ref,
    envDir: berth.config.env_dir ?? DEFAULT_ENV_DIR,
    services: services
      .map((s) => {
        const spec = toSpec(s.name!, s.file, s.body!, berth.config!.defaults);
        const templates = mergeTemplates(s.body!, s.templates ?? {}, defaultTemplates);
        if (templates) spec.templates = templates;
        return spec;
      })
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    settings: toSettings(berth.config, berth.servicesDir),
  };
  if (input.commit !== undefined) repo.commit = input.commit;
  if (berth.config.files_dir !== undefined) repo.filesDir = berth.config.files_dir;
  if (inv?.inventory) repo.inventory = inv.inventory;
  if (Object.keys(fileTemplates).length) repo.fileTemplates = fileTemplates;
  return { repo, issues };
}

/** The `files:` lists as written: berth.yaml `defaults` and each valid service body. */
function filesLists(services: LoadedService[], berth: LoadedBerth): FilesAt[] {
  const out: FilesAt[] = [];
  const d = berth.config?.defaults?.files;
  if (d && berth.yaml) out.push({ y: berth.yaml, path: ['defaults', 'files'], files: d });
  for (const s of services)
    if (s.body?.files) out.push({ y: s.yaml, path: [...s.prefix, 'files'], files: s.body.files });
  return out;
}

/** A file's target that is a volume's too, with the service's own values over the defaults. */
function checkVolumeCollisions(services: LoadedService[], berth: LoadedBerth, issues: ConfigIssue[]): void {
  const d = berth.config?.defaults;
  for (const s of services) {
    if (!s.body) continue;
    const own = s.body.files !== undefined;
    const list: ServiceFile[] | undefined = s.body.files ?? d?.files;
    const volumes = s.body.volumes ?? d?.volumes ?? [];
    if (!list?.length || !volumes.length) continue;
    const y = own ? s.yaml : berth.yaml;
    if (!y) continue;
    const base: YamlPath = own ? [...s.prefix, 'files'] : ['defaults', 'files'];
    for (const c of volumeCollisions(list, volumes, hasTemplate)) {
      const issue = issueAt(y, [...base, c.index, 'target'], c.message);
      if (!own) issue.message += ` (in service ${s.name})`;
      issues.push(issue);
    }
  }
}

interface LoadedBerth {
  /** Undefined when berth.yaml has errors. */
  config?: BerthInput;
  yaml?: YamlFile;
  servicesDir: string;
}

function loadBerth(content: string | undefined, issues: ConfigIssue[]): LoadedBerth {
  if (content === undefined) return { config: {}, servicesDir: DEFAULT_SERVICES_DIR };
  const parsed = parseYamlFile(BERTH_FILE, content, (p) => p[0] === 'defaults' && stringishField(p.slice(1)));
  issues.push(...parsed.issues);
  const y = parsed.yaml;
  if (!y) return { servicesDir: DEFAULT_SERVICES_DIR };
  const data = y.data ?? {};
  const result = berthSchema.safeParse(data, { reportInput: true });
  // Find the service files even when something else in berth.yaml is wrong, so all is reported.
  const rawDir = isMapValue(data) ? berthSchema.shape.services_dir.safeParse(data.services_dir) : undefined;
  const servicesDir = normaliseDir(rawDir?.success ? rawDir.data : undefined);
  if (!result.success) {
    issues.push(...fromZod(y, berthSchema, result.error));
    return { yaml: y, servicesDir };
  }
  const config = result.data;
  checkEnvironments(y, config, issues);
  return { config, yaml: y, servicesDir };
}

function normaliseDir(dir: string | undefined): string {
  const d = (dir ?? DEFAULT_SERVICES_DIR).replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  return d === '' || d === '.' ? DEFAULT_SERVICES_DIR : d;
}

function checkEnvironments(y: YamlFile, config: BerthInput, issues: ConfigIssue[]): void {
  const envs = config.environments;
  if (!envs) return;
  const names = Object.keys(envs);
  for (const [name, env] of Object.entries(envs)) {
    const next = env.promote_to;
    if (next !== undefined && !(next in envs)) {
      const hint = suggest(next, names);
      issues.push(
        issueAt(
          y,
          ['environments', name, 'promote_to'],
          `no environment named ${JSON.stringify(next)}${hint ? ` (did you mean "${hint}"?)` : ''}`,
        ),
      );
    }
    // Report a loop once, from its alphabetically first member.
    const seen = [name];
    for (let cur = next; cur !== undefined && cur in envs; cur = envs[cur]!.promote_to) {
      if (cur === name) {
        if (seen.every((s) => s >= name)) {
          issues.push(
            issueAt(
              y,
              ['environments', name, 'promote_to'],
              `the promotion chain loops: ${[...seen, name].join(' → ')}`,
            ),
          );
        }
        break;
      }
      if (seen.includes(cur)) break;
      seen.push(cur);
    }
  }
  for (const env of Object.keys(config.smoke ?? {})) {
    if (env in envs) continue;
    const hint = suggest(env, names);
    issues.push(
      issueAt(
        y,
        ['smoke', env],
        `no environment named ${JSON.stringify(env)} under environments${hint ? ` (did you mean "${hint}"?)` : ''}`,
        { at: 'key' },
      ),
    );
  }
}

interface LoadedInventory {
  yaml?: YamlFile;
  inventory?: Inventory;
  /** Hosts and groups, read even from an inventory with errors, for checking `hosts:`. */
  names?: Set<string>;
}

function loadInventory(content: string | undefined, issues: ConfigIssue[]): LoadedInventory | undefined {
  if (content === undefined) return undefined;
  const parsed = parseYamlFile(INVENTORY_FILE, content, () => false);
  issues.push(...parsed.issues);
  const y = parsed.yaml;
  if (!y) return {};
  const data = y.data ?? {};
  const names = isMapValue(data) ? rawInventoryNames(data) : undefined;
  const result = inventorySchema.safeParse(data, { reportInput: true });
  if (!result.success) {
    issues.push(...fromZod(y, inventorySchema, result.error));
    return { yaml: y, names };
  }
  // `ssh` as written (durations unparsed): the fleet reads it with the same schema as the `ssh`
  // maps in group and host vars, layered over it.
  return { yaml: y, inventory: toInventory(result.data, (data as Record<string, unknown>).ssh), names };
}

/**
 * With a discovering source (aws-ec2) the source lists the hosts, with their addresses and
 * groups; inventory.yaml may still give groups their vars, set `ssh`, and give a host (by the
 * name the source finds it under) its vars, but never an address or groups of its own.
 */
function checkDiscoveredHosts(y: YamlFile, source: string | undefined, issues: ConfigIssue[]): void {
  const hosts = isMapValue(y.data) ? y.data.hosts : undefined;
  if (!isMapValue(hosts)) return;
  for (const [name, h] of Object.entries(hosts)) {
    if (!isMapValue(h)) continue;
    for (const key of ['address', 'groups'])
      if (key in h) {
        issues.push(
          issueAt(
            y,
            ['hosts', name, key],
            `the hosts come from inventory source "${source}" (berth.yaml), which sets their ${key}; here a host may only have vars`,
            { at: 'key' },
          ),
        );
      }
  }
}

function rawInventoryNames(data: Record<string, unknown>): Set<string> {
  const names = new Set<string>();
  if (isMapValue(data.groups)) Object.keys(data.groups).forEach((g) => names.add(g));
  if (isMapValue(data.hosts)) {
    for (const [host, h] of Object.entries(data.hosts)) {
      names.add(host);
      if (isMapValue(h) && Array.isArray(h.groups))
        h.groups.forEach((g) => typeof g === 'string' && names.add(g));
    }
  }
  return names;
}

function toInventory(inv: InventoryInput, rawSsh: unknown): Inventory {
  const groups: Inventory['groups'] = {};
  for (const [name, g] of Object.entries(inv.groups ?? {})) groups[name] = { vars: g?.vars ?? {} };
  const hosts = Object.entries(inv.hosts ?? {}).map(([name, h]) => {
    // Like Ansible's inventory_hostname: a host without an address is reached by its name.
    const host = { name, address: h?.address ?? name, groups: h?.groups ?? [], vars: h?.vars ?? {} };
    for (const g of host.groups) groups[g] ??= { vars: {} };
    return host;
  });
  const out: Inventory = { hosts, groups };
  if (inv.ssh && isMapValue(rawSsh)) out.ssh = { ...rawSsh };
  return out;
}

function loadServiceFile(
  file: string,
  base: string,
  content: string,
  issues: ConfigIssue[],
): LoadedService | undefined {
  const parsed = parseYamlFile(file, content, (p) => stringishField(p) || stringishField(p.slice(1)));
  issues.push(...parsed.issues);
  const y = parsed.yaml;
  if (!y) return undefined;
  const data = y.data;
  if (data === undefined || data === null) {
    issues.push({ file, message: 'the file is empty; a service needs at least `image:`', severity: 'error' });
    return undefined;
  }
  if (!isMapValue(data)) {
    issues.push(issueAt(y, [], `expected a map of service settings, got ${kindOf(data)}`));
    return undefined;
  }

  const only = keyedFormKey(data);
  if (only !== undefined) {
    const body = data[only] as Record<string, unknown>;
    const s: LoadedService = { file, yaml: y, prefix: [only] };
    if (typeof body.name === 'string') {
      s.name = body.name;
      s.namePath = { path: [only, 'name'], at: 'value' };
    } else if (body.name === undefined) {
      s.name = only;
      s.namePath = { path: [only], at: 'key' };
      const problem = nameProblem(only, 'the top-level key');
      if (problem) issues.push(issueAt(y, [only], problem, { at: 'key', pathShown: [] }));
    }
    const result = keyedServiceSchema.safeParse(body, { reportInput: true });
    if (result.success) s.body = result.data;
    else issues.push(...fromZod(y, keyedServiceSchema, result.error, [only]));
    return s;
  }

  const s: LoadedService = { file, yaml: y, prefix: [], name: base };
  const problem = nameProblem(base, 'the file name');
  if (problem) issues.push({ file, message: problem, severity: 'error' });
  let body: Record<string, unknown> = data;
  if ('name' in data) {
    // The canonical form names a service by its file, so a `name:` here would be silently ignored.
    issues.push(
      issueAt(
        y,
        ['name'],
        `"name" is only read in the keyed form; this service is named after its file: ${JSON.stringify(base)}`,
        { at: 'key', pathShown: [] },
      ),
    );
    body = { ...data };
    delete body.name;
  }
  const result = serviceSchema.safeParse(body, { reportInput: true });
  if (result.success) s.body = result.data;
  else issues.push(...fromZod(y, serviceSchema, result.error, [], body));
  return s;
}

function nameProblem(name: string, from: string): string | undefined {
  if (!SAFE_NAME.test(name)) {
    return (
      `service name ${JSON.stringify(name)} (${from}) is not a safe file and container name: ` +
      `use 2-63 letters, digits, "_", "." or "-", starting with a letter or digit`
    );
  }
  return reservedNameProblem(name);
}

function checkDuplicates(services: LoadedService[], issues: ConfigIssue[]): void {
  const byName = new Map<string, LoadedService[]>();
  for (const s of services) if (s.name !== undefined) byName.set(s.name, [...(byName.get(s.name) ?? []), s]);
  for (const [name, list] of byName) {
    if (list.length < 2) continue;
    for (const s of list) {
      const others = list.filter((o) => o !== s).map((o) => o.file);
      const message = `service ${JSON.stringify(name)} is also defined in ${others.join(', ')}`;
      issues.push(
        s.namePath
          ? issueAt(s.yaml, s.namePath.path, message, { at: s.namePath.at, pathShown: [] })
          : { file: s.file, message, severity: 'error' },
      );
    }
  }
}

/** `hosts:` must name inventory hosts or groups; without an inventory it means nothing. */
function checkHosts(
  services: LoadedService[],
  berth: LoadedBerth,
  inv: LoadedInventory | undefined,
  issues: ConfigIssue[],
): void {
  const targets: Array<{ y: YamlFile; path: YamlPath }> = [];
  if (berth.yaml && isMapValue(berth.yaml.data) && isMapValue(berth.yaml.data.defaults)) {
    targets.push({ y: berth.yaml, path: ['defaults'] });
  }
  for (const s of services) targets.push({ y: s.yaml, path: s.prefix });
  for (const { y, path } of targets) {
    const body = path.reduce<unknown>((v, k) => (isMapValue(v) ? v[k] : undefined), y.data);
    if (!isMapValue(body) || body.hosts === undefined) continue;
    const hostsPath = [...path, 'hosts'];
    if (!inv) {
      issues.push(
        issueAt(y, hostsPath, 'ignored: there is no inventory.yaml, so this service runs on every host', {
          severity: 'warning',
        }),
      );
      continue;
    }
    if (!inv.names || !Array.isArray(body.hosts)) continue;
    const names = inv.names;
    body.hosts.forEach((h, i) => {
      if (typeof h !== 'string' || names.has(h)) return;
      const hint = suggest(h, names);
      issues.push(
        issueAt(
          y,
          [...hostsPath, i],
          `${JSON.stringify(h)} is neither a host nor a group in inventory.yaml${hint ? ` (did you mean "${hint}"?)` : ''}`,
        ),
      );
    });
  }
}

/**
 * What a template may name, as far as the repo tells: the inventory's groups (none without an
 * inventory; unchecked when hosts are discovered, or when inventory.yaml has its own errors).
 */
function templateSchema(staticInventory: boolean, inv: LoadedInventory | undefined): TemplateSchema {
  const schema: TemplateSchema = { serviceFields: SERVICE_TEMPLATE_FIELDS };
  if (!staticInventory) return schema;
  if (!inv) schema.groups = [];
  else if (inv.inventory) schema.groups = Object.keys(inv.inventory.groups).sort();
  return schema;
}

/**
 * Check the templates of every valid service body, of berth.yaml `defaults` (once, not per
 * service) and of the load balancer settings. Returns the templated values of `defaults`.
 */
function checkTemplates(
  services: LoadedService[],
  berth: LoadedBerth,
  schema: TemplateSchema,
  issues: ConfigIssue[],
): Record<string, TemplateSource> {
  for (const s of services) {
    if (!s.body) continue;
    const raw = s.prefix.reduce<unknown>((v, k) => (isMapValue(v) ? v[k] : undefined), s.yaml.data);
    if (isMapValue(raw)) s.templates = checkServiceTemplates(s.yaml, s.prefix, raw, schema, issues);
  }
  const y = berth.yaml;
  if (!berth.config || !y || !isMapValue(y.data)) return {};
  if (isMapValue(y.data.load_balancer))
    checkSettingsTemplates(y, ['load_balancer'], y.data.load_balancer, schema, issues);
  if (!isMapValue(y.data.defaults)) return {};
  return checkServiceTemplates(y, ['defaults'], y.data.defaults, schema, issues);
}

/** The sources of a service's templated values: its own, and those of the defaults it did not override. */
function mergeTemplates(
  s: ServiceInput,
  own: Record<string, TemplateSource>,
  defaults: Record<string, TemplateSource>,
): Record<string, TemplateSource> | undefined {
  const out: Record<string, TemplateSource> = {};
  for (const [key, src] of Object.entries(defaults)) {
    const field = key.split(/[.[]/)[0]!;
    const value = (s as Record<string, unknown>)[field];
    // A map merged key by key keeps the default's entries the service does not set.
    const overridden =
      FIELDS.get(field)?.merge === 'keys' && key[field.length] === '.'
        ? (value as Record<string, string> | undefined)?.[key.slice(field.length + 1)] !== undefined
        : value !== undefined;
    if (!overridden) out[key] = src;
  }
  Object.assign(out, own);
  return Object.keys(out).length ? out : undefined;
}

type DefaultsInput = NonNullable<BerthInput['defaults']>;

/** One service with berth.yaml defaults merged under it and every default filled in. */
function toSpec(name: string, file: string, s: ServiceInput, d: DefaultsInput | undefined): ServiceSpec {
  const spec: Record<string, unknown> = { name };
  for (const [key, f] of FIELD_LIST) {
    const own = s[key];
    const dflt = (d as Record<string, unknown> | undefined)?.[key];
    let v: unknown =
      f.merge === 'keys'
        ? { ...(dflt as object | undefined), ...(own as object | undefined) }
        : (own ?? dflt);
    if (v === undefined) v = structuredClone(f.default);
    else if (f.normalise) v = f.normalise(v);
    if (v !== undefined) spec[f.spec] = v;
  }
  spec.file = file;
  return spec as unknown as ServiceSpec;
}

function toSettings(b: BerthInput, servicesDir: string): RepoSettings {
  const environments: RepoSettings['environments'] = {};
  for (const [name, e] of Object.entries(b.environments ?? {})) {
    environments[name] =
      e.promote_to === undefined ? { branch: e.branch } : { branch: e.branch, promoteTo: e.promote_to };
  }
  const smoke: RepoSettings['smoke'] = {};
  for (const [env, checks] of Object.entries(b.smoke ?? {})) {
    smoke[env] = checks.map((c) => ({
      url: c.url,
      status: c.status ?? 200,
      ...(c.body !== undefined ? { body: c.body } : {}),
      timeoutMs: c.timeout ?? DEFAULT_SMOKE_TIMEOUT_MS,
    }));
  }
  const settings: RepoSettings = {
    servicesDir,
    secretsDir: b.secrets_dir ?? DEFAULT_SECRETS_DIR,
    environments,
    rollout: {
      batch: (b.rollout?.batch ?? 1) as RepoSettings['rollout']['batch'],
      maxUnavailable: (b.rollout?.max_unavailable ?? 1) as RepoSettings['rollout']['maxUnavailable'],
      ...(b.rollout?.lease_expiry !== undefined ? { leaseExpiryMs: b.rollout.lease_expiry } : {}),
    },
    smoke,
    inventory: b.inventory ? { ...b.inventory } : { source: 'static' },
  };
  if (b.project !== undefined) settings.project = b.project;
  if (b.load_balancer) settings.loadBalancer = { ...b.load_balancer };
  if (b.agent) settings.agent = toAgentSettings(b.agent);
  return settings;
}
