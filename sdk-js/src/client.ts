/**
 * The client: `track()` validates and queues durably; a background loop (timers, no threads)
 * reads /config, and sends what is queued in signed batches with per-item results, bisection on
 * content errors and full-jitter backoff. The behaviour follows the Python SDK (sdk/README.md).
 */
import { Api, ServerError, TransportError, type EventFate, type EventResult } from "./api.js";
import { realClock, type Clock } from "./clock.js";
import { BATCH_OVERHEAD, buildEvent, encodeBatch, encodeJson, type TrackOptions } from "./events.js";
import { DEFAULT_CONFIG, fullJitter, type RemoteConfig } from "./retry.js";
import { FileStore } from "./file-store.js";
import { IndexedDBStore } from "./idb-store.js";
import { MemoryStore, QueueFullError, type Dead, type DeadLetter, type QueuedEvent, type Store } from "./store.js";

export const MAX_BATCH_EVENTS = 500;
export const MAX_BODY_BYTES = 1024 * 1024;
/** fetch keepalive bodies share a 64 KiB budget per page; leave room for headers. */
export const KEEPALIVE_BODY_BYTES = 60 * 1024;
const DELIVERED = new Set(["accepted", "duplicate"]);
const DEAD = new Set(["conflict", "rejected"]);
// Only our own codes blame the content: a proxy's 400/413 says nothing about the events.
const CONTENT_CODES = new Set(["malformed_json", "invalid_request", "payload_too_large"]);
const MIN_REQUEST_MS = 200;

export interface Logger { info(...a: unknown[]): void; warn(...a: unknown[]): void; error(...a: unknown[]): void }

export interface ClientOptions {
  baseUrl: string;
  keyId: string;
  secret: string;
  /** Queue: default IndexedDB in browsers, a file under ~/.codex-sdk in Node, else memory. */
  store?: Store;
  /** Node file queue path (default `$CODEX_SDK_HOME/js-queue-<keyId>.json`). */
  queuePath?: string;
  /** Default `source` of tracked events ("sdk"). */
  source?: string;
  timeoutMs?: number;
  /** Poll /config at this period instead of the server's max-age (tests, drills). */
  configRefreshSec?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  maxBatchEvents?: number;
  maxBatchBytes?: number;
  leaseSec?: number;
  /** Queue cap: track() rejects with QueueFullError beyond it (and counts the refusal). */
  maxQueueEvents?: number;
  /** Start the background loop in the constructor (default true). */
  autoStart?: boolean;
  /** Browsers: send what this tab queued with fetch keepalive on pagehide / hidden (default true). */
  flushOnPageHide?: boolean;
  onSync?: (r: SyncResult) => void;
  fetch?: typeof fetch;
  clock?: Clock;
  random?: () => number;
  logger?: Logger | null;
}

export interface SyncResult {
  outcome: "ok" | "empty" | "disabled" | "failed" | "timeout" | "stopped" | "busy";
  accepted: number;
  duplicates: number;
  deadLettered: number;
  requests: number;
  remaining: number;
  error: string | null;
  startedAt: number;
  finishedAt: number;
  statuses: Record<string, string>;
}

export interface Status {
  queueDepth: number;
  inFlight: number;
  deadLetters: number;
  refused: number;
  lastSync: { at: number; outcome: string; error: string | null } | null;
  config: RemoteConfig;
  configSource: "default" | "persisted" | "server" | "server-cached";
  running: boolean;
  paused: boolean;
  nextSyncInMs: number | null;
  counters: Record<string, number>;
}

class Abort extends Error {
  constructor(readonly outcome: SyncResult["outcome"], message: string) {
    super(message);
  }
}

type Tally = Pick<SyncResult, "accepted" | "duplicates" | "deadLettered" | "requests" | "statuses">;
interface PassOpts { deadline: number; force: boolean; maxRetries?: number; final?: boolean }

/** The browser knows it has no network: a keepalive request would only fail. */
const offline = () => typeof navigator !== "undefined" && navigator.onLine === false;
const isBrowser = () => typeof window !== "undefined" && typeof document !== "undefined";

async function defaultStore(o: ClientOptions): Promise<Store> {
  if (typeof indexedDB !== "undefined") {
    return new IndexedDBStore(`codex-ingest-${o.keyId}`);
  }
  if (typeof process !== "undefined" && process.versions?.node) {
    const os = await import("node:os");
    const path = await import("node:path");
    const home = process.env.CODEX_SDK_HOME || path.join(os.homedir(), ".codex-sdk");
    return new FileStore(o.queuePath ?? path.join(home, `js-queue-${o.keyId}.json`));
  }
  return new MemoryStore();
}

export class Client {
  readonly api: Api;
  private o: Required<Pick<ClientOptions, "timeoutMs" | "backoffBaseMs" | "backoffMaxMs" | "maxBatchEvents" | "maxBatchBytes" | "leaseSec" | "maxQueueEvents" | "source">>;
  private storeP: Promise<Store>;
  private clock: Clock;
  private rnd: () => number;
  private log: Logger | null;
  private owner = "o" + Math.random().toString(36).slice(2, 10) + Date.now().toString(36);
  private config: RemoteConfig = DEFAULT_CONFIG;
  private configSource: Status["configSource"] = "default";
  private etag: string | null = null;
  private configTimer: unknown = null;
  private syncTimer: unknown = null;
  private syncDueAt = 0;
  private notBefore = 0; // no request before this (Retry-After), ms
  private lastSyncStart = -Infinity;
  private lastSync: Status["lastSync"] = null;
  private running = false;
  private closing = false;
  private started: Promise<void> | null = null;
  private passing: Promise<SyncResult> | null = null;
  private sleepers = new Set<() => void>();
  private unsent = new Map<string, string>(); // this tab's queued events (keepalive on unload)
  private keepaliveInFlight = new Set<string>();
  private inPass = new Set<string>(); // keys this tab's sync pass holds leases on
  private refused = 0;
  private counters = { eventsAccepted: 0, eventsDuplicate: 0, eventsDeadLettered: 0, postRequests: 0, configRequests: 0, syncPasses: 0, keepaliveRequests: 0, rateLimited: 0 };
  private fetchFn: typeof fetch;
  private listeners: Array<[EventTarget, string, EventListener]> = [];

  constructor(readonly options: ClientOptions) {
    const o = options;
    this.clock = o.clock ?? realClock;
    this.rnd = o.random ?? Math.random;
    this.log = o.logger === undefined ? console : o.logger;
    const timeoutMs = o.timeoutMs ?? 10_000;
    this.o = {
      timeoutMs,
      backoffBaseMs: o.backoffBaseMs ?? 1000,
      backoffMaxMs: o.backoffMaxMs ?? 60_000,
      maxBatchEvents: Math.min(o.maxBatchEvents ?? MAX_BATCH_EVENTS, MAX_BATCH_EVENTS),
      maxBatchBytes: Math.min(o.maxBatchBytes ?? MAX_BODY_BYTES, MAX_BODY_BYTES),
      leaseSec: o.leaseSec ?? Math.max(60, (3 * timeoutMs) / 1000),
      maxQueueEvents: o.maxQueueEvents ?? 10_000,
      source: o.source ?? "sdk",
    };
    this.fetchFn = o.fetch ?? globalThis.fetch.bind(globalThis);
    this.api = new Api(o.baseUrl, o.keyId, o.secret, this.clock, this.fetchFn, timeoutMs);
    this.storeP = o.store ? Promise.resolve(o.store) : defaultStore(o);
    if (o.autoStart !== false) void this.start();
  }

  // -- public API --------------------------------------------------------------------------

  /** Validate, queue durably, return the idempotency key once the event is committed locally. */
  async track(type: string, payload?: Record<string, unknown>, opts: TrackOptions = {}): Promise<string> {
    if (this.closing) throw new Error("client is closed");
    const ev = buildEvent(type, payload, opts, this.o.source);
    const body = encodeJson(ev);
    const store = await this.storeP;
    try {
      await store.enqueue(ev.idempotency_key, body, this.clock.now(), this.o.maxQueueEvents);
    } catch (e) {
      if (e instanceof QueueFullError) this.refused++;
      throw e;
    }
    this.unsent.set(ev.idempotency_key, body);
    this.wake();
    return ev.idempotency_key;
  }

  /** Send now, ignoring minIntervalSec (not a pause, unless `force`). */
  async flush(o: { timeoutMs?: number; force?: boolean } = {}): Promise<SyncResult> {
    await this.started;
    return this.runPass({ deadline: this.clock.now() + (o.timeoutMs ?? 30_000), force: !!o.force }, true);
  }

  async status(): Promise<Status> {
    const store = await this.storeP;
    const c = await store.counts(this.clock.now());
    return {
      queueDepth: c.depth,
      inFlight: c.inFlight,
      deadLetters: c.dead,
      refused: this.refused,
      lastSync: this.lastSync ?? (await store.getMeta<Status["lastSync"]>("lastSync")) ?? null,
      config: { ...this.config },
      configSource: this.configSource,
      running: this.running,
      paused: !this.config.syncEnabled,
      nextSyncInMs: this.running && this.syncTimer !== null ? Math.max(0, this.syncDueAt - this.clock.now()) : null,
      counters: { ...this.counters },
    };
  }

  async deadLetters(limit = 100): Promise<Array<DeadLetter & { event: unknown }>> {
    return (await (await this.storeP).deadLetters(limit)).map((d) => ({ ...d, event: JSON.parse(d.body) }));
  }

  async requeueDeadLetters(keys?: string[]): Promise<number> {
    const n = await (await this.storeP).requeueDeadLetters(keys);
    this.wake();
    return n;
  }

  lookup(key: string): Promise<EventFate | null> {
    return this.api.lookup(key);
  }

  get currentConfig(): RemoteConfig {
    return { ...this.config };
  }

  /** Start the loop: persisted config, GET /config, then a sync at once. */
  start(): Promise<void> {
    if (this.started) return this.started;
    this.running = true;
    this.listen();
    this.started = (async () => {
      const store = await this.storeP;
      const saved = await store.getMeta<{ config: RemoteConfig; etag: string | null }>("config");
      if (saved && this.configSource === "default") {
        this.config = saved.config;
        this.etag = saved.etag;
        this.configSource = "persisted";
      }
      await this.refreshConfig();
      this.wake();
    })();
    return this.started;
  }

  /** Stop the loop; one last attempt per batch (no backoff, not forcing a pause) within timeoutMs. */
  async close(o: { timeoutMs?: number; flush?: boolean } = {}): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.running = false;
    for (const [t, name, fn] of this.listeners) t.removeEventListener(name, fn);
    this.clock.clearTimeout(this.syncTimer);
    this.clock.clearTimeout(this.configTimer);
    this.syncTimer = this.configTimer = null;
    for (const wake of this.sleepers) wake();
    await this.started?.catch(() => undefined);
    await this.passing?.catch(() => undefined);
    if (o.flush !== false) {
      const deadline = this.clock.now() + (o.timeoutMs ?? 5000);
      await this.runPass({ deadline, force: false, maxRetries: 0, final: true }, true).catch(() => undefined);
    }
    await (await this.storeP).close();
  }

  // -- config ------------------------------------------------------------------------------

  async refreshConfig(): Promise<RemoteConfig> {
    this.clock.clearTimeout(this.configTimer);
    let maxAge: number | null = null;
    const now = this.clock.now();
    if (now >= this.notBefore) {
      try {
        this.counters.configRequests++;
        const a = await this.api.getConfig(this.etag);
        maxAge = a.maxAge;
        const before = this.config;
        if (a.config) this.config = a.config;
        this.etag = a.etag;
        this.configSource = a.config ? "server" : "server-cached";
        // Persisted with its ETag: a restart without network uses it, and revalidates it when online.
        await (await this.storeP).setMeta("config", { config: this.config, etag: this.etag });
        this.configChanged(before);
      } catch (e) {
        if (e instanceof ServerError && e.retryAfter) this.notBefore = Math.max(this.notBefore, now + e.retryAfter * 1000);
        this.log?.warn("codex-ingest: /config failed, keeping the", this.configSource, "config:", (e as Error).message);
      }
    }
    if (this.running) {
      const sec = this.options.configRefreshSec ?? Math.max(1, maxAge ?? 30);
      this.configTimer = this.clock.setTimeout(() => void this.refreshConfig(), Math.max(sec * 1000, this.notBefore - this.clock.now()));
    }
    return this.config;
  }

  private configChanged(before: RemoteConfig) {
    const c = this.config;
    if (c.syncEnabled === before.syncEnabled && c.minIntervalSec === before.minIntervalSec && c.retryCap === before.retryCap) return;
    this.log?.info("codex-ingest: config", JSON.stringify(before), "->", JSON.stringify(c));
    if (!c.syncEnabled) this.log?.info("codex-ingest: sync paused by the server (syncEnabled=false)");
    if (c.syncEnabled && !before.syncEnabled) this.log?.info("codex-ingest: sync resumed");
    this.clock.clearTimeout(this.syncTimer);
    this.syncTimer = null;
    this.wake();
  }

  // -- scheduling --------------------------------------------------------------------------

  /** Run a background sync when due, else arm the timer for when it is. */
  private wake() {
    if (!this.running || this.closing || !this.config.syncEnabled || this.passing) return;
    const due = Math.max(this.lastSyncStart + this.config.minIntervalSec * 1000, this.notBefore);
    const now = this.clock.now();
    if (now >= due) {
      this.clock.clearTimeout(this.syncTimer);
      this.syncTimer = null;
      void this.runPass({ deadline: Infinity, force: false }, false).then(() => this.arm());
    } else if (this.syncTimer === null || due < this.syncDueAt) {
      this.clock.clearTimeout(this.syncTimer);
      this.syncDueAt = due;
      this.syncTimer = this.clock.setTimeout(() => {
        this.syncTimer = null;
        this.wake();
      }, due - now);
    }
  }

  private arm() {
    if (this.running && !this.closing && this.syncTimer === null) {
      this.syncDueAt = Math.max(this.lastSyncStart + this.config.minIntervalSec * 1000, this.notBefore);
      this.syncTimer = this.clock.setTimeout(() => {
        this.syncTimer = null;
        this.wake();
      }, Math.max(0, this.syncDueAt - this.clock.now()));
    }
  }

  private sleep(ms: number): Promise<boolean> {
    return new Promise((ok) => {
      const done = () => {
        this.sleepers.delete(wake);
        ok(true);
      };
      const wake = () => {
        this.clock.clearTimeout(h);
        this.sleepers.delete(wake);
        ok(false);
      };
      const h = this.clock.setTimeout(done, ms);
      this.sleepers.add(wake);
    });
  }

  // -- sending -----------------------------------------------------------------------------

  /** One pass under the sender lock: Web Locks across tabs when there are, this tab's otherwise. */
  private async runPass(o: PassOpts, wait: boolean): Promise<SyncResult> {
    while (this.passing) {
      if (!wait) return this.result("busy", null, Date.now());
      await this.passing.catch(() => undefined);
    }
    const p = this.withLock(o, wait);
    this.passing = p;
    try {
      const r = await p;
      this.lastSync = { at: r.finishedAt, outcome: r.outcome, error: r.error };
      if (r.outcome !== "busy") void (await this.storeP).setMeta("lastSync", this.lastSync).catch(() => undefined);
      try {
        this.options.onSync?.(r);
      } catch (e) {
        this.log?.error("codex-ingest: onSync threw", e);
      }
      return r;
    } finally {
      this.passing = null;
    }
  }

  private async withLock(o: PassOpts, wait: boolean): Promise<SyncResult> {
    const locks = (globalThis as any).navigator?.locks;
    if (!locks?.request) return this.pass(o);
    const name = `codex-ingest-sender-${this.options.keyId}`;
    return locks.request(name, { ifAvailable: !wait }, (lock: unknown) => (lock ? this.pass(o) : this.result("busy", "another tab is sending", this.clock.now())));
  }

  private result(outcome: SyncResult["outcome"], error: string | null, startedAt: number, t?: Tally, remaining = 0): SyncResult {
    return { outcome, error, startedAt, finishedAt: this.clock.now(), remaining, accepted: 0, duplicates: 0, deadLettered: 0, requests: 0, statuses: {}, ...t };
  }

  private async pass(o: PassOpts): Promise<SyncResult> {
    const store = await this.storeP;
    const started = this.clock.now();
    const previousStart = this.lastSyncStart;
    if (!o.final) this.lastSyncStart = started;
    this.counters.syncPasses++;
    const t: Tally = { accepted: 0, duplicates: 0, deadLettered: 0, requests: 0, statuses: {} };
    let outcome: SyncResult["outcome"] = "empty";
    let error: string | null = null;
    // Events tracked during the pass wait for the next one: a steady stream must not make it endless.
    const upto = await store.maxSeq();
    try {
      for (;;) {
        if (!this.config.syncEnabled && !o.force) throw new Abort("disabled", "syncEnabled is false");
        if (this.closing && !o.final) throw new Abort("stopped", "client is closing");
        if (this.clock.now() >= o.deadline) throw new Abort("timeout", "flush deadline reached");
        const batch = (await store.claim(this.owner, {
          maxEvents: this.o.maxBatchEvents,
          maxBytes: this.o.maxBatchBytes - BATCH_OVERHEAD,
          leaseMs: this.o.leaseSec * 1000,
          maxSeq: upto,
          now: this.clock.now(),
        })).filter((e) => !this.keepaliveInFlight.has(e.key));
        if (!batch.length) break;
        outcome = "ok";
        for (const e of batch) this.inPass.add(e.key);
        try {
          await this.sendBatch(batch, t, o.maxRetries ?? this.config.retryCap, o);
        } catch (e) {
          await store.release(this.owner, batch, false); // never strand leased rows
          throw e;
        } finally {
          for (const e of batch) this.inPass.delete(e.key);
        }
      }
    } catch (e) {
      if (!(e instanceof Abort)) throw e;
      [outcome, error] = [e.outcome, e.message];
    }
    // Only a pass that sent something spends the interval: an event tracked after an empty
    // check leaves at once.
    if (outcome === "empty" && !o.final) this.lastSyncStart = previousStart;
    const c = await store.counts(this.clock.now());
    return this.result(outcome, error, started, t, c.depth);
  }

  private async sendBatch(batch: QueuedEvent[], t: Tally, retries: number, o: PassOpts): Promise<void> {
    const store = await this.storeP;
    let pending = batch;
    for (let attempt = 0; ; ) {
      await this.waitNotBefore(o.deadline);
      pending = await store.renew(this.owner, pending, this.o.leaseSec * 1000, this.clock.now());
      if (!pending.length) return; // our lease lapsed and another sender took these rows
      const remaining = o.deadline - this.clock.now();
      if (remaining < MIN_REQUEST_MS) throw new Abort("timeout", "flush deadline reached");
      let error: string;
      let retryAfter: number | null = null;
      t.requests++;
      this.counters.postRequests++;
      try {
        const results = await this.api.postEvents(encodeBatch(pending.map((e) => e.body)), Math.min(this.o.timeoutMs, remaining));
        this.paceFromRateLimit();
        pending = await this.settle(pending, results, t);
        if (!pending.length) return;
        error = `${pending.length} events missing from the server's answer`;
      } catch (e) {
        if (e instanceof ServerError) {
          error = e.message;
          if ((e.status === 400 || e.status === 413) && CONTENT_CODES.has(e.code)) return this.bisect(pending, e, t, retries, o);
          if (!e.retryable) {
            this.log?.error("codex-ingest: send refused, will retry next sync:", error);
            await store.release(this.owner, pending, true);
            throw new Abort("failed", error);
          }
          if (e.status === 429) this.counters.rateLimited++;
          retryAfter = e.retryAfter;
          if (retryAfter) this.notBefore = Math.max(this.notBefore, this.clock.now() + retryAfter * 1000);
        } else if (e instanceof TransportError) error = e.message;
        else throw e;
        this.log?.warn(`codex-ingest: send failed (attempt ${attempt + 1}/${retries + 1}):`, error);
      }
      attempt++;
      if (attempt > retries) {
        await store.release(this.owner, pending, true);
        throw new Abort("failed", `gave up after ${attempt} attempts: ${error}`);
      }
      let delay = fullJitter(attempt - 1, this.o.backoffBaseMs, this.o.backoffMaxMs, this.rnd);
      if (retryAfter !== null) delay = Math.max(delay, retryAfter * 1000);
      if (this.clock.now() + delay >= o.deadline) {
        await store.release(this.owner, pending, true);
        throw new Abort("timeout", `next retry would pass the deadline: ${error}`);
      }
      if (!(await this.sleep(delay)) && !o.final) {
        await store.release(this.owner, pending, true);
        throw new Abort("stopped", "client is closing");
      }
    }
  }

  /** RateLimit says the window is used up: hold the next request until it resets. */
  private paceFromRateLimit() {
    const rl = this.api.rateLimit;
    if (rl && rl.remaining === 0) this.notBefore = Math.max(this.notBefore, rl.at + rl.reset * 1000);
  }

  private async waitNotBefore(deadline: number) {
    const wait = this.notBefore - this.clock.now();
    if (wait <= 0) return;
    if (this.clock.now() + wait >= deadline) throw new Abort("timeout", `server asked to retry after ${(wait / 1000).toFixed(1)}s`);
    if (!(await this.sleep(wait)) && !this.closing) throw new Abort("stopped", "client is closing");
  }

  /** Split a batch refused as a whole; a lone refused event is dead-lettered (no poison head). */
  private async bisect(pending: QueuedEvent[], e: ServerError, t: Tally, retries: number, o: PassOpts): Promise<void> {
    if (pending.length === 1) {
      const key = pending[0].key;
      this.log?.error(`codex-ingest: event ${key} refused by the server, dead-lettered:`, e.message);
      t.deadLettered += await (await this.storeP).complete([], [[key, e.code, e.code, e.message]], this.clock.now());
      this.counters.eventsDeadLettered++;
      this.unsent.delete(key);
      t.statuses[key] = e.code;
      return;
    }
    const mid = pending.length >> 1;
    await this.sendBatch(pending.slice(0, mid), t, retries, o);
    await this.sendBatch(pending.slice(mid), t, retries, o);
  }

  private async settle(pending: QueuedEvent[], results: EventResult[], t: Tally): Promise<QueuedEvent[]> {
    const byKey = new Map(results.map((r) => [r.idempotency_key, r]));
    const delivered: string[] = [];
    const dead: Dead[] = [];
    const unsettled: QueuedEvent[] = [];
    for (const ev of pending) {
      const r = byKey.get(ev.key);
      if (r && DELIVERED.has(r.status)) {
        delivered.push(ev.key);
        if (r.status === "accepted") t.accepted++, this.counters.eventsAccepted++;
        else t.duplicates++, this.counters.eventsDuplicate++;
      } else if (r && DEAD.has(r.status)) {
        dead.push([ev.key, r.status, r.error?.code ?? null, r.error?.message ?? null]);
        this.log?.warn(`codex-ingest: event ${ev.key} ${r.status} by the server (${r.error?.code}), dead-lettered`);
      } else {
        unsettled.push(ev);
        continue;
      }
      t.statuses[ev.key] = r.status;
      this.unsent.delete(ev.key);
    }
    const died = await (await this.storeP).complete(delivered, dead, this.clock.now());
    t.deadLettered += died;
    this.counters.eventsDeadLettered += died;
    return unsettled;
  }

  // -- page lifecycle (browsers) -------------------------------------------------------------

  private listen() {
    if (!isBrowser()) return;
    const on = (target: EventTarget, name: string, fn: EventListener) => {
      target.addEventListener(name, fn);
      this.listeners.push([target, name, fn]);
    };
    on(window, "online", () => this.wake());
    if (this.options.flushOnPageHide === false) return;
    on(window, "pagehide", () => this.flushKeepalive());
    on(document, "visibilitychange", () => document.visibilityState === "hidden" && void this.flushHidden());
  }

  /**
   * Page hidden (tab switched, app backgrounded; also the first step of a close): lease the next
   * rows in the queue like a sync would, and send them with `fetch(..., {keepalive: true})`, which
   * outlives the page, within the 64 KiB keepalive budget. If the page dies before the answer the
   * lease lapses and the rows go with a later sync or the next start (answered `duplicate`).
   */
  async flushHidden(): Promise<number> {
    if (!this.config.syncEnabled || this.closing || this.passing || this.clock.now() < this.notBefore || offline()) return 0;
    const store = await this.storeP;
    const rows = await store.claim(this.owner, {
      maxEvents: this.o.maxBatchEvents,
      maxBytes: KEEPALIVE_BODY_BYTES - BATCH_OVERHEAD,
      leaseMs: this.o.leaseSec * 1000,
      maxSeq: Number.MAX_SAFE_INTEGER,
      now: this.clock.now(),
    });
    const mine = rows.filter((r) => !this.keepaliveInFlight.has(r.key) && !this.inPass.has(r.key));
    const others = rows.filter((r) => !mine.includes(r));
    if (others.length) await store.release(this.owner, others, false);
    if (!mine.length) return 0;
    this.sendKeepalive(mine, async () => store.release(this.owner, mine, false));
    return mine.length;
  }

  /**
   * Page going away (pagehide): a promise may never resolve now, so send what this tab queued and
   * is not already sending, signed synchronously, in one keepalive request within 64 KiB. These
   * rows hold no lease (taking one is asynchronous): at worst another tab sends one of them too,
   * and the server answers `duplicate`. Whatever does not fit is sent on the next start.
   */
  flushKeepalive(): number {
    if (!this.config.syncEnabled || this.closing || this.clock.now() < this.notBefore || !this.unsent.size || offline()) return 0;
    const rows: QueuedEvent[] = [];
    let size = BATCH_OVERHEAD;
    for (const [key, body] of this.unsent) {
      if (this.keepaliveInFlight.has(key) || this.inPass.has(key)) continue;
      if (size + body.length + 1 > KEEPALIVE_BODY_BYTES || rows.length >= this.o.maxBatchEvents) break;
      size += body.length + 1;
      rows.push({ seq: -1, key, body });
    }
    if (rows.length) this.sendKeepalive(rows);
    return rows.length;
  }

  private sendKeepalive(rows: QueuedEvent[], after?: () => Promise<void>): void {
    const bytes = new TextEncoder().encode(encodeBatch(rows.map((r) => r.body)));
    let req: Promise<Response>;
    try {
      const headers = { "Content-Type": "application/json", ...this.api.signSync("POST", "/v1/events", bytes) };
      req = this.fetchFn(this.api.url("/v1/events"), { method: "POST", body: bytes, headers, keepalive: true });
    } catch {
      void after?.();
      return;
    }
    this.counters.keepaliveRequests++;
    for (const r of rows) this.keepaliveInFlight.add(r.key);
    req
      .then(async (r) => {
        if (r.ok) {
          const t: Tally = { accepted: 0, duplicates: 0, deadLettered: 0, requests: 1, statuses: {} };
          await this.settle(rows, (await r.json()).results ?? [], t);
        }
      })
      .catch(() => undefined)
      .finally(() => {
        for (const r of rows) this.keepaliveInFlight.delete(r.key);
        void after?.().catch(() => undefined);
      });
  }
}
