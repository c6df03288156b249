import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { sleep } from './clock.js';
import { CancelledError, ExternalError, HostBusyError } from '../model/errors.js';
import type { LbState } from '../model/rotation.js';
import type { DrainMarker, HeldLock, HostState, LockHolder, LockInfo } from './host-state.js';

/**
 * Host state kept in the Docker engine itself, as containers that are created and never
 * started, from an empty image berth imports once (nothing is pulled from anywhere):
 *
 * - `berth.lock`: the apply lock. Creating a container is atomic per name, so exactly one of
 *   two contenders gets it. Its labels say who holds it; the holder writes a heartbeat file
 *   into it (the engine's archive API) every few seconds, so a holder on another machine that
 *   stopped renewing is known to be gone.
 * - `berth.drained`: exists while berth has the host out of its load balancer; a label keeps
 *   the state the host had before.
 * - `berth.state`: made once; carries the host's secret-digest key in its environment, which is
 *   exactly as private as the secrets in every service container's environment.
 *
 * Being in the engine, this state is reached through the same connection as the containers:
 * a unix socket, tcp, or an SSH-forwarded socket; every caller of one engine meets one lock.
 */

/** The image the state containers are made from: an empty filesystem, imported, never run. */
export const STATE_IMAGE = 'berth/state:1';
export const STATE_NAMES = { lock: 'berth.lock', drained: 'berth.drained', state: 'berth.state' } as const;
/** Label that marks berth's own state containers; the planner leaves them alone. */
export const ROLE_LABEL = 'berth.role';
const HOLDER_LABEL = 'berth.lock.holder';
const PREVIOUS_LABEL = 'berth.drained.previous';
const KEY_ENV = 'BERTH_DIGEST_KEY';
const KEY_BYTES = 32;
const HEARTBEAT_FILE = 'heartbeat';

/** How often a holder renews its lock, and how long without renewal means it is gone. */
export const HEARTBEAT_MS = 5_000;
export const STALE_AFTER_MS = 30_000;
const WAIT_POLL_MS = 1_000;

interface ApiError extends Error {
  statusCode?: number;
}
const status = (e: unknown) => (e as ApiError).statusCode;

/** What a holder writes into the lock's label: enough to tell, from this machine, whether it lives. */
interface HolderRecord extends LockInfo {
  /** Kernel boot id of the holder's machine: a PID means nothing after a reboot. */
  boot?: string;
  /** Start time of the holder's process (clock ticks since boot), so a reused PID is not taken for it. */
  pidStart?: string;
}

export interface DockerStateOptions {
  /** A key file from before host state moved into the engine: adopted once so no secret-using service is recreated. */
  legacyKeyFile?: string;
  /** For tests: a different heartbeat period and staleness. */
  heartbeatMs?: number;
  staleAfterMs?: number;
}

/**
 * `docker` gives the engine's client; `call` wraps each request so its failure is an
 * ExternalError naming the engine (the engine adapter's own wrapper).
 */
export function dockerHostState(
  docker: () => Promise<Dockerode>,
  call: <T>(what: string, fn: (d: Dockerode) => Promise<T>) => Promise<T>,
  endpoint: string,
  opts: DockerStateOptions = {},
): HostState {
  const heartbeatMs = opts.heartbeatMs ?? HEARTBEAT_MS;
  const staleAfterMs = opts.staleAfterMs ?? STALE_AFTER_MS;
  let imageReady: Promise<void> | undefined;

  const ensureImage = () =>
    (imageReady ??= call('prepare berth state image', async (d) => {
      try {
        await d.getImage(STATE_IMAGE).inspect();
        return;
      } catch (e) {
        if (status(e) !== 404) throw e;
      }
      const [repo, tag] = STATE_IMAGE.split(':') as [string, string];
      // Two blocks of zeros: a tar archive with nothing in it.
      const stream = (await d.importImage(Readable.from([Buffer.alloc(1024)]), {
        repo,
        tag,
      })) as NodeJS.ReadableStream;
      await new Promise<void>((resolve, reject) =>
        d.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())),
      );
    }).catch((e: unknown) => {
      imageReady = undefined;
      throw e;
    }));

  /** Create a state container; undefined when one of that name exists already. */
  const createState = async (
    name: string,
    labels: Record<string, string>,
    env: string[] = [],
  ): Promise<string | undefined> => {
    await ensureImage();
    return call(`create ${name}`, async (d) => {
      try {
        const c = await d.createContainer({
          name,
          Image: STATE_IMAGE,
          // Never run: the command only has to exist for the engine to accept the container.
          Cmd: ['/berth-state'],
          Labels: { [ROLE_LABEL]: name.replace(/^berth\./, ''), ...labels },
          Env: env,
          HostConfig: { NetworkMode: 'none' },
        });
        return c.id;
      } catch (e) {
        if (status(e) === 409) return undefined;
        throw e;
      }
    });
  };

  const inspectState = (name: string) =>
    call(`inspect ${name}`, async (d) => {
      try {
        return await d.getContainer(name).inspect();
      } catch (e) {
        if (status(e) === 404) return undefined;
        throw e;
      }
    });

  const removeState = (idOrName: string) =>
    call(`remove ${idOrName}`, async (d) => {
      try {
        await d.getContainer(idOrName).remove({ force: true });
      } catch (e) {
        if (status(e) !== 404) throw e;
      }
    });

  /** The engine's clock: every holder and contender compares times on one clock. */
  const engineNow = () =>
    call('read the engine clock', async (d) => {
      const info = (await d.info()) as { SystemTime?: string };
      const t = Date.parse(info.SystemTime ?? '');
      return Number.isFinite(t) ? t : Date.now();
    });

  const writeHeartbeat = (id: string, at: number) =>
    call('renew the berth lock', async (d) => {
      // tar-stream is loaded at the first heartbeat: most applies end before one is due.
      const tar = await import('tar-stream');
      const pack = tar.pack();
      pack.entry({ name: HEARTBEAT_FILE, mode: 0o644 }, `${new Date(at).toISOString()}\n`);
      pack.finalize();
      await d.getContainer(id).putArchive(pack as unknown as NodeJS.ReadableStream, { path: '/' });
    });

  const readHeartbeat = (id: string) =>
    call('read the berth lock', async (d): Promise<number | undefined> => {
      let stream: NodeJS.ReadableStream;
      try {
        stream = (await d
          .getContainer(id)
          .getArchive({ path: `/${HEARTBEAT_FILE}` })) as NodeJS.ReadableStream;
      } catch (e) {
        if (status(e) === 404) return undefined;
        throw e;
      }
      const text = await firstFile(stream);
      const t = Date.parse(text.trim());
      return Number.isFinite(t) ? t : undefined;
    });

  /** Whether the holder of lock container `c` is gone, and may be replaced. */
  const holderGone = async (id: string, h: HolderRecord, created: number): Promise<boolean> => {
    const me = thisMachine();
    if (h.machine === me.machine && h.boot !== undefined && h.boot === me.boot) {
      return !processAlive(h.pid, h.pidStart);
    }
    const beat = (await readHeartbeat(id)) ?? created;
    return (await engineNow()) - beat > staleAfterMs;
  };

  const describe = (h: LockInfo) =>
    `${h.command} (pid ${h.pid} on ${h.machine}, user ${h.user}) has held it since ${h.since}`;

  const tryLock = async (
    holder: LockHolder,
  ): Promise<{ held: HeldLock } | { busy: LockInfo | undefined }> => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const me = thisMachine();
      // `since` is the container's creation time, on the engine's clock (read back below).
      const record: HolderRecord = {
        command: holder.command,
        machine: me.machine,
        pid: process.pid,
        user: me.user,
        since: '',
        boot: me.boot,
        pidStart: me.pidStart,
      };
      const { since: _s, ...label } = record;
      const id = await createState(STATE_NAMES.lock, { [HOLDER_LABEL]: JSON.stringify(label) });
      if (id) return { held: heldLock(id, record) };
      const c = await inspectState(STATE_NAMES.lock);
      if (!c) continue; // released between our create and our look: try again
      const h = parseHolder(c.Config.Labels?.[HOLDER_LABEL], c.Created);
      if (h && !(await holderGone(c.Id, h, Date.parse(c.Created)))) return { busy: h };
      // Gone: remove that very container (by id, so a lock taken meanwhile by someone else
      // is never removed) and race for the name again.
      await removeState(c.Id);
    }
    return { busy: undefined };
  };

  const heldLock = (id: string, info: HolderRecord): HeldLock => {
    let released: Promise<void> | undefined;
    // No beat at first: until the first one, the container's creation time stands for it, so
    // an apply that ends within one period costs the engine nothing more than create and remove.
    let beating: Promise<unknown> = Promise.resolve();
    const timer = setInterval(() => {
      beating = beating.then(async () => writeHeartbeat(id, await engineNow())).catch(() => undefined); // a missed beat is retried at the next one
    }, heartbeatMs);
    timer.unref();
    const { boot: _b, pidStart: _p, ...rest } = info;
    const shown: LockInfo = { ...rest };
    let sinceRead: Promise<void> | undefined;
    return {
      get info() {
        return shown;
      },
      async describe() {
        sinceRead ??= inspectState(STATE_NAMES.lock).then((c) => {
          if (c?.Id === id) shown.since = c.Created;
        });
        await sinceRead;
        return shown;
      },
      release: () =>
        (released ??= (async () => {
          clearInterval(timer);
          await beating;
          await removeState(id);
        })()),
    };
  };

  return {
    async lock(holder, lockOpts = {}) {
      const deadline = Date.now() + (lockOpts.waitMs ?? 0);
      for (;;) {
        const r = await tryLock(holder);
        if ('held' in r) return r.held;
        if (lockOpts.signal?.aborted) throw new CancelledError('cancelled while waiting for the host');
        const waitMore = deadline - Date.now();
        if (waitMore <= 0) {
          const who = r.busy ? describe(r.busy) : 'another berth is taking it right now';
          const waited = lockOpts.waitMs ? ` (waited ${Math.round(lockOpts.waitMs / 1000)} s)` : '';
          throw new HostBusyError(
            `the host at ${endpoint} is busy: ${who}${waited}; try again later or pass --wait-lock`,
            r.busy,
          );
        }
        await sleep(Math.min(WAIT_POLL_MS, waitMore), lockOpts.signal);
      }
    },

    async lockHolder() {
      const c = await inspectState(STATE_NAMES.lock);
      const h = c && parseHolder(c.Config.Labels?.[HOLDER_LABEL], c.Created);
      if (!c || !h || (await holderGone(c.Id, h, Date.parse(c.Created)))) return undefined;
      const { boot: _b, pidStart: _p, ...shown } = h;
      return shown;
    },

    drainMarker: drainMarkerIn({ createState, inspectState, removeState }),

    async digestKey() {
      const read = async () => {
        const c = await inspectState(STATE_NAMES.state);
        const v = c?.Config.Env?.find((e) => e.startsWith(`${KEY_ENV}=`))?.slice(KEY_ENV.length + 1);
        return v === undefined ? undefined : Buffer.from(v, 'hex');
      };
      const found = await read();
      if (found?.length === KEY_BYTES) return found;
      if (found) {
        throw new ExternalError(
          'docker',
          `${STATE_NAMES.state} holds a digest key of ${found.length} bytes, not ${KEY_BYTES}; ` +
            `remove that container to make a new key (each service that uses a secret is then recreated once) [${endpoint}]`,
        );
      }
      const key = legacyKey(opts.legacyKeyFile) ?? randomBytes(KEY_BYTES);
      // Two first runs racing: both try to create; the loser reads the winner's key.
      await createState(STATE_NAMES.state, {}, [`${KEY_ENV}=${key.toString('hex')}`]);
      // The engine reserves the name a moment before the winner's container can be inspected.
      for (let i = 0; i < 50; i++) {
        const won = await read();
        if (won?.length === KEY_BYTES) return won;
        await sleep(20);
      }
      throw new ExternalError('docker', `${STATE_NAMES.state} has no digest key [${endpoint}]`);
    },
  };
}

function drainMarkerIn(ops: {
  createState: (name: string, labels: Record<string, string>) => Promise<string | undefined>;
  inspectState: (name: string) => Promise<Dockerode.ContainerInspectInfo | undefined>;
  removeState: (idOrName: string) => Promise<void>;
}): DrainMarker {
  const states: readonly string[] = ['ready', 'drain', 'maint', 'unknown'];
  return {
    async read() {
      const c = await ops.inspectState(STATE_NAMES.drained);
      if (!c) return undefined;
      const v = c.Config.Labels?.[PREVIOUS_LABEL];
      // A marker whose label cannot be read still means berth drained this host.
      return v && states.includes(v) ? (v as LbState) : 'ready';
    },
    async write(previous) {
      await ops.createState(STATE_NAMES.drained, {
        [PREVIOUS_LABEL]: previous,
        'berth.drained.since': new Date().toISOString(),
      });
    },
    clear: () => ops.removeState(STATE_NAMES.drained),
  };
}

function parseHolder(label: string | undefined, created: string): HolderRecord | undefined {
  if (!label) return undefined;
  try {
    const v = JSON.parse(label) as Partial<HolderRecord>;
    if (typeof v.pid !== 'number' || typeof v.machine !== 'string') return undefined;
    return {
      command: String(v.command ?? 'berth'),
      machine: v.machine,
      pid: v.pid,
      user: String(v.user ?? '?'),
      since: created,
      boot: typeof v.boot === 'string' ? v.boot : undefined,
      pidStart: typeof v.pidStart === 'string' ? v.pidStart : undefined,
    };
  } catch {
    return undefined;
  }
}

let machine: { machine: string; user: string; boot?: string; pidStart?: string } | undefined;

/** This process as a lock holder: hostname, user, boot id and its own start time. */
function thisMachine() {
  if (machine) return machine;
  let user = String(process.getuid?.() ?? '?');
  try {
    user = os.userInfo().username;
  } catch {
    // no passwd entry (a container's arbitrary uid): the number will do
  }
  machine = { machine: os.hostname(), user, boot: bootId(), pidStart: processStart(process.pid) };
  return machine;
}

function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Whether `pid` is alive and is still the process that took the lock (not a reused PID). */
export function processAlive(pid: number, startedAt: string | undefined): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (startedAt === undefined) return true;
  const now = processStart(pid);
  return now === undefined || now === startedAt;
}

function legacyKey(file: string | undefined): Buffer | undefined {
  if (!file) return undefined;
  try {
    const key = readFileSync(file);
    return key.length === KEY_BYTES ? key : undefined;
  } catch {
    return undefined;
  }
}

/** The content of the first file in a tar stream, as text (small files only). */
async function firstFile(stream: NodeJS.ReadableStream): Promise<string> {
  const tar = await import('tar-stream');
  const extract = tar.extract();
  let text: string | undefined;
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, body, next) => {
      const chunks: Buffer[] = [];
      body.on('data', (c: unknown) => {
        if (text === undefined && header.type === 'file') chunks.push(c as Buffer);
      });
      body.on('end', () => {
        if (text === undefined && header.type === 'file') text = Buffer.concat(chunks).toString('utf8');
        next();
      });
      body.on('error', reject);
    });
    extract.on('finish', () => resolve());
    extract.on('error', reject);
  });
  stream.pipe(extract as unknown as NodeJS.WritableStream);
  await done;
  return text ?? '';
}
