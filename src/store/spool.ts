import { randomUUID } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import type { LeaseBackend } from './leases.js';
import {
  StoreUnavailableError,
  type ApplyRecord,
  type BeginAction,
  type BeginApply,
  type DeployEntry,
  type FinishAction,
  type FinishApply,
  type HistoryQuery,
  type HistoryRow,
  type Store,
} from './types.js';

/**
 * The local spool: when the fleet's database cannot be reached, an apply's outcome is kept in a
 * file on this machine and written to the database once it answers again, so an outage loses
 * nothing from history. Each apply and each action carries an idempotency key, so writing the
 * same outcome twice (the database went away half-way, or two berth processes replay one file)
 * never makes a second row.
 *
 * Files: `<key>.<pid>.part` while the apply that writes it runs (one JSON event per line, each
 * synced to disk), renamed to `<key>.jsonl` when it ends. Whoever replays a file first renames
 * it to `.<pid>.flushing`, so only one process writes it; a `.part` or `.flushing` file whose
 * process is gone (killed mid-apply) is replayed like a finished one.
 */

export type SpoolEvent =
  | { op: 'beginApply'; key: string; data: BeginApply }
  | { op: 'finishApply'; key: string; data: FinishApply }
  | { op: 'beginAction'; key: string; applyKey: string; data: BeginAction }
  | { op: 'finishAction'; key: string; data: FinishAction };

/** How a replay went. */
export interface FlushResult {
  /** Applies written to the database. */
  written: number;
  /** Applies still waiting in the spool. */
  waiting: number;
  /** Why the rest is still waiting. */
  error?: string;
  /** Files the record refused for a reason other than an outage, set aside with why. */
  rejected?: Array<{ file: string; error: string }>;
}

export class Spool {
  constructor(readonly dir: string) {}

  /** Start (or go on with) an apply's file; every event is on disk before this returns. */
  append(applyKey: string, events: SpoolEvent[]): string {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file = path.join(this.dir, `${applyKey}.${process.pid}.part`);
    const fd = openSync(file, 'a', 0o600);
    try {
      writeSync(fd, events.map((e) => JSON.stringify(e) + '\n').join(''));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return file;
  }

  /** The apply ended: its file may now be replayed by anyone. */
  seal(applyKey: string): void {
    const part = path.join(this.dir, `${applyKey}.${process.pid}.part`);
    try {
      renameSync(part, path.join(this.dir, `${applyKey}.jsonl`));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }

  /** Applies waiting to be written (sealed, or left by a process that died). */
  waiting(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    return names.filter((f) => {
      if (f.endsWith('.jsonl')) return true;
      const m = /\.(\d+)\.(part|flushing)$/.exec(f);
      return m !== null && !alive(Number(m[1]));
    });
  }

  /**
   * Write every waiting apply to `store`; stop at the first outage and leave the rest for later.
   * A file the record refuses for another reason (it cannot be made sense of) is set aside as
   * `<key>.rejected`, kept for a person to look at, so it never blocks the others. Safe to run
   * in several processes at once.
   */
  async flush(store: Store): Promise<FlushResult> {
    let written = 0;
    const rejected: FlushResult['rejected'] = [];
    const result = (error?: string): FlushResult => {
      const r: FlushResult = { written, waiting: this.waiting().length };
      if (error !== undefined) r.error = error;
      if (rejected.length) r.rejected = rejected;
      return r;
    };
    for (const name of this.waiting()) {
      const key = name.replace(/\.jsonl$|\.\d+\.(part|flushing)$/, '');
      const claimed = path.join(this.dir, `${key}.${process.pid}.flushing`);
      try {
        renameSync(path.join(this.dir, name), claimed);
      } catch {
        continue; // another process took it
      }
      try {
        await replay(store, readEvents(claimed));
        rmSync(claimed, { force: true });
        written++;
      } catch (e) {
        const outage = e instanceof StoreUnavailableError;
        // An outage: back for the next try, whoever makes it. Anything else: set aside.
        const to = path.join(this.dir, `${key}.${outage ? 'jsonl' : 'rejected'}`);
        try {
          renameSync(claimed, to);
        } catch {
          // Left as .flushing: replayed once this process is gone.
        }
        if (outage) return result((e as Error).message);
        rejected.push({ file: to, error: (e as Error).message });
      }
    }
    return result();
  }
}

function readEvents(file: string): SpoolEvent[] {
  const out: SpoolEvent[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as SpoolEvent);
    } catch {
      // A line cut short by a crash while it was written: the events before it stand.
    }
  }
  return out;
}

/** Write the events again, idempotently: keys find what an earlier try already wrote. */
async function replay(store: Store, events: SpoolEvent[]): Promise<void> {
  const ids = new Map<string, number>();
  for (const e of events) {
    switch (e.op) {
      case 'beginApply':
        ids.set(e.key, await store.beginApply({ ...e.data, key: e.key }));
        break;
      case 'beginAction': {
        const applyId = ids.get(e.applyKey);
        if (applyId !== undefined)
          ids.set(e.key, await store.beginAction(applyId, { ...e.data, key: e.key }));
        break;
      }
      case 'finishAction': {
        const id = ids.get(e.key);
        if (id !== undefined) await store.finishAction(id, e.data);
        break;
      }
      case 'finishApply': {
        const id = ids.get(e.key);
        if (id !== undefined) await store.finishApply(id, e.data);
        break;
      }
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface ApplyState {
  key: string;
  events: SpoolEvent[];
  /** The database's id, while the apply is written there. */
  remoteId?: number;
  /** Set once the apply went to the spool: everything after goes there too. */
  spooled?: string;
}

/**
 * A store that writes through to `inner` and, when `inner` cannot be reached, keeps the apply in
 * the spool instead: the caller (the executor) never sees the outage. Ids it returns are the
 * database's when the write went there, negative numbers for applies and actions kept in the
 * spool. Reads go to `inner` as they are.
 */
export class SpooledStore implements Store {
  private readonly applies_ = new Map<number, ApplyState>();
  private readonly actions_ = new Map<number, { key: string; apply: ApplyState; remoteId?: number }>();
  private nextLocal = -1;

  constructor(
    private readonly inner: Store,
    readonly spool: Spool,
    private readonly onSpool: (message: string) => void = () => undefined,
  ) {}

  get leases(): LeaseBackend | undefined {
    return this.inner.leases;
  }

  /** Spool files of this store's applies that still wait to be written to the record. */
  pending(): string[] {
    const waiting = new Set(this.spool.waiting());
    return [...this.applies_.values()]
      .filter((a) => a.spooled && waiting.has(`${a.key}.jsonl`))
      .map((a) => path.join(this.spool.dir, `${a.key}.jsonl`));
  }

  /** The spool files this store wrote, for whoever reports the outcome. */
  spooledFiles(): string[] {
    return [...new Set([...this.applies_.values()].flatMap((a) => (a.spooled ? [a.spooled] : [])))];
  }

  async beginApply(a: BeginApply): Promise<number> {
    const key = a.key ?? randomUUID();
    const state: ApplyState = { key, events: [{ op: 'beginApply', key, data: { ...a, key } }] };
    const id = await this.write(state, async () => {
      state.remoteId = await this.inner.beginApply({ ...a, key });
      return state.remoteId;
    });
    this.applies_.set(id, state);
    return id;
  }

  async finishApply(id: number, r: FinishApply): Promise<void> {
    const state = this.applies_.get(id);
    if (!state) return this.inner.finishApply(id, r);
    state.events.push({ op: 'finishApply', key: state.key, data: r });
    await this.write(state, async () => {
      await this.inner.finishApply(state.remoteId!, r);
      return id;
    });
    if (state.spooled) this.spool.seal(state.key);
  }

  async beginAction(applyId: number, a: BeginAction): Promise<number> {
    const apply = this.applies_.get(applyId);
    if (!apply) return this.inner.beginAction(applyId, a);
    const key = a.key ?? randomUUID();
    apply.events.push({ op: 'beginAction', key, applyKey: apply.key, data: { ...a, key } });
    const action: { key: string; apply: ApplyState; remoteId?: number } = { key, apply };
    const id = await this.write(apply, async () => {
      action.remoteId = await this.inner.beginAction(apply.remoteId!, { ...a, key });
      return action.remoteId;
    });
    this.actions_.set(id, action);
    return id;
  }

  async finishAction(id: number, r: FinishAction): Promise<void> {
    const action = this.actions_.get(id);
    if (!action) return this.inner.finishAction(id, r);
    action.apply.events.push({ op: 'finishAction', key: action.key, data: r });
    await this.write(action.apply, async () => {
      await this.inner.finishAction(action.remoteId!, r);
      return id;
    });
  }

  /**
   * Write the apply's newest event: to the database while it answers, else (from then on, for
   * this apply) to the spool, beginning with everything the apply recorded so far.
   */
  private async write(apply: ApplyState, remote: () => Promise<number>): Promise<number> {
    const last = apply.events.at(-1)!;
    if (!apply.spooled) {
      try {
        return await remote();
      } catch (e) {
        if (!(e instanceof StoreUnavailableError)) throw e;
        apply.spooled = this.spool.append(apply.key, apply.events);
        this.onSpool(
          `${e.message.replace(/^store: /, '')}; the outcome of this apply is kept in ${apply.spooled} ` +
            'and written to the record when it answers again',
        );
        return this.localId(last, apply);
      }
    }
    this.spool.append(apply.key, [last]);
    return this.localId(last, apply);
  }

  private localId(event: SpoolEvent, apply: ApplyState): number {
    // A finish keeps the id its begin returned.
    if (event.op === 'finishApply' || event.op === 'finishAction') return 0;
    if (event.op === 'beginAction' || apply.remoteId === undefined) return this.nextLocal--;
    return apply.remoteId;
  }

  history(q?: HistoryQuery): Promise<HistoryRow[]> {
    return this.inner.history(q);
  }

  applies(q?: HistoryQuery): Promise<ApplyRecord[]> {
    return this.inner.applies(q);
  }

  deploys(q?: HistoryQuery): Promise<DeployEntry[]> {
    return this.inner.deploys(q);
  }

  /** Seal what went to the spool, try once to write it, and close the database. */
  async close(): Promise<void> {
    for (const a of this.applies_.values()) if (a.spooled) this.spool.seal(a.key);
    try {
      if (this.spooledFiles().length) {
        const r = await this.spool.flush(this.inner);
        if (r.written)
          this.onSpool(`the record answers again: ${r.written} apply outcome(s) written from the spool`);
        for (const x of r.rejected ?? [])
          this.onSpool(`the record refused ${x.file} (${x.error}); it is kept there`);
      }
    } catch (e) {
      // The outcome stays in the spool; the next berth to reach the record writes it.
      this.onSpool(`writing the spool to the record failed: ${(e as Error).message}`);
    } finally {
      await this.inner.close();
    }
  }
}
