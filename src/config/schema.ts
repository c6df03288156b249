import * as z from 'zod';
import { FIELD_LIST, type FieldKey, type SERVICE_FIELDS, type ServiceField } from './fields.js';
import {
  absPath,
  duration,
  envAndFilesDirProblem,
  envDirProblem,
  filesDirProblem,
  hasTemplate,
  line,
  nonEmptyLine,
} from './schema-parts.js';
import { agentSchema } from './agent-schema.js';

/** Service names become file names (`<env_dir>/<name>`) and container names. */
export const SAFE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{1,62}$/;

/**
 * Names berth gives its own containers: `berth.lock`, `berth.state`, `berth.drained`, and
 * `<service>.berth-old` for a container set aside during a replace. No service may be named so.
 */
const RESERVED_NAME = /^berth\.|\.berth-/i;

/** Why `name` cannot be a service's name because berth uses it itself, or undefined. */
export function reservedNameProblem(name: string): string | undefined {
  if (!RESERVED_NAME.test(name)) return undefined;
  return (
    `service name ${JSON.stringify(name)} is reserved: berth names its own containers "berth.*" ` +
    `and sets a replaced container aside as "<service>.berth-old"`
  );
}
/** Environment names end up in branch names and messages, never in container names. */
const ENVIRONMENT_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
const INVENTORY_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

const serviceName = () =>
  z
    .string()
    .superRefine((n, ctx) => {
      const reserved = SAFE_NAME.test(n) ? reservedNameProblem(n) : undefined;
      if (reserved) ctx.addIssue({ code: 'custom', message: reserved });
    })
    .regex(SAFE_NAME, {
      error: (iss) =>
        `${JSON.stringify(iss.input)} is not a safe service name: use 2-63 letters, digits, "_", "." or "-", ` +
        `starting with a letter or digit`,
    });

type Table = typeof SERVICE_FIELDS;
/** A field's schema as a file key takes it: optional unless required, with what editors show. */
type FieldSchema<F extends FieldKey> = Table[F]['presence'] extends 'required'
  ? Table[F]['schema']
  : z.ZodOptional<Table[F]['schema']>;
type Shape<F extends FieldKey> = { [K in F]: FieldSchema<K> };
type RequiredKey = { [F in FieldKey]: Table[F]['presence'] extends 'required' ? F : never }[FieldKey];

function fieldSchema(f: ServiceField): z.ZodType {
  let s: z.ZodType = f.required ? f.schema : f.schema.optional();
  if (f.description !== undefined) s = s.describe(f.description);
  // Scalars only: an empty list or map as "default" tells an editor nothing.
  const d = f.default;
  if (typeof d === 'string' || typeof d === 'number' || typeof d === 'boolean') s = s.meta({ default: d });
  return s;
}

/** Every field of a service file, in table order. */
const allFields = Object.fromEntries(FIELD_LIST.map(([k, f]) => [k, fieldSchema(f)])) as Shape<FieldKey>;

/** Every field but the required ones (`image`): the shape of berth.yaml `defaults`. */
const serviceFields = Object.fromEntries(
  FIELD_LIST.filter(([, f]) => !f.required).map(([k]) => [k, allFields[k]]),
) as Shape<Exclude<FieldKey, RequiredKey>>;

const mapFields = FIELD_LIST.filter(([, f]) => f.merge === 'keys').map(([k]) => k);

/** A service file in canonical form; its name is the file name. */
export const serviceSchema = z
  .strictObject(allFields)
  .meta({ title: 'berth service', description: 'One service of a berth state repo: services/<name>.yaml.' });

/** The body of a service file in the reference design's keyed form. */
export const keyedServiceSchema = z.strictObject({
  name: serviceName().optional().describe('Service name; defaults to the top-level key.'),
  ...allFields,
});

/** `defaults` in berth.yaml: any service field but `image`. */
export const defaultsSchema = z
  .strictObject(serviceFields)
  .describe(`Merged under every service; maps (${mapFields.join(', ')}) key by key, the service wins.`);

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
      .superRefine((d, ctx) => {
        const problem = envDirProblem(d);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional()
      .describe('Where env files go on each host.')
      .meta({ default: '/etc/berth/env' }),
    files_dir: absPath('files_dir')
      .superRefine((d, ctx) => {
        const problem = filesDirProblem(d);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional()
      .describe("Where services' config files (files:) go on each host, one folder per service.")
      .meta({ default: '/etc/berth/files' }),
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
        provider: nonEmptyLine().describe('haproxy | command | octavia | aws-elbv2'),
      })
      .optional()
      .describe("How a host leaves and rejoins rotation; other keys are the provider's settings."),
    rollout: z
      .strictObject({
        batch: z
          .union([
            z.int().min(1),
            z.string().regex(/^(?:100|[1-9][0-9]?)%$/, {
              error: (iss) =>
                `${JSON.stringify(iss.input)} is not a number of hosts or a percentage from 1% to 100%`,
            }),
          ])
          .optional()
          .describe(
            'Hosts `berth deploy` changes at once: a number, or a percentage of the hosts deployed (rounded up).',
          )
          .meta({ default: 1 }),
        max_unavailable: z
          .union([
            z.int().min(1, {
              error: 'must be at least 1 (0 would keep every change that needs a drain waiting for ever)',
            }),
            z.string().regex(/^(?:100|[1-9][0-9]?)%$/, {
              error: (iss) =>
                `${JSON.stringify(iss.input)} is not a number of hosts or a percentage from 1% to 100%`,
            }),
          ])
          .optional()
          .describe(
            'Hosts of a group that may be out of rotation at once: a number, or a percentage of the ' +
              "group's hosts (rounded down, at least 1). Held by leases in the record.",
          )
          .meta({ default: 1 }),
        lease_expiry: duration(
          'How long a lease lasts when its holder stops renewing it (it died), e.g. 30s.',
        )
          .refine((ms) => ms >= 1000, { error: 'lease_expiry must be at least 1s' })
          .optional()
          .meta({ default: '30s' }),
      })
      .optional()
      .describe('How changes roll across the fleet.'),
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
    agent: agentSchema.optional(),
  })
  .superRefine((b, ctx) => {
    const env = b.env_dir ?? '/etc/berth/env';
    const files = b.files_dir ?? '/etc/berth/files';
    // A folder that is wrong on its own is said once, by its own check.
    if (envDirProblem(env) || filesDirProblem(files)) return;
    const problem = envAndFilesDirProblem(env, files);
    if (problem)
      ctx.addIssue({ code: 'custom', path: [b.files_dir ? 'files_dir' : 'env_dir'], message: problem });
  })
  .meta({ title: 'berth.yaml', description: 'Settings of a berth state repo; every key is optional.' });

const vars = () => z.record(z.string(), z.unknown()).describe('Variables for templates: host.vars.');

/**
 * How `deploy`, `status` and `wait` reach hosts over SSH: inventory.yaml's `ssh:`, and a `ssh`
 * map in the vars of a group or host (key by key over it).
 */
export const sshSchema = z.strictObject({
  user: nonEmptyLine().optional().describe('The login user (default: your ssh config, else your own name).'),
  port: z.int().min(1).max(65535).optional().describe('The SSH port (default: your ssh config, else 22).'),
  identity_file: nonEmptyLine().optional().describe('A private key; only this key is offered.'),
  known_hosts: nonEmptyLine()
    .optional()
    .describe('The known_hosts file host keys are checked against (default: ~/.ssh/known_hosts).'),
  bastion: line()
    .regex(/^(?:[^@\s]+@)?[^@:\s]+(?::\d{1,5})?$/, {
      error: (iss) => `bastion ${JSON.stringify(iss.input)} must be [user@]host[:port]`,
    })
    .optional()
    .describe('A jump host, [user@]host[:port], reached with the same key and known_hosts.'),
  host_key_checking: z
    .enum(['strict', 'accept-new'])
    .optional()
    .describe(
      "strict: refuse a host whose key is not in known_hosts; accept-new: record a new host's key. A changed key is always refused.",
    )
    .meta({ default: 'strict' }),
  config_file: nonEmptyLine()
    .optional()
    .describe('An ssh_config file to use instead of ~/.ssh/config and /etc/ssh/ssh_config.'),
  connect_timeout: duration('Bound on connecting to a host (and to the bastion), e.g. 10s.')
    .optional()
    .meta({ default: '10s' }),
});

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
    ssh: sshSchema
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
