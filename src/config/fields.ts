import * as z from 'zod';
import {
  FILES_SOURCE_DIR,
  hostFileName,
  MAX_HOST_FILE_NAME,
  modeText,
  reloadText,
  type Reload,
  type ServiceFile,
} from '../model/files.js';
import type { HealthcheckSpec, ServiceSpecBase } from '../model/service.js';
import { imageRefProblem } from './image-ref.js';
import { splitCommand } from './values.js';
import {
  absPath,
  argv,
  duration,
  hasTemplate,
  httpUrl,
  line,
  nonEmptyLine,
  stringish,
} from './schema-parts.js';

/**
 * Where a field's strings may hold templates, rendered per host:
 * - `value`: the field is one string;
 * - `list`: each item of a list; a list written as one line (`command: serve --port 80`) is
 *   checked whole, before it is split into arguments;
 * - `map`: each value of a map; `secrets` only for env_vars, whose values go to the 0600 env
 *   file, never to `docker inspect`;
 * - `keys`: the named string keys of a nested map, the same in the file and the spec.
 */
export type TemplateRule =
  | { shape: 'value' }
  | { shape: 'list' }
  | { shape: 'map'; secrets?: true }
  | { shape: 'keys'; keys: readonly string[] };

type Presence = 'required' | 'defaulted' | 'optional';

/** What one field of a service file is, everywhere berth handles it. See SERVICE_FIELDS. */
export interface ServiceField<
  K extends string = string,
  S extends z.ZodType = z.ZodType,
  Out = unknown,
  C extends boolean = boolean,
> {
  /** Its key on ServiceSpec (camelCase); the table's key is the file's (`working_dir`). */
  spec: K;
  /** The value as a service file (or berth.yaml `defaults`) may write it, validated and transformed. */
  schema: S;
  /** What editors show (the JSON Schema description), when the schema does not say it itself. */
  description?: string;
  /** Every service file must set it; then it cannot be a default. */
  required?: true;
  /**
   * The spec's value when neither the service nor `defaults` set it. Without one the key is left
   * out of the spec. A scalar default is also shown to editors as the JSON Schema default.
   */
  default?: Out;
  /** `keys`: a map merged with `defaults` key by key, the service's keys winning. Otherwise the service's whole value wins. */
  merge?: 'keys';
  /** From the validated file value to the spec's. */
  normalise?: (v: z.output<S>) => Out;
  /**
   * YAML numbers and booleans that are read as their source text (`VERSION: 1.10` stays "1.10"):
   * the value itself, a map's values, or a list's items. Matches a `stringish()` in the schema.
   */
  text?: 'value' | 'map' | 'items';
  /**
   * Deeper places read as their source text too, by path below the field (`[0, 'mode']`), so
   * that `mode: 0644` stays "0644" rather than the number 644.
   */
  textAt?: (rest: ReadonlyArray<string | number>) => boolean;
  /**
   * Part of the container: in the config hash, so a change recreates the container, and the plan
   * names the change (`working_dir changed`). Such a field also needs its engine mapping in
   * src/reconcile/container.ts.
   */
  container: C;
  /** Where its strings may hold templates; none if absent. */
  template?: TemplateRule;
  /** Templates may read it as `service.<spec key>`. Only fields that are never templated themselves. */
  readable?: true;
  /** How `berth render` prints it, when not as the spec holds it. */
  show?: (v: Out, s: ServiceSpecBase) => unknown;
  /** Whether a service has it for sure: set by `field()` from `required` and `default`. */
  presence: Presence;
}

type FieldOptions<K extends string, S extends z.ZodType, Out, C extends boolean, D, R> = Omit<
  ServiceField<K, S, Out, C>,
  'default' | 'required' | 'presence'
> & { default?: D; required?: R };

/** One table entry, its types kept for ServiceFieldValues. */
function field<
  const K extends string,
  S extends z.ZodType,
  const C extends boolean,
  Out = z.output<S>,
  D extends Out | undefined = undefined,
  R extends true | undefined = undefined,
>(f: FieldOptions<K, S, Out, C, D, R>): ServiceField<K, S, Out, C> & { presence: PresenceOf<D, R> } {
  const presence: Presence = f.required ? 'required' : f.default !== undefined ? 'defaulted' : 'optional';
  return { ...f, presence } as ServiceField<K, S, Out, C> & { presence: PresenceOf<D, R> };
}

type PresenceOf<D, R> = [R] extends [true] ? 'required' : [D] extends [undefined] ? 'optional' : 'defaulted';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Linux's MAX_ARG_STRLEN: one `NAME=value` given to a process, NUL included. */
const MAX_ENV_ENTRY_BYTES = 131_072;
const RESTART = /^(?:no|always|unless-stopped|on-failure(?::\d+)?)$/;

const image = z
  .string()
  .superRefine((s, ctx) => {
    const problem = imageRefProblem(s);
    if (problem)
      ctx.addIssue({ code: 'custom', message: `invalid image reference ${JSON.stringify(s)}: ${problem}` });
  })
  .describe('Image reference: [registry/]name[:tag][@sha256:digest]. Without tag or digest, :latest.')
  .meta({ examples: ['127.0.0.1:5000/team/api:1.4.2'] });

const healthcheck = z
  .strictObject({
    http: httpUrl().optional().describe('URL that answers 2xx or 3xx when the service is healthy.'),
    tcp: line()
      .refine((s) => hasTemplate(s) || /^[^\s:]+:(\d{1,5})$/.test(s), {
        error: (iss) => `${JSON.stringify(iss.input)} is not HOST:PORT`,
      })
      .optional()
      .describe('HOST:PORT that accepts a TCP connection when the service is healthy.'),
    docker: z.boolean().optional().describe("true: wait for the image's own Docker HEALTHCHECK."),
    interval: duration('Time between probes, e.g. 2s.').optional().meta({ default: '2s' }),
    timeout: duration('Time one probe may take.').optional().meta({ default: '2s' }),
    retries: z
      .int()
      .min(1)
      .optional()
      .describe('Failed probes in a row that mean unhealthy.')
      .meta({ default: 3 }),
    start_period: duration('Grace time after start when failures do not count.')
      .optional()
      .meta({ default: '0s' }),
  })
  .superRefine((h, ctx) => {
    const probes = [h.http !== undefined, h.tcp !== undefined, h.docker === true].filter(Boolean).length;
    if (probes !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          probes === 0
            ? 'a healthcheck needs one of http, tcp or docker: true'
            : 'a healthcheck takes only one of http, tcp or docker: true',
      });
    }
  })
  .describe('How to tell that a new container is healthy before the rollout goes on.');

const HEALTH_DEFAULTS = { interval: 2000, timeout: 2000, retries: 3, startPeriod: 0 };

const volume = line().refine(
  (v) => {
    if (hasTemplate(v)) return true;
    const parts = v.split(':');
    const dst = parts.length === 1 ? parts[0] : parts[1];
    return parts.length <= 3 && parts.every((p) => p !== '') && (dst ?? '').startsWith('/');
  },
  { error: (iss) => `volume ${JSON.stringify(iss.input)} must be SRC:DST[:MODE] or DST, with DST absolute` },
);

/** A path as docker and people read it: absolute, no `.`, `..` or empty parts, no trailing "/". */
function pathProblem(p: string): string | undefined {
  if (!p.startsWith('/')) return 'must be an absolute path';
  if (p === '/') return 'cannot be the root folder';
  const parts = p.slice(1).split('/');
  if (parts.some((x) => x === '' || x === '.' || x === '..'))
    return 'must be a plain absolute path, without "//", "." or ".." parts or a trailing "/"';
  return undefined;
}

/** Signals a service may take as "reread your config"; what docker kill takes by name. */
const RELOAD_SIGNALS = new Set(
  'HUP INT QUIT USR1 USR2 TERM WINCH CONT ALRM PWR URG IO PROF TRAP ABRT TSTP TTIN TTOU VTALRM XCPU XFSZ SYS'
    .split(' ')
    .map((s) => `SIG${s}`),
);

/** `SIGHUP`: a signal; a list: a command; another string: a command, split like a shell would. */
function parseReload(v: string | string[], ctx: z.RefinementCtx): Reload {
  const fail = (message: string): Reload => {
    ctx.issues.push({ code: 'custom', message, input: v });
    return z.NEVER;
  };
  if (Array.isArray(v)) return { command: v };
  const word = v.trim();
  if (/^SIG[A-Z0-9]+$/.test(word)) {
    if (word === 'SIGKILL' || word === 'SIGSTOP')
      return fail(
        `reload ${word} would stop the service rather than reload it; use a signal it reloads on, such as SIGHUP`,
      );
    if (!RELOAD_SIGNALS.has(word))
      return fail(`unknown signal ${JSON.stringify(word)}; signals are ${[...RELOAD_SIGNALS].join(', ')}`);
    return { signal: word };
  }
  if (RELOAD_SIGNALS.has(`SIG${word}`)) return fail(`write the signal as SIG${word}`);
  const argv = splitCommand(v);
  if (!Array.isArray(argv)) return fail(argv.error);
  if (argv.length === 0) return fail('reload must name a signal or a command');
  return { command: argv };
}

const fileEntry = z
  .strictObject({
    source: nonEmptyLine()
      .refine(
        (s) =>
          s.startsWith(FILES_SOURCE_DIR) &&
          s.length > FILES_SOURCE_DIR.length &&
          !s.split('/').some((x) => x === '' || x === '.' || x === '..'),
        {
          error: (iss) =>
            `source ${JSON.stringify(iss.input)} must be a file under ${FILES_SOURCE_DIR} in the repo, e.g. files/squid.conf`,
        },
      )
      .describe(`The template in the repo, under ${FILES_SOURCE_DIR}; rendered for each host.`),
    target: nonEmptyLine()
      .superRefine((t, ctx) => {
        const problem = pathProblem(t);
        if (problem) ctx.addIssue({ code: 'custom', message: `target ${JSON.stringify(t)} ${problem}` });
        else if (hostFileName(t).length > MAX_HOST_FILE_NAME)
          ctx.addIssue({ code: 'custom', message: `target is too long for a file name on the host` });
      })
      .describe('Where the container sees the file (absolute); mounted read-only.'),
    mode: z
      .union([line(), z.int()])
      .transform((v, ctx): number => {
        const text = String(v);
        const m = /^(?:0o?)?([0-7]{3})$/.exec(text);
        if (m) return parseInt(m[1]!, 8);
        ctx.issues.push({
          code: 'custom',
          message: `mode ${JSON.stringify(text)} must be permission bits in octal, such as 0644 or 0600`,
          input: v,
        });
        return z.NEVER;
      })
      .optional()
      .describe('Permission bits on the host, in octal. Default 0644, or 0600 when the file uses a secret.'),
    reload: z
      .union([line(), z.array(stringish()).min(1)])
      .transform(parseReload)
      .optional()
      .describe(
        'How the service rereads the file: a signal (SIGHUP) or a command run in the container. ' +
          'Without it, a change recreates the container.',
      ),
  })
  .describe('A config file rendered for each host and mounted read-only into the container.');

const files = z.array(fileEntry).superRefine((list, ctx) => {
  const seen = new Map<string, number>();
  list.forEach((f, i) => {
    const other = seen.get(f.target);
    if (other !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [i, 'target'],
        message: `target ${f.target} is also files[${other}]'s; each file needs a target of its own`,
      });
    } else seen.set(f.target, i);
  });
  list.forEach((f, i) => {
    const outer = list.findIndex((o) => f.target.startsWith(`${o.target}/`));
    if (outer >= 0) {
      ctx.addIssue({
        code: 'custom',
        path: [i, 'target'],
        message: `target ${f.target} is inside files[${outer}]'s target ${list[outer]!.target}, which is a file`,
      });
    }
  });
});

const stringMap = (desc: string) => z.record(line(), stringish()).describe(desc);

/**
 * Every field of a service file, in the order the JSON Schema, `berth render` and the plan's
 * causes list them. This table is the one place a field is described: the schema, ServiceSpec,
 * the loader (defaults, merging, file key → spec key), templates, the config hash, the plan's
 * causes and `render` all read it. A container field also needs its engine mapping in
 * src/reconcile/container.ts (the compiler asks for it).
 *
 * A new container field must have no `default` (an unset value is left out of the config hash),
 * or the hash of every running container changes and each is recreated on upgrade.
 */
export const SERVICE_FIELDS = {
  image: field({
    spec: 'image',
    schema: image,
    required: true,
    container: true,
    readable: true,
  }),
  gitCommit: field({
    spec: 'gitCommit',
    schema: stringish(),
    description: 'CI metadata: the source commit, shown in status and history.',
    text: 'value',
    container: false,
    readable: true,
  }),
  buildNumber: field({
    spec: 'buildNumber',
    schema: z.union([line(), z.int()]).transform((v) => String(v)),
    description: 'CI metadata: the build number, compared numerically when bumped.',
    text: 'value',
    container: false,
    readable: true,
  }),
  env_vars: field({
    spec: 'env',
    schema: z
      .record(
        z.string().regex(ENV_NAME, {
          error: (iss) =>
            `invalid env name ${JSON.stringify(iss.input)}: use letters, digits and "_", not starting with a digit`,
        }),
        stringish(),
      )
      .superRefine((env, ctx) => {
        for (const [k, v] of Object.entries(env)) {
          const bytes = Buffer.byteLength(`${k}=${v}`) + 1;
          if (bytes > MAX_ENV_ENTRY_BYTES) {
            ctx.addIssue({
              code: 'custom',
              path: [k],
              message:
                `${k}=… is ${bytes} bytes; Linux gives a process environment entries of at most ` +
                `${MAX_ENV_ENTRY_BYTES} bytes (NAME=value and its end), so the container could not start`,
            });
          }
        }
      }),
    description: 'Environment written to the env file; any change recreates the container.',
    default: {},
    merge: 'keys',
    text: 'map',
    container: true,
    template: { shape: 'map', secrets: true },
    // Values that use a secret are shown in their redacted form; only the env file holds them.
    show: (env, s) => ({ ...env, ...s.redactedEnv }),
  }),
  hosts: field({
    spec: 'hosts',
    schema: z.array(nonEmptyLine()),
    description: 'Inventory groups or host names this service runs on. Default: every host.',
    container: false,
  }),
  command: field({
    spec: 'command',
    schema: argv(),
    description: 'Command: a list, or a string split like a shell would.',
    text: 'items',
    container: true,
    template: { shape: 'list' },
  }),
  entrypoint: field({
    spec: 'entrypoint',
    schema: argv(),
    description: 'Entrypoint: a list, or a string split like a shell would.',
    text: 'items',
    container: true,
    template: { shape: 'list' },
  }),
  user: field({
    spec: 'user',
    schema: stringish(),
    description: 'User (name or uid[:gid]) the container runs as.',
    text: 'value',
    container: true,
    template: { shape: 'value' },
  }),
  working_dir: field({
    spec: 'workingDir',
    schema: absPath('working_dir'),
    description: 'Working directory inside the container.',
    container: true,
    template: { shape: 'value' },
  }),
  volumes: field({
    spec: 'volumes',
    schema: z.array(volume),
    description: 'Bind mounts and volumes: SRC:DST[:MODE].',
    default: [],
    container: true,
    template: { shape: 'list' },
  }),
  files: field({
    spec: 'files',
    schema: files,
    description: 'Config files rendered for each host and mounted read-only: source, target, mode, reload.',
    // An empty list is no files: the same config hash as a service that never had any.
    normalise: (list): ServiceFile[] | undefined => (list.length ? list.map((f) => ({ ...f })) : undefined),
    textAt: (rest) => rest.length === 2 && typeof rest[0] === 'number' && rest[1] === 'mode',
    container: true,
    show: (list) =>
      (list ?? []).map((f) => ({
        source: f.source,
        target: f.target,
        mode: modeText(f.rendered?.mode ?? f.mode ?? 0o644),
        reload: f.reload ? reloadText(f.reload) : undefined,
        path: f.rendered?.path,
        content: f.rendered?.shown,
      })),
  }),
  labels: field({
    spec: 'labels',
    schema: z.record(
      line().refine((k) => !k.toLowerCase().startsWith('berth.'), {
        error: (iss) =>
          `label ${JSON.stringify(iss.input)} is reserved: berth.* labels are how berth knows its containers`,
      }),
      stringish(),
    ),
    description: 'Container labels. Keys starting with "berth." are reserved.',
    default: {},
    merge: 'keys',
    text: 'map',
    container: true,
    template: { shape: 'map' },
  }),
  stop_signal: field({
    spec: 'stopSignal',
    schema: stringish(),
    description: 'Signal that stops the container, e.g. SIGTERM.',
    text: 'value',
    container: true,
  }),
  stop_timeout: field({
    spec: 'stopTimeout',
    schema: duration('Seconds to wait after the stop signal before killing: 30 or "30s".')
      .pipe(z.number().refine((ms) => ms % 1000 === 0, { error: 'stop_timeout must be whole seconds' }))
      .transform((ms) => ms / 1000),
    container: true,
  }),
  network_mode: field({
    spec: 'networkMode',
    schema: nonEmptyLine(),
    description: 'Docker network mode.',
    default: 'host',
    container: true,
  }),
  restart_policy: field({
    spec: 'restartPolicy',
    schema: z.string().regex(RESTART, {
      error: (iss) =>
        `invalid restart_policy ${JSON.stringify(iss.input)}: use no, always, unless-stopped or on-failure[:N]`,
    }),
    description: 'Docker restart policy.',
    default: 'always',
    container: true,
  }),
  init: field({
    spec: 'init',
    schema: z.boolean(),
    description: 'Run an init process as PID 1.',
    default: true,
    container: true,
  }),
  log_driver: field({
    spec: 'logDriver',
    schema: nonEmptyLine(),
    description: 'Docker log driver, e.g. syslog.',
    container: true,
  }),
  // Not templated: docker's own `{{.Name}}` tags must reach the engine as written.
  log_options: field({
    spec: 'logOptions',
    schema: stringMap('Options of the log driver.'),
    default: {},
    merge: 'keys',
    text: 'map',
    container: true,
  }),
  pull: field({
    spec: 'pull',
    schema: z.enum(['always', 'missing']),
    description:
      'always: ask the registry each time (a moved tag is a change); missing: only pull absent images.',
    default: 'always',
    container: false,
  }),
  // Not merged key by key: a health check is one probe with its timings, and mixing the
  // default's probe with the service's would make two.
  healthcheck: field({
    spec: 'healthcheck',
    schema: healthcheck,
    normalise: (h): HealthcheckSpec => {
      const hc: HealthcheckSpec = {
        interval: h.interval ?? HEALTH_DEFAULTS.interval,
        timeout: h.timeout ?? HEALTH_DEFAULTS.timeout,
        retries: h.retries ?? HEALTH_DEFAULTS.retries,
        startPeriod: h.start_period ?? HEALTH_DEFAULTS.startPeriod,
      };
      if (h.http !== undefined) hc.http = h.http;
      if (h.tcp !== undefined) hc.tcp = h.tcp;
      if (h.docker) hc.docker = true;
      return hc;
    },
    container: false,
    template: { shape: 'keys', keys: ['http', 'tcp'] },
    show: (hc) => ({
      http: hc.http,
      tcp: hc.tcp,
      docker: hc.docker,
      interval: `${hc.interval}ms`,
      timeout: `${hc.timeout}ms`,
      retries: hc.retries,
      start_period: `${hc.startPeriod}ms`,
    }),
  }),
  drain: field({
    spec: 'drain',
    schema: z.boolean(),
    description: 'Take the host out of the load balancer before restarting this service.',
    default: false,
    container: false,
  }),
};

type Table = typeof SERVICE_FIELDS;
/** A key of a service file (`working_dir`). */
export type FieldKey = keyof Table;
type ValueOf<F> = F extends ServiceField<string, infer _S, infer O, boolean> ? O : never;
type KeysWhere<P> = { [F in FieldKey]: Table[F]['presence'] extends P ? F : never }[FieldKey];

/** The fields of a ServiceSpec, as the table makes them: a field without a default is optional. */
export type ServiceFieldValues = {
  [F in KeysWhere<'required' | 'defaulted'> as Table[F]['spec']]: ValueOf<Table[F]>;
} & {
  [F in KeysWhere<'optional'> as Table[F]['spec']]?: ValueOf<Table[F]>;
};

/** A key of ServiceSpec that comes from the table (`workingDir`). */
export type FieldSpecKey = Table[FieldKey]['spec'];

/** The spec keys of the fields that are part of the container. */
export type ContainerKey = {
  [F in FieldKey]: Table[F] extends { container: true } ? Table[F]['spec'] : never;
}[FieldKey];

/** The table as a list of [file key, field], in its order. */
export const FIELD_LIST = Object.entries(SERVICE_FIELDS) as Array<[FieldKey, ServiceField<FieldSpecKey>]>;

/** The container's fields, [file key, field], in table order: what the config hash covers. */
export const CONTAINER_FIELDS = FIELD_LIST.filter(([, f]) => f.container) as Array<
  [FieldKey, ServiceField<ContainerKey>]
>;

/** What a template may read as `service.X`: the name, and the readable fields (never templated ones). */
export const SERVICE_TEMPLATE_FIELDS: readonly string[] = [
  'name',
  ...FIELD_LIST.filter(([, f]) => f.readable).map(([, f]) => f.spec),
];
