/**
 * In-memory stand-ins for the executor's edges: an engine, a drain provider, a drain marker and a
 * store. Each keeps a log of the calls made to it, fails on a call the test did not allow (so a
 * surprise is a failure, not a silent success), and fails on purpose where the test says so.
 * What only a real engine can show is tested against a real engine (test/world).
 */
import type { ContainerCreateSpec, ContainerState, Engine, PullProgress } from '../../src/adapters/engine.js';
import type { HostFiles } from '../../src/adapters/fs.js';
import type { DrainMarker } from '../../src/adapters/host-state.js';
import type { LbState } from '../../src/model/rotation.js';
import type { DrainProvider, DrainTarget, DrainOptions } from '../../src/providers/drain/types.js';
import type {
  ApplyRecord,
  BeginAction,
  BeginApply,
  FinishAction,
  FinishApply,
  HistoryRow,
  Store,
} from '../../src/store/types.js';

/** A call as the log keeps it: `method arg` (`stop web-id`, `rename old-id web.berth-old`). */
export type CallLog = string[];

/** Fail the call whose log line equals (or matches) the key, once or always. */
export type Failures = Map<string | RegExp, { error: string; times?: number }>;

function failIfAsked(failures: Failures, line: string): void {
  for (const [key, f] of failures) {
    const hit = typeof key === 'string' ? key === line : key.test(line);
    if (!hit) continue;
    if (f.times !== undefined) {
      if (f.times <= 0) continue;
      f.times--;
    }
    throw new Error(f.error);
  }
}

interface FakeContainer {
  id: string;
  name: string;
  running: boolean;
  exitCode: number;
  health?: string;
  spec?: ContainerCreateSpec;
}

export interface FakeEngineOptions {
  /** Containers already on the host: name → id (running). */
  containers?: Record<string, string>;
  failures?: Failures;
  /** Docker HEALTHCHECK status a new container reports (default none). */
  health?: (name: string) => string | undefined;
  /** A new container has exited at once (the image's command fails). */
  exitsAtOnce?: (name: string) => boolean;
  /** Milliseconds each create and stop takes, to let parallel work overlap. */
  delayMs?: number;
}

/** An engine that keeps containers in a map; only the calls the executor may make are allowed. */
export class FakeEngine implements Engine {
  readonly endpoint = 'fake://engine';
  readonly calls: CallLog = [];
  readonly containers = new Map<string, FakeContainer>();
  private next = 1;
  inFlight = 0;
  maxInFlight = 0;
  private readonly failures: Failures;

  constructor(private readonly opts: FakeEngineOptions = {}) {
    this.failures = opts.failures ?? new Map();
    for (const [name, id] of Object.entries(opts.containers ?? {})) {
      this.containers.set(id, { id, name, running: true, exitCode: 0 });
    }
  }

  private log(line: string): void {
    this.calls.push(line);
    failIfAsked(this.failures, line);
  }

  private byId(id: string): FakeContainer {
    const c = this.containers.get(id);
    if (!c) throw new Error(`fake engine: no container ${id}`);
    return c;
  }

  private async busy<T>(work: () => T): Promise<T> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((r) => setTimeout(r, this.opts.delayMs ?? 0));
      return work();
    } finally {
      this.inFlight--;
    }
  }

  ping(): Promise<void> {
    throw new Error('unexpected call: ping');
  }
  listContainers(): never {
    throw new Error('unexpected call: listContainers (the executor does not observe)');
  }
  listImages(): never {
    throw new Error('unexpected call: listImages (the executor does not observe)');
  }
  remoteDigest(): never {
    throw new Error('unexpected call: remoteDigest (the executor does not observe)');
  }

  async pull(image: string, onProgress?: (p: PullProgress) => void, signal?: AbortSignal): Promise<void> {
    this.log(`pull ${image}`);
    if (signal?.aborted) throw new Error('pull cancelled');
    onProgress?.({ status: 'Pull complete', id: 'layer1' });
  }

  create(spec: ContainerCreateSpec): Promise<string> {
    return this.busy(() => {
      this.log(`create ${spec.name}`);
      if ([...this.containers.values()].some((c) => c.name === spec.name))
        throw new Error(`fake engine: name ${spec.name} is taken`);
      const id = `${spec.name}-new${this.next++}`;
      this.containers.set(id, { id, name: spec.name, running: false, exitCode: 0, spec });
      return id;
    });
  }

  async start(id: string): Promise<void> {
    this.log(`start ${id}`);
    const c = this.byId(id);
    const exits = this.opts.exitsAtOnce?.(c.name) ?? false;
    c.running = !exits;
    c.exitCode = exits ? 1 : 0;
    c.health = c.spec ? this.opts.health?.(c.name) : undefined;
  }

  async unpause(id: string): Promise<void> {
    this.log(`unpause ${id}`);
    this.byId(id).running = true;
  }

  stop(id: string): Promise<void> {
    return this.busy(() => {
      this.log(`stop ${id}`);
      this.byId(id).running = false;
    });
  }

  async remove(id: string): Promise<void> {
    this.log(`remove ${id}`);
    this.containers.delete(id);
  }

  async rename(id: string, newName: string): Promise<void> {
    this.log(`rename ${id} ${newName}`);
    this.byId(id).name = newName;
  }

  async inspect(id: string): Promise<ContainerState> {
    const c = this.byId(id);
    const s: ContainerState = {
      id,
      name: c.name,
      status: c.running ? 'running' : 'exited',
      running: c.running,
      exitCode: c.exitCode,
      imageId: 'img',
      env: c.spec?.env ?? [],
      labels: c.spec?.labels ?? {},
    };
    if (c.health) s.health = c.health;
    return s;
  }

  /** Containers by name, as a person would list them. */
  names(): string[] {
    return [...this.containers.values()].map((c) => c.name).sort();
  }
}

/** A load balancer with one host in it, whose state moves as a real one's would. */
export class FakeDrain implements DrainProvider {
  readonly name = 'fake';
  readonly calls: CallLog = [];
  constructor(
    public state: LbState = 'ready',
    private readonly failures: Failures = new Map(),
  ) {}
  private log(line: string) {
    this.calls.push(line);
    failIfAsked(this.failures, line);
  }
  async status(t: DrainTarget): Promise<LbState> {
    this.log(`status ${t.host}`);
    return this.state;
  }
  async drain(t: DrainTarget, opts: DrainOptions): Promise<void> {
    this.log(`drain ${t.host}`);
    if (opts.signal?.aborted) throw new Error('drain abandoned');
    this.state = 'maint';
  }
  async undrain(t: DrainTarget): Promise<void> {
    this.log(`undrain ${t.host}`);
    this.state = 'ready';
  }
  async restore(t: DrainTarget, state: LbState): Promise<void> {
    this.log(`restore ${t.host} ${state}`);
    if (state !== 'unknown') this.state = state;
  }
}

export class FakeMarker implements DrainMarker {
  readonly calls: CallLog = [];
  constructor(public value?: LbState) {}
  async read() {
    this.calls.push('read');
    return this.value;
  }
  async write(previous: LbState) {
    this.calls.push(`write ${previous}`);
    this.value ??= previous;
  }
  async clear() {
    this.calls.push('clear');
    this.value = undefined;
  }
}

/** Files in a map; only the calls the executor makes are allowed. */
export class FakeFiles implements HostFiles {
  readonly files = new Map<string, { content: string; mode: number }>();
  readonly calls: CallLog = [];
  readMany(): never {
    throw new Error('unexpected call: readMany (the executor does not observe)');
  }
  list(): never {
    throw new Error('unexpected call: list (the executor does not observe)');
  }
  async writeAtomic(file: string, content: string, mode = 0o600) {
    this.calls.push(`write ${file}`);
    this.files.set(file, { content, mode });
  }
  async remove(file: string) {
    this.calls.push(`remove ${file}`);
    this.files.delete(file);
  }
}

/** A whole Store in memory: applies and actions as the SQLite store keeps them. */
export function memoryStore(): Store & { appliesNow(): ApplyRecord[]; actionsNow(): HistoryRow[] } {
  const applies: ApplyRecord[] = [];
  const actions: HistoryRow[] = [];
  let closed = false;
  const open = () => {
    if (closed) throw new Error('store is closed');
  };
  return {
    async beginApply(a: BeginApply) {
      open();
      const id = applies.length + 1;
      applies.push({ id, ...a, result: 'running' });
      return id;
    },
    async finishApply(id: number, r: FinishApply) {
      open();
      const a = applies[id - 1];
      if (!a) throw new Error(`no apply ${id}`);
      Object.assign(a, r);
    },
    async beginAction(applyId: number, a: BeginAction) {
      open();
      const apply = applies[applyId - 1];
      if (!apply) throw new Error(`no apply ${applyId}`);
      const id = actions.length + 1;
      actions.push({ id, applyId, ...a, result: 'running', ref: apply.ref, repo: apply.repo });
      return id;
    },
    async finishAction(id: number, r: FinishAction) {
      open();
      const a = actions[id - 1];
      if (!a) throw new Error(`no action ${id}`);
      Object.assign(a, r);
    },
    async history() {
      return [...actions].reverse();
    },
    async applies() {
      return [...applies].reverse();
    },
    async deploys() {
      throw new Error('unexpected call: deploys (the executor does not read history)');
    },
    async close() {
      closed = true;
    },
    appliesNow: () => applies,
    actionsNow: () => actions,
  };
}
