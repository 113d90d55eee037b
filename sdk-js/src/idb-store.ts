/**
 * The browser queue: one IndexedDB database per key id. Every operation is one readwrite
 * transaction, and IndexedDB runs overlapping readwrite transactions of one origin one at a time
 * (across tabs too), so a claim and its leases are atomic between tabs.
 */
import { claimable, QueueFullError, type ClaimOpts, type Counts, type Dead, type DeadLetter, type QueuedEvent, type Row, type Store } from "./store.js";

const EV = "events", DL = "dead", META = "meta";
const req = <T>(r: IDBRequest<T>) => new Promise<T>((ok, ko) => { r.onsuccess = () => ok(r.result); r.onerror = () => ko(r.error); });

export class IndexedDBStore implements Store {
  private db: Promise<IDBDatabase>;
  constructor(readonly name: string) {
    const open = indexedDB.open(name, 1);
    open.onupgradeneeded = () => {
      const db = open.result;
      db.createObjectStore(EV, { keyPath: "seq", autoIncrement: true }).createIndex("key", "key", { unique: true });
      db.createObjectStore(DL, { keyPath: "seq", autoIncrement: true });
      db.createObjectStore(META);
    };
    this.db = req(open);
  }

  /** Run `fn` in one transaction; resolves with its result once the transaction committed. */
  private async tx<T>(stores: string[], mode: IDBTransactionMode, fn: (t: IDBTransaction, done: (v: T) => void) => void): Promise<T> {
    const db = await this.db;
    return new Promise<T>((ok, ko) => {
      const t = db.transaction(stores, mode, { durability: "strict" } as any);
      let value: T;
      t.oncomplete = () => ok(value);
      t.onerror = t.onabort = () => {
        const e = t.error;
        ko(e && e.name === "QuotaExceededError" ? new QueueFullError(`browser storage is full: ${e.message}`) : e ?? new Error("transaction aborted"));
      };
      try {
        fn(t, (v) => (value = v));
      } catch (e) {
        t.abort();
        ko(e);
      }
    });
  }

  /** Walk the events in seq order; `visit` returns false to stop. */
  private walk(t: IDBTransaction, range: IDBKeyRange | null, visit: (row: Row, c: IDBCursorWithValue) => boolean | void, end: () => void) {
    const r = t.objectStore(EV).openCursor(range);
    r.onsuccess = () => {
      const c = r.result;
      if (!c) return end();
      if (visit(c.value, c) === false) return end();
      c.continue();
    };
  }

  enqueue(key: string, body: string, now: number, maxEvents: number) {
    let err: Error | undefined;
    return this.tx<boolean>([EV], "readwrite", (t, done) => {
      const s = t.objectStore(EV);
      const g = s.index("key").get(key);
      g.onsuccess = () => {
        if (g.result) {
          if (g.result.body !== body) {
            err = new TypeError(`idempotencyKey ${JSON.stringify(key)} is already queued with different content`);
            t.abort();
          } else done(false);
          return;
        }
        const c = s.count();
        c.onsuccess = () => {
          if (c.result >= maxEvents) {
            err = new QueueFullError(`queue is full (${maxEvents} events)`);
            t.abort();
            return;
          }
          s.add({ key, body, createdAt: now, attempts: 0, leaseOwner: null, leaseUntil: 0 });
          done(true);
        };
      };
    }).catch((e) => {
      throw err ?? e;
    });
  }

  claim(owner: string, o: ClaimOpts) {
    return this.tx<QueuedEvent[]>([EV], "readwrite", (t, done) => {
      const out: QueuedEvent[] = [];
      let bytes = 0;
      this.walk(t, IDBKeyRange.upperBound(o.maxSeq), (r, c) => {
        if (out.length >= o.maxEvents) return false;
        if (!claimable(r, o.now)) return;
        const size = r.body.length + (out.length ? 1 : 0);
        if (out.length && bytes + size > o.maxBytes) return false;
        bytes += size;
        c.update({ ...r, leaseOwner: owner, leaseUntil: o.now + o.leaseMs });
        out.push({ seq: r.seq, key: r.key, body: r.body });
      }, () => done(out));
    });
  }

  private each(rows: QueuedEvent[], t: IDBTransaction, fn: (r: Row, s: IDBObjectStore) => void) {
    const s = t.objectStore(EV);
    for (const q of rows) {
      const g = s.get(q.seq);
      g.onsuccess = () => g.result && fn(g.result, s);
    }
  }

  renew(owner: string, rows: QueuedEvent[], leaseMs: number, now: number) {
    const out: QueuedEvent[] = [];
    return this.tx<QueuedEvent[]>([EV], "readwrite", (t, done) => {
      done(out);
      this.each(rows, t, (r, s) => {
        if (r.leaseOwner !== owner || r.leaseUntil <= now) return;
        s.put({ ...r, leaseUntil: now + leaseMs });
        out.push({ seq: r.seq, key: r.key, body: r.body });
      });
    }).then(() => rows.filter((q) => out.some((o) => o.seq === q.seq)));
  }

  release(owner: string, rows: QueuedEvent[], attempted: boolean) {
    return this.tx<void>([EV], "readwrite", (t) =>
      this.each(rows, t, (r, s) => r.leaseOwner === owner && s.put({ ...r, leaseOwner: null, leaseUntil: 0, attempts: r.attempts + (attempted ? 1 : 0) })),
    );
  }

  complete(delivered: string[], dead: Dead[], now: number) {
    return this.tx<number>([EV, DL], "readwrite", (t, done) => {
      let died = 0;
      done(0);
      const s = t.objectStore(EV), idx = s.index("key");
      for (const key of delivered) {
        const g = idx.getKey(key);
        g.onsuccess = () => g.result !== undefined && s.delete(g.result);
      }
      for (const [key, status, errorCode, errorMessage] of dead) {
        const g = idx.get(key);
        g.onsuccess = () => {
          if (!g.result) return;
          t.objectStore(DL).add({ key, body: g.result.body, status, errorCode, errorMessage, deadAt: now });
          s.delete(g.result.seq);
          done(++died);
        };
      }
    });
  }

  counts(now: number) {
    return this.tx<Counts>([EV, DL], "readonly", (t, done) => {
      const res: Counts = { depth: 0, inFlight: 0, dead: 0 };
      done(res);
      const c = t.objectStore(DL).count();
      c.onsuccess = () => (res.dead = c.result);
      this.walk(t, null, (r) => {
        res.depth++;
        if (!claimable(r, now)) res.inFlight++;
      }, () => undefined);
    });
  }

  maxSeq() {
    return this.tx<number>([EV], "readonly", (t, done) => {
      done(0);
      const r = t.objectStore(EV).openCursor(null, "prev");
      r.onsuccess = () => r.result && done(r.result.value.seq);
    });
  }

  deadLetters(limit: number) {
    return this.tx<DeadLetter[]>([DL], "readonly", (t, done) => {
      const g = t.objectStore(DL).getAll(null, limit);
      g.onsuccess = () => done(g.result.map(({ seq, ...d }) => d));
    });
  }

  requeueDeadLetters(keys?: string[]) {
    return this.tx<number>([EV, DL], "readwrite", (t, done) => {
      let n = 0;
      done(0);
      const ev = t.objectStore(EV);
      const r = t.objectStore(DL).openCursor();
      r.onsuccess = () => {
        const c = r.result;
        if (!c) return;
        const d = c.value;
        if (!keys || keys.includes(d.key)) {
          const g = ev.index("key").getKey(d.key);
          g.onsuccess = () => {
            if (g.result === undefined) {
              ev.add({ key: d.key, body: d.body, createdAt: d.deadAt, attempts: 0, leaseOwner: null, leaseUntil: 0 });
              done(++n);
            }
          };
          c.delete();
        }
        c.continue();
      };
    });
  }

  getMeta<T>(k: string) {
    return this.tx<T | undefined>([META], "readonly", (t, done) => {
      const g = t.objectStore(META).get(k);
      g.onsuccess = () => done(g.result);
    });
  }

  setMeta(k: string, v: unknown) {
    return this.tx<void>([META], "readwrite", (t) => void t.objectStore(META).put(v, k));
  }

  async close() {
    (await this.db).close();
  }
}
