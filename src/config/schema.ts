import { z } from 'zod';
import { imageRefProblem } from './image-ref.js';
import { parseDuration, splitCommand } from './values.js';

/** Service names become file names (`<env_dir>/<name>`) and container names. */
export const SAFE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{1,62}$/;
/** Environment names end up in branch names and messages, never in container names. */
const ENVIRONMENT_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SINGLE_LINE = /^[^\n\r\0]*$/;
const RESTART = /^(?:no|always|unless-stopped|on-failure(?::\d+)?)$/;
const INVENTORY_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

const hasTemplate = (s: string): boolean => s.includes('{{');

// An env file or a docker flag cannot carry a line break or NUL; catching it here beats a
// truncated value on the host.
const line = () =>
  z.string().regex(SINGLE_LINE, {
    error: (iss) =>
      String(iss.input).includes('\0') ? 'contains a NUL character' : 'contains a line break; use one line',
  });

const nonEmptyLine = () => line().min(1, { error: 'must not be empty' });

// CI and people write `buildNumber: 123` and `FOO: 1`; the loader has already replaced such
// YAML numbers and booleans by their source text, so `1.10` stays "1.10".
const stringish = () => z.union([line(), z.number(), z.boolean()]).transform((v) => String(v));

const absPath = (what: string) =>
  nonEmptyLine().refine((s) => s.startsWith('/'), { error: `${what} must be an absolute path` });

const serviceName = () =>
  z.string().regex(SAFE_NAME, {
    error: (iss) =>
      `${JSON.stringify(iss.input)} is not a safe service name: use 2-63 letters, digits, "_", "." or "-", ` +
      `starting with a letter or digit`,
  });

const image = z
  .string()
  .superRefine((s, ctx) => {
    const problem = imageRefProblem(s);
    if (problem)
      ctx.addIssue({ code: 'custom', message: `invalid image reference ${JSON.stringify(s)}: ${problem}` });
  })
  .describe('Image reference: [registry/]name[:tag][@sha256:digest]. Without tag or digest, :latest.')
  .meta({ examples: ['127.0.0.1:5000/team/api:1.4.2'] });

const argv = () =>
  z.union([line(), z.array(stringish())]).transform((v, ctx): string[] => {
    if (Array.isArray(v)) return v;
    const r = splitCommand(v);
    if (!Array.isArray(r)) {
      ctx.issues.push({ code: 'custom', message: r.error, input: v });
      return z.NEVER;
    }
    return r;
  });

const duration = (desc: string) =>
  z
    .union([z.number().nonnegative(), line()])
    .transform((v, ctx): number => {
      const ms = parseDuration(v);
      if (typeof ms === 'number') return ms;
      ctx.issues.push({ code: 'custom', message: ms.error, input: v });
      return z.NEVER;
    })
    .describe(desc);

const stringMap = (desc: string) => z.record(line(), stringish()).describe(desc);

const healthcheck = z
  .strictObject({
    http: line()
      .refine((s) => /^https?:\/\/./.test(s) && (hasTemplate(s) || URL.canParse(s)), {
        error: (iss) => `${JSON.stringify(iss.input)} is not an http:// or https:// URL`,
      })
      .optional()
      .describe('URL that answers 2xx or 3xx when the service is healthy.'),
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

const volume = line().refine(
  (v) => {
    if (hasTemplate(v)) return true;
    const parts = v.split(':');
    const dst = parts.length === 1 ? parts[0] : parts[1];
    return parts.length <= 3 && parts.every((p) => p !== '') && (dst ?? '').startsWith('/');
  },
  { error: (iss) => `volume ${JSON.stringify(iss.input)} must be SRC:DST[:MODE] or DST, with DST absolute` },
);

/** Every field of a service file except `image`; also the shape of berth.yaml `defaults`. */
const serviceFields = {
  gitCommit: stringish().optional().describe('CI metadata: the source commit, shown in status and history.'),
  buildNumber: z
    .union([line(), z.int()])
    .transform((v) => String(v))
    .optional()
    .describe('CI metadata: the build number, compared numerically when bumped.'),
  env_vars: z
    .record(
      z.string().regex(ENV_NAME, {
        error: (iss) =>
          `invalid env name ${JSON.stringify(iss.input)}: use letters, digits and "_", not starting with a digit`,
      }),
      stringish(),
    )
    .optional()
    .describe('Environment written to the env file; any change recreates the container.'),
  hosts: z
    .array(nonEmptyLine())
    .optional()
    .describe('Inventory groups or host names this service runs on. Default: every host.'),
  command: argv().optional().describe('Command: a list, or a string split like a shell would.'),
  entrypoint: argv().optional().describe('Entrypoint: a list, or a string split like a shell would.'),
  user: stringish().optional().describe('User (name or uid[:gid]) the container runs as.'),
  working_dir: absPath('working_dir').optional().describe('Working directory inside the container.'),
  volumes: z.array(volume).optional().describe('Bind mounts and volumes: SRC:DST[:MODE].'),
  labels: z
    .record(
      line().refine((k) => !k.startsWith('berth.'), {
        error: (iss) =>
          `label ${JSON.stringify(iss.input)} is reserved: berth.* labels are how berth knows its containers`,
      }),
      stringish(),
    )
    .optional()
    .describe('Container labels. Keys starting with "berth." are reserved.'),
  stop_signal: stringish().optional().describe('Signal that stops the container, e.g. SIGTERM.'),
  stop_timeout: duration('Seconds to wait after the stop signal before killing: 30 or "30s".')
    .pipe(z.number().refine((ms) => ms % 1000 === 0, { error: 'stop_timeout must be whole seconds' }))
    .transform((ms) => ms / 1000)
    .optional(),
  network_mode: nonEmptyLine().optional().describe('Docker network mode.').meta({ default: 'host' }),
  restart_policy: z
    .string()
    .regex(RESTART, {
      error: (iss) =>
        `invalid restart_policy ${JSON.stringify(iss.input)}: use no, always, unless-stopped or on-failure[:N]`,
    })
    .optional()
    .describe('Docker restart policy.')
    .meta({ default: 'always' }),
  init: z.boolean().optional().describe('Run an init process as PID 1.').meta({ default: true }),
  log_driver: nonEmptyLine().optional().describe('Docker log driver, e.g. syslog.'),
  log_options: stringMap('Options of the log driver.').optional(),
  pull: z
    .enum(['always', 'missing'])
    .optional()
    .describe(
      'always: ask the registry each time (a moved tag is a change); missing: only pull absent images.',
    )
    .meta({ default: 'always' }),
  healthcheck: healthcheck.optional(),
  drain: z
    .boolean()
    .optional()
    .describe('Take the host out of the load balancer before restarting this service.')
    .meta({ default: false }),
};

/** A service file in canonical form; its name is the file name. */
export const serviceSchema = z
  .strictObject({ image, ...serviceFields })
  .meta({ title: 'berth service', description: 'One service of a berth state repo: services/<name>.yaml.' });

/** The body of a service file in the reference design's keyed form. */
export const keyedServiceSchema = z.strictObject({
  name: serviceName().optional().describe('Service name; defaults to the top-level key.'),
  image,
  ...serviceFields,
});

/** `defaults` in berth.yaml: any service field but `image`. */
export const defaultsSchema = z
  .strictObject(serviceFields)
  .describe('Merged under every service; maps (env_vars, labels, log_options) key by key, the service wins.');

/** What editors validate a service file against: either form. */
export const serviceFileSchema = z.union([serviceSchema, z.record(z.string(), keyedServiceSchema)]).meta({
  title: 'berth service',
  description:
    'One service of a berth state repo (services/<name>.yaml): the canonical form, or the reference ' +
    "design's keyed form with one top-level key holding name, image, gitCommit, buildNumber, env_vars.",
});

const envName = () =>
  z.string().regex(ENVIRONMENT_NAME, {
    error: (iss) => `${JSON.stringify(iss.input)} is not a valid environment name`,
  });

/** berth.yaml. */
export const berthSchema = z
  .strictObject({
    project: nonEmptyLine().optional().describe('Project name, shown in status and history.'),
    env_dir: absPath('env_dir')
      .optional()
      .describe('Where env files go on each host.')
      .meta({ default: '/etc/berth/env' }),
    secrets_dir: absPath('secrets_dir')
      .optional()
      .describe("The host's secrets folder, one 0600 file per secret.")
      .meta({ default: '/etc/berth/secrets' }),
    services_dir: nonEmptyLine()
      .refine((s) => !s.startsWith('/') && !s.split('/').includes('..'), {
        error: 'services_dir must be a path inside the repo',
      })
      .optional()
      .describe('Folder of the service files, relative to the repo root.')
      .meta({ default: 'services' }),
    defaults: defaultsSchema.optional(),
    environments: z
      .record(
        envName(),
        z.strictObject({
          branch: nonEmptyLine().describe('The branch holding this environment.'),
          promote_to: envName().optional().describe('The environment a verified release goes to next.'),
        }),
      )
      .optional()
      .describe('Environments, each a branch, and the promotion chain.'),
    load_balancer: z
      .looseObject({
        provider: nonEmptyLine().describe('haproxy | command | openstack | aws'),
      })
      .optional()
      .describe("How a host leaves and rejoins rotation; other keys are the provider's settings."),
    rollout: z
      .strictObject({
        batch: z.int().min(1).optional().describe('Hosts deployed at once.').meta({ default: 1 }),
        max_unavailable: z
          .int()
          .min(0)
          .optional()
          .describe('Hosts that may be out of rotation at once.')
          .meta({ default: 1 }),
      })
      .optional()
      .describe('How `berth deploy` walks the fleet.'),
    smoke: z
      .record(
        envName(),
        z.array(
          z.strictObject({
            url: line()
              .superRefine((s, ctx) => {
                // Smoke checks run from CI, where there is no host to render a template for.
                if (hasTemplate(s)) {
                  ctx.addIssue({
                    code: 'custom',
                    message: 'smoke URLs are not templated; write the URL out',
                  });
                } else if (!/^https?:\/\/./.test(s) || !URL.canParse(s)) {
                  ctx.addIssue({
                    code: 'custom',
                    message: `${JSON.stringify(s)} is not an http:// or https:// URL`,
                  });
                }
              })
              .describe('URL to request (GET).'),
            status: z
              .int()
              .min(100)
              .max(599)
              .optional()
              .describe('Expected HTTP status.')
              .meta({ default: 200 }),
            body: nonEmptyLine().optional().describe('Text the response body must contain.'),
            timeout: duration('Longest wait for the whole answer, e.g. 10s.')
              .optional()
              .meta({ default: '10s' }),
          }),
        ),
      )
      .optional()
      .describe('Checks run by `berth smoke --env ENV`, per environment.'),
    inventory: z
      .looseObject({
        source: z
          .enum(['static', 'aws-ec2'])
          .describe('static: inventory.yaml; aws-ec2: discovered, with its settings.'),
      })
      .superRefine((inv, ctx) => {
        if (inv.source !== 'static') return;
        const extra = Object.keys(inv).filter((k) => k !== 'source');
        if (extra.length) ctx.addIssue({ code: 'unrecognized_keys', keys: extra, input: inv });
      })
      .optional()
      .describe('Where the host list comes from.')
      .meta({ default: { source: 'static' } }),
  })
  .meta({ title: 'berth.yaml', description: 'Settings of a berth state repo; every key is optional.' });

const vars = () => z.record(z.string(), z.unknown()).describe('Variables for templates: host.vars.');

/** inventory.yaml. */
export const inventorySchema = z
  .strictObject({
    hosts: z
      .record(
        z
          .string()
          .regex(INVENTORY_NAME, { error: (iss) => `${JSON.stringify(iss.input)} is not a valid host name` }),
        z
          .strictObject({
            address: nonEmptyLine().optional().describe('How to reach the host; defaults to its name.'),
            groups: z
              .array(
                z.string().regex(INVENTORY_NAME, {
                  error: (iss) => `${JSON.stringify(iss.input)} is not a valid group name`,
                }),
              )
              .optional()
              .describe('Groups the host belongs to.'),
            vars: vars().optional(),
          })
          .nullable(),
      )
      .optional()
      .describe('Hosts by inventory name (what --host takes).'),
    groups: z
      .record(
        z.string().regex(INVENTORY_NAME, {
          error: (iss) => `${JSON.stringify(iss.input)} is not a valid group name`,
        }),
        z.strictObject({ vars: vars().optional() }).nullable(),
      )
      .optional()
      .describe('Group settings; a group named only by hosts exists too.'),
    ssh: z
      .strictObject({
        user: nonEmptyLine().optional(),
        port: z.int().min(1).max(65535).optional(),
        identity_file: nonEmptyLine().optional(),
        known_hosts: nonEmptyLine().optional(),
        bastion: line()
          .regex(/^(?:[^@\s]+@)?[^@:\s]+(?::\d{1,5})?$/, {
            error: (iss) => `bastion ${JSON.stringify(iss.input)} must be [user@]host[:port]`,
          })
          .optional(),
      })
      .optional()
      .describe("How `deploy` and `status` reach hosts; the rest comes from the user's ~/.ssh/config."),
  })
  .meta({
    title: 'berth inventory',
    description: 'Hosts and groups of a berth state repo (static inventory).',
  });

/** A service file's body after validation, before defaults are merged. */
export type ServiceInput = z.output<typeof keyedServiceSchema>;
/** berth.yaml after validation. */
export type BerthInput = z.output<typeof berthSchema>;
/** inventory.yaml after validation. */
export type InventoryInput = z.output<typeof inventorySchema>;

/**
 * The JSON Schemas editors use for the state repo's files, keyed by output file name.
 * `scripts/gen-schema.ts` writes them to schema/; a test keeps the committed copies in sync.
 */
export function jsonSchemas(): Record<string, object> {
  const gen = (schema: z.ZodType, id: string) => ({
    $id: `https://berth.dev/schema/${id}`,
    ...z.toJSONSchema(schema, { io: 'input', target: 'draft-2020-12' }),
  });
  return {
    'service.schema.json': gen(serviceFileSchema, 'service.schema.json'),
    'berth.schema.json': gen(berthSchema, 'berth.schema.json'),
    'inventory.schema.json': gen(inventorySchema, 'inventory.schema.json'),
  };
}

/** The schema files' exact text (stable JSON, two-space indent, trailing newline), by file name. */
export function jsonSchemaFiles(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(jsonSchemas()).map(([name, s]) => [name, `${JSON.stringify(s, null, 2)}\n`]),
  );
}
