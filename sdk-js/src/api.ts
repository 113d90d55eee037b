/** Signed calls to the server: POST /v1/events, GET /config, GET /v1/events/{key}. */
import { Signer } from "./signing.js";
import { configFromWire, parseMaxAge, parseRateLimit, parseRetryAfter, type RemoteConfig } from "./retry.js";
import type { Clock } from "./clock.js";

export class TransportError extends Error {
  name = "TransportError";
}

export class ServerError extends Error {
  name = "ServerError";
  constructor(readonly status: number, readonly code: string, message: string, readonly retryAfter: number | null = null, readonly rid: string | null = null) {
    super(`HTTP ${status} ${code}: ${message}`);
  }
  /** 429 and 5xx are load or outage signals; anything else repeats identically on retry. */
  get retryable() {
    return this.status === 429 || this.status >= 500;
  }
}

export interface EventResult { idempotency_key: string; status: string; id: number | null; error: { code: string; message: string } | null }
export interface ConfigAnswer { config: RemoteConfig | null; etag: string | null; maxAge: number | null }
export interface EventFate {
  id: number; idempotency_key: string; type: string; source: string; status: string;
  received_at: string; enriched_at: string | null; dead_letter?: { stage: string; error_class: string } | null;
}

const SKEW_CORRECTION_MS = 60_000; // server tolerance is 300 s; correct only clear skews

export class Api {
  /** Milliseconds to add to the local clock, learnt from the server's Date header. */
  clockOffsetMs = 0;
  /** The last RateLimit header seen: pacing for callers that want it. */
  rateLimit: { remaining: number; reset: number; at: number } | null = null;
  private signer: Signer;
  private base: string;
  private prefix: string;

  constructor(baseUrl: string, readonly keyId: string, secret: string, private clock: Clock, private fetchFn: typeof fetch, private timeoutMs: number) {
    const u = new URL(baseUrl);
    if (!/^https?:$/.test(u.protocol)) throw new TypeError(`baseUrl must be an absolute http(s) URL, got ${baseUrl}`);
    if (!keyId) throw new TypeError("keyId must be a non-empty string");
    this.base = u.origin;
    this.prefix = u.pathname.replace(/\/+$/, "");
    this.signer = new Signer(secret);
  }

  url(target: string) {
    return this.base + this.prefix + target;
  }

  /** Headers for one request, signed now with a fresh webhook-id (sync: for page unload). */
  signSync(method: string, target: string, body: Uint8Array) {
    return this.signer.signSync({ keyId: this.keyId, method, target, body, timestamp: this.ts() });
  }

  private ts() {
    return Math.floor((this.clock.now() + this.clockOffsetMs) / 1000);
  }

  async send(method: string, target: string, body: string, headers: Record<string, string> = {}, timeoutMs = this.timeoutMs): Promise<{ status: number; headers: Headers; text: string }> {
    const bytes = new TextEncoder().encode(body);
    for (let attempt = 0; ; attempt++) {
      const offset = this.clockOffsetMs;
      const signed = await this.signer.sign({ keyId: this.keyId, method, target, body: bytes, timestamp: this.ts() });
      const ctl = new AbortController();
      const timer = this.clock.setTimeout(() => ctl.abort(), timeoutMs);
      let resp: Response, text: string;
      try {
        resp = await this.fetchFn(this.url(target), {
          method,
          headers: { ...headers, ...signed },
          body: method === "GET" ? undefined : bytes,
          signal: ctl.signal,
          cache: "no-store",
        });
        text = await resp.text();
      } catch (e) {
        throw new TransportError(`${method} ${target}: ${(e as Error).name}: ${(e as Error).message}`);
      } finally {
        this.clock.clearTimeout(timer);
      }
      const rl = parseRateLimit(resp.headers.get("ratelimit"));
      if (rl) this.rateLimit = { ...rl, at: this.clock.now() };
      if ((resp.status >= 200 && resp.status < 300) || resp.status === 304) return { status: resp.status, headers: resp.headers, text };
      const err = this.error(resp, text);
      if (attempt === 0 && this.clockOffsetMs !== offset) continue; // the answer taught us the server's clock
      throw err;
    }
  }

  private error(resp: Response, text: string): ServerError {
    let code = `http_${resp.status}`, message = text.slice(0, 200), rid: string | null = null;
    try {
      const e = JSON.parse(text).error;
      if (e && typeof e.code === "string") [code, message, rid] = [e.code, String(e.message ?? ""), e.rid ?? null];
    } catch {
      // a proxy's HTML page: keep the generic code
    }
    if (code === "timestamp_out_of_tolerance") {
      const server = Date.parse(resp.headers.get("date") ?? "");
      if (!Number.isNaN(server)) {
        const offset = server - this.clock.now();
        if (Math.abs(offset - this.clockOffsetMs) >= SKEW_CORRECTION_MS) this.clockOffsetMs = offset;
      }
    }
    return new ServerError(resp.status, code, message, parseRetryAfter(resp.headers.get("retry-after"), this.clock.now()), rid);
  }

  async postEvents(body: string, timeoutMs?: number): Promise<EventResult[]> {
    const r = await this.send("POST", "/v1/events", body, { "Content-Type": "application/json" }, timeoutMs);
    try {
      const results = JSON.parse(r.text).results;
      if (!Array.isArray(results)) throw new TypeError("no results");
      return results;
    } catch (e) {
      // events may or may not be stored: resending is safe (idempotency keys)
      throw new ServerError(502, "bad_response", `unparseable events answer: ${(e as Error).message}`);
    }
  }

  async getConfig(etag: string | null): Promise<ConfigAnswer> {
    const r = await this.send("GET", "/config", "", etag ? { "If-None-Match": etag } : {});
    const maxAge = parseMaxAge(r.headers.get("cache-control"));
    if (r.status === 304) return { config: null, etag: r.headers.get("etag") ?? etag, maxAge };
    let config: RemoteConfig;
    try {
      config = configFromWire(JSON.parse(r.text));
    } catch (e) {
      throw new ServerError(r.status, "bad_config", (e as Error).message);
    }
    return { config, etag: r.headers.get("etag"), maxAge };
  }

  async lookup(key: string): Promise<EventFate | null> {
    try {
      const r = await this.send("GET", "/v1/events/" + encodeURIComponent(key), "");
      return JSON.parse(r.text);
    } catch (e) {
      if (e instanceof ServerError && e.status === 404 && e.code === "not_found") return null;
      throw e;
    }
  }
}
