import type { ServiceFieldValues } from '../config/fields.js';
import type { AgentSettings } from './agent-settings.js';
import type { ConfigIssue } from './errors.js';
import type { Template } from '../template/ast.js';

/** Health check settings of a service, durations in milliseconds. */
export interface HealthcheckSpec {
  /** URL answered with 2xx/3xx when healthy. */
  http?: string;
  /** HOST:PORT that accepts a TCP connection when healthy. */
  tcp?: string;
  /** Use the image's own Docker HEALTHCHECK. */
  docker?: boolean;
  interval: number;
  timeout: number;
  retries: number;
  startPeriod: number;
}

/**
 * One service fully resolved for one host: defaults merged, shorthand expanded.
 * This is what the planner compares with the engine and what `render` prints. Its fields
 * (image, env, volumes, …) are those of the field table, src/config/fields.ts, under their spec
 * keys; the rest is in ServiceSpecBase.
 */
export interface ServiceSpec extends ServiceSpecBase, ServiceFieldValues {}

/** The part of a ServiceSpec that is not a field of a service file: who it is, where from, its secrets. */
export interface ServiceSpecBase {
  name: string;
  /** Repo-relative path of the file the service came from. */
  file: string;
  /**
   * Where each templated value was written, keyed by its path as the file writes it
   * (`env_vars.DB_URL`, `volumes[0]`, `command` for a command written as one line,
   * `command[1]` for a list item). Set by the loader on the repo-wide spec so a render error
   * can name file:line:col; absent once the service is rendered for a host.
   */
  templates?: Record<string, TemplateSource>;
  /**
   * Env key -> the secrets its value uses, sorted. Only on a rendered spec, only for keys that
   * use a secret: what the planner redacts and watches ("secret db_password changed").
   */
  secretEnv?: Record<string, string[]>;
  /**
   * Env key -> the value as it may be shown, each secret as `<secret:NAME>`
   * (`postgres://app:<secret:db_password>@10.0.0.5/app`). Same keys as `secretEnv`; show this
   * instead of `env[key]` everywhere but the env file.
   */
  redactedEnv?: Record<string, string>;
  /**
   * Env key -> a keyed digest of its value (`hmac-sha256:...`, this host's key), for the keys in
   * `secretEnv`: how a changed secret changes the config hash without the value being stored.
   */
  secretDigests?: Record<string, string>;
}

/** Where a templated string value sits in the state repo, as plain data. */
export interface TemplateSource {
  /** Repo-relative file: the service file, or berth.yaml for a value from `defaults`. */
  file: string;
  /** The value's dotted path in that file, as issues show it: `defaults.env_vars.TZ`, `command[1]`. */
  path: string;
  /** 1-based line and column of the scalar's first character (its quote or block indicator). */
  line: number;
  col: number;
  /** The scalar as written, quotes and escapes included, to map an offset in the value to a column. */
  raw: string;
}

/** A host from the inventory. */
export interface InventoryHost {
  name: string;
  address: string;
  groups: string[];
  vars: Record<string, unknown>;
}

export interface Inventory {
  hosts: InventoryHost[];
  groups: Record<string, { vars: Record<string, unknown> }>;
  ssh?: Record<string, unknown>;
}

/** What the repo says, before selecting one host. */
export interface StateRepo {
  /** Commit the files were read at; undefined for an uncommitted working tree. */
  commit?: string;
  /** What the user asked for: a branch, a ref, or "working tree". */
  ref: string;
  envDir: string;
  /** Where services' files go on each host (berth.yaml files_dir); absent: DEFAULT_FILES_DIR. */
  filesDir?: string;
  services: ServiceSpec[];
  /** The `files:` templates the services name, parsed once, by repo path (`files/squid.conf`). */
  fileTemplates?: Record<string, Template>;
  inventory?: Inventory;
  /** The rest of berth.yaml, validated; set by the config loader. */
  settings?: RepoSettings;
}

/** One smoke check: GET `url`, expect `status` and, if given, `body` somewhere in the answer. */
export interface SmokeCheck {
  url: string;
  status: number;
  /** Text the response body must contain. */
  body?: string;
  /** Longest wait for the whole answer. */
  timeoutMs: number;
}

/** Repo-wide settings from berth.yaml that are not per-service. Keys of passthrough records stay as written. */
export interface RepoSettings {
  project?: string;
  /** Folder of the service files, repo-relative. */
  servicesDir: string;
  /** The host's secrets folder. */
  secretsDir: string;
  /** Environment name -> its branch and the next environment in the promotion chain. */
  environments: Record<string, { branch: string; promoteTo?: string }>;
  /** `provider` plus the provider's own settings, as written. */
  loadBalancer?: { provider: string; [setting: string]: unknown };
  rollout: {
    /** Hosts `berth deploy` changes at once: a number, or a percentage of the hosts deployed (`25%`). */
    batch: number | `${number}%`;
    /** Hosts of a group out of rotation at once: a number, or a percentage of the group (`25%`). */
    maxUnavailable: number | `${number}%`;
    /** How long a lease lasts without renewal; absent: the default. */
    leaseExpiryMs?: number;
  };
  /** Environment name -> checks run by `berth smoke`. */
  smoke: Record<string, SmokeCheck[]>;
  /** Where hosts come from: `static` (inventory.yaml) or a discovery source with its settings. */
  inventory: { source: 'static' | 'aws-ec2'; [setting: string]: unknown };
  /** How `berth agent` reports back (commit statuses, notifications). */
  agent?: AgentSettings;
}

/** What one host should run. */
export interface DesiredState {
  commit?: string;
  ref: string;
  host?: string;
  /** How the host is reached: its inventory address, or 127.0.0.1 for "this host" without one. */
  address?: string;
  envDir: string;
  /** Where this host's service files go, `<filesDir>/<service>/`; absent: DEFAULT_FILES_DIR. */
  filesDir?: string;
  services: ServiceSpec[];
  /**
   * Services of this host whose values could not be rendered (a missing secret, a failed
   * decryption, a missing host var), each with why. They are not in `services`.
   */
  failed?: Array<{ service: string; issues: ConfigIssue[] }>;
  /**
   * Names the planner must neither create, change nor remove: the `failed` services, whose
   * running containers are left as they are.
   */
  held?: string[];
  /** How this host leaves and rejoins rotation: berth.yaml's load_balancer, rendered for the host. */
  loadBalancer?: { provider: string; settings: Record<string, unknown> };
  /** The environment's name, as templates see it (`env`). */
  env?: string;
  /** The groups in which this host takes a lease before it leaves rotation, and their caps. */
  rollout?: HostRollout;
}

/** Where a host counts when it leaves rotation: the leases it must hold first. */
export interface HostRollout {
  /** The fleet the groups belong to: the environment, after berth.yaml's `project` when set. */
  scope: string;
  /** The host's inventory groups (`ungrouped` when it has none), with how many hosts each has. */
  groups: Array<{ name: string; size: number }>;
  maxUnavailable: number | `${number}%`;
  leaseExpiryMs: number;
}
