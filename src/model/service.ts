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
 * This is what the planner compares with the engine and what `render` prints.
 */
export interface ServiceSpec {
  name: string;
  image: string;
  gitCommit?: string;
  buildNumber?: string;
  env: Record<string, string>;
  command?: string[];
  entrypoint?: string[];
  user?: string;
  workingDir?: string;
  volumes: string[];
  labels: Record<string, string>;
  stopSignal?: string;
  /** Seconds. */
  stopTimeout?: number;
  networkMode: string;
  restartPolicy: string;
  init: boolean;
  logDriver?: string;
  logOptions: Record<string, string>;
  pull: 'always' | 'missing';
  healthcheck?: HealthcheckSpec;
  drain: boolean;
  /** Inventory groups or host names this service runs on; undefined means everywhere. */
  hosts?: string[];
  /** Repo-relative path of the file the service came from. */
  file: string;
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
  services: ServiceSpec[];
  inventory?: Inventory;
  /** The rest of berth.yaml, validated; set by the config loader. */
  settings?: RepoSettings;
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
  rollout: { batch: number; maxUnavailable: number };
  /** Environment name -> checks run by `berth smoke`. */
  smoke: Record<string, Array<{ url: string; status: number }>>;
  /** Where hosts come from: `static` (inventory.yaml) or a discovery source with its settings. */
  inventory: { source: 'static' | 'aws-ec2'; [setting: string]: unknown };
}

/** What one host should run. */
export interface DesiredState {
  commit?: string;
  ref: string;
  host?: string;
  envDir: string;
  services: ServiceSpec[];
}
