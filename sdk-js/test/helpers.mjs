// Test kit: a fake clock driving the client's timers, and a fake server behind a fetch function.
import { createHmac } from "node:crypto";
import { canonicalRequest, decodeSecret } from "../dist/index.js";

export const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
export const KEY_ID = "ck_test_1";

/** Let pending promises (and WebCrypto work on the thread pool) run. */
export async function settle(rounds = 3) {
  for (let i = 0; i < rounds; i++) {
    for (let j = 0; j < 20; j++) await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 2));
  }
}

export class FakeClock {
  t = Date.UTC(2026, 0, 15, 10, 0, 0);
  timers = [];
  now = () => this.t;
  setTimeout = (fn, ms) => {
    const h = { at: this.t + Math.max(0, ms || 0), fn };
    this.timers.push(h);
    return h;
  };
  clearTimeout = (h) => {
    this.timers = this.timers.filter((x) => x !== h);
  };
  /** Move time forward by `ms`, firing every timer that falls due, in order. */
  async advance(ms) {
    const end = this.t + ms;
    for (;;) {
      await settle(2);
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = end;
    await settle(2);
  }
  /** Advance in steps until `promise` settles (a timer may be armed after a slow await). */
  async runUntil(promise, stepMs = 500, maxMs = 3_600_000) {
    let done = false;
    const p = promise.finally(() => (done = true));
    for (let spent = 0; !done && spent < maxMs; spent += stepMs) await this.advance(stepMs);
    return p;
  }
}

/**
 * A stand-in server: checks every v2 signature and one-time webhook-id like tenants/auth.py,
 * answers /v1/events per item (a key first seen is accepted, then duplicate or conflict),
 * /config with an ETag and max-age, GET /v1/events/{key}. `script` hooks override answers.
 */
export class FakeServer {
  ledger = new Map();
  requests = [];
  ids = new Set();
  config = { syncEnabled: true, minIntervalSec: 5, retryCap: 3 };
  maxAge = 30;
  script = []; // functions (req) => Response | undefined, consumed in order when they answer
  online = true;
  constructor(clock) {
    this.clock = clock;
    this.fetch = this.fetch.bind(this);
  }
  json(status, body, headers = {}) {
    return new Response(status === 304 ? null : JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
  }
  error(status, code, headers = {}) {
    return this.json(status, { error: { code, message: code, rid: "r" } }, headers);
  }
  async fetch(url, init = {}) {
    if (!this.online) throw new TypeError("fetch failed");
    const u = new URL(url);
    const h = new Headers(init.headers);
    const body = init.body ? new Uint8Array(init.body) : new Uint8Array();
    const req = { method: init.method ?? "GET", path: u.pathname, query: u.search, headers: h, text: new TextDecoder().decode(body), at: this.clock.now(), keepalive: !!init.keepalive };
    this.requests.push(req);
    const id = h.get("webhook-id"), ts = Number(h.get("webhook-timestamp"));
    const target = u.pathname + (u.search || "");
    const mac = createHmac("sha256", Buffer.from(decodeSecret(SECRET))).update(canonicalRequest(req.method, target, id, ts, body)).digest("base64");
    if (h.get("x-codex-key-id") !== KEY_ID || h.get("webhook-signature") !== `v2,${mac}`) return this.error(401, "invalid_signature");
    if (this.ids.has(id)) return this.error(401, "replayed_request");
    this.ids.add(id);
    for (let i = 0; i < this.script.length; i++) {
      const r = this.script[i](req);
      if (r) {
        this.script.splice(i, 1);
        return r;
      }
    }
    if (req.path === "/config") {
      const etag = '"' + JSON.stringify(this.config).length + (this.config.syncEnabled ? "t" : "f") + this.config.minIntervalSec + '"';
      const hdr = { etag, "cache-control": `max-age=${this.maxAge}` };
      if (h.get("if-none-match") === etag) return this.json(304, null, hdr);
      return this.json(200, this.config, hdr);
    }
    if (req.path.startsWith("/v1/events/")) {
      const key = decodeURIComponent(req.path.slice(11));
      const ev = this.ledger.get(key);
      return ev ? this.json(200, { id: ev.id, idempotency_key: key, status: "accepted" }) : this.error(404, "not_found");
    }
    const events = JSON.parse(req.text).events;
    const results = events.map((e) => {
      const content = JSON.stringify({ ...e, idempotency_key: undefined });
      const seen = this.ledger.get(e.idempotency_key);
      if (e.type === "bad.event") return { idempotency_key: e.idempotency_key, status: "rejected", id: null, error: { code: "invalid_event", message: "no" } };
      if (!seen) {
        this.ledger.set(e.idempotency_key, { id: this.ledger.size + 1, content, accepts: 1 });
        return { idempotency_key: e.idempotency_key, status: "accepted", id: this.ledger.size, error: null };
      }
      if (seen.content !== content) return { idempotency_key: e.idempotency_key, status: "conflict", id: null, error: { code: "idempotency_key_reused", message: "x" } };
      return { idempotency_key: e.idempotency_key, status: "duplicate", id: seen.id, error: null };
    });
    return this.json(200, { results }, { ratelimit: '"tenant";r=49;t=1' });
  }
  posts() {
    return this.requests.filter((r) => r.method === "POST");
  }
  sentKeys() {
    return this.posts().flatMap((r) => {
      try {
        return JSON.parse(r.text).events.map((e) => e.idempotency_key);
      } catch {
        return [];
      }
    });
  }
}
