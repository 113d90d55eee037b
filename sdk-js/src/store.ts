/**
 * The durable queue: pending events with leases, dead letters, persisted SDK state.
 *
 * Same model as the Python SDK's SQLite queue: `claim` leases rows to one sender until
 * `leaseUntil`, so two senders (tabs, processes) never send a row at the same time; a sender
 * that dies leaves a lease that lapses, and the rows go out again (the server answers
 * `duplicate`). Rows are deleted only once the server answered for them.
 */

export interface QueuedEvent { seq: number; key: string; body: string }
export interface Row extends QueuedEvent { createdAt: number; attempts: number; leaseOwner: string | null; leaseUntil: number }
export interface DeadLetter { key: string; body: string; status: string; errorCode: string | null; errorMessage: string | null; deadAt: number }
export type Dead = [key: string, status: string, code: string | null, message: string | null];
export interface ClaimOpts { maxEvents: number; maxBytes: number; leaseMs: number; maxSeq: number; now: number }
export interface Counts { depth: number; inFlight: number; dead: number }

/** The longest lease handed out: one further ahead can only come from a clock stepped back. */
export const MAX_LEASE_MS = 300_000;
export const claimable = (r: Row, now: number) => r.leaseUntil <= now || r.leaseUntil > now + MAX_LEASE_MS;

export class QueueFullError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "QueueFullError";
  }
}

export interface Store {
  /** False when the key is queued with the same body; throws on a different body or a full queue. */
  enqueue(key: string, body: string, now: number, maxEvents: number): Promise<boolean>;
  claim(owner: string, o: ClaimOpts): Promise<QueuedEvent[]>;
  /** The rows still leased by `owner`, with their lease extended. */
  renew(owner: string, rows: QueuedEvent[], leaseMs: number, now: number): Promise<QueuedEvent[]>;
  release(owner: string, rows: QueuedEvent[], attempted: boolean): Promise<void>;
  /** Delete delivered rows, move dead ones to the dead letters; returns how many died. */
  complete(delivered: string[], dead: Dead[], now: number): Promise<number>;
  counts(now: number): Promise<Counts>;
  maxSeq(): Promise<number>;
  deadLetters(limit: number): Promise<DeadLetter[]>;
  requeueDeadLetters(keys?: string[]): Promise<number>;
  getMeta<T = unknown>(k: string): Promise<T | undefined>;
  setMeta(k: string, v: unknown): Promise<void>;
  close(): Promise<void>;
}

export interface State { seq: number; events: Row[]; dead: DeadLetter[]; meta: Record<string, unknown> }
export const emptyState = (): State => ({ seq: 0, events: [], dead: [], meta: {} });

function dupe(key: string): Error {
  return new TypeError(`idempotencyKey ${JSON.stringify(key)} is already queued with different content`);
}

/** Queue operations over a whole in-memory state; `transact` decides where the state lives. */
export abstract class StateStore implements Store {
  protected abstract transact<T>(fn: (s: State) => T, write: boolean): Promise<T>;

  enqueue(key: string, body: string, now: number, maxEvents: number) {
    return this.transact((s) => {
      const row = s.events.find((r) => r.key === key);
      if (row) {
        if (row.body !== body) throw dupe(key);
        return false;
      }
      if (s.events.length >= maxEvents) throw new QueueFullError(`queue is full (${maxEvents} events)`);
      s.events.push({ seq: ++s.seq, key, body, createdAt: now, attempts: 0, leaseOwner: null, leaseUntil: 0 });
      return true;
    }, true);
  }
  claim(owner: string, o: ClaimOpts) {
    return this.transact((s) => {
      const out: QueuedEvent[] = [];
      let bytes = 0;
      for (const r of s.events) {
        if (out.length >= o.maxEvents) break;
        if (r.seq > o.maxSeq || !claimable(r, o.now)) continue;
        const size = r.body.length + (out.length ? 1 : 0);
        if (out.length && bytes + size > o.maxBytes) break;
        bytes += size;
        r.leaseOwner = owner;
        r.leaseUntil = o.now + o.leaseMs;
        out.push({ seq: r.seq, key: r.key, body: r.body });
      }
      return out;
    }, true);
  }
  renew(owner: string, rows: QueuedEvent[], leaseMs: number, now: number) {
    return this.transact((s) => {
      const want = new Set(rows.map((r) => r.seq));
      const out: QueuedEvent[] = [];
      for (const r of s.events)
        if (want.has(r.seq) && r.leaseOwner === owner && r.leaseUntil > now) {
          r.leaseUntil = now + leaseMs;
          out.push({ seq: r.seq, key: r.key, body: r.body });
        }
      return out;
    }, true);
  }
  release(owner: string, rows: QueuedEvent[], attempted: boolean) {
    return this.transact((s) => {
      const want = new Set(rows.map((r) => r.seq));
      for (const r of s.events)
        if (want.has(r.seq) && r.leaseOwner === owner) {
          r.leaseOwner = null;
          r.leaseUntil = 0;
          if (attempted) r.attempts++;
        }
    }, true);
  }
  complete(delivered: string[], dead: Dead[], now: number) {
    return this.transact((s) => {
      const gone = new Set(delivered);
      let died = 0;
      for (const [key, status, code, message] of dead) {
        const row = s.events.find((r) => r.key === key);
        if (!row) continue;
        s.dead.push({ key, body: row.body, status, errorCode: code, errorMessage: message, deadAt: now });
        gone.add(key);
        died++;
      }
      s.events = s.events.filter((r) => !gone.has(r.key));
      return died;
    }, true);
  }
  counts(now: number) {
    return this.transact((s) => ({
      depth: s.events.length,
      inFlight: s.events.filter((r) => !claimable(r, now)).length,
      dead: s.dead.length,
    }), false);
  }
  maxSeq() {
    return this.transact((s) => s.events.reduce((m, r) => Math.max(m, r.seq), 0), false);
  }
  deadLetters(limit: number) {
    return this.transact((s) => s.dead.slice(0, limit).map((d) => ({ ...d })), false);
  }
  requeueDeadLetters(keys?: string[]) {
    return this.transact((s) => {
      const pick = keys ? new Set(keys) : null;
      let n = 0;
      s.dead = s.dead.filter((d) => {
        if (pick && !pick.has(d.key)) return true;
        if (!s.events.some((r) => r.key === d.key)) {
          s.events.push({ seq: ++s.seq, key: d.key, body: d.body, createdAt: d.deadAt, attempts: 0, leaseOwner: null, leaseUntil: 0 });
          n++;
        }
        return false;
      });
      return n;
    }, true);
  }
  getMeta<T>(k: string) {
    return this.transact((s) => s.meta[k] as T | undefined, false);
  }
  setMeta(k: string, v: unknown) {
    return this.transact((s) => {
      s.meta[k] = v;
    }, true);
  }
  async close() {}
}

/** In-memory queue (tests; nothing survives the process). Operations copy nothing: one owner. */
export class MemoryStore extends StateStore {
  private state = emptyState();
  protected async transact<T>(fn: (s: State) => T): Promise<T> {
    return fn(this.state);
  }
}
