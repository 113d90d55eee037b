#!/usr/bin/env node
// Dedup load test: `total` signed single-event POSTs over `unique` idempotency keys.
//
//   node scripts/dedup-loadtest.mjs --url URL [--source demo --tenant t1] \
//       --total 1000 --unique 200 --concurrency 50 --out result.json
//
// Credentials: --key-id/--secret, or CODEX_KEY_ID/CODEX_SECRET. Every run uses fresh keys
// (`<tenant>-<run id>-<n>`), so a run expects exactly `unique` accepted and `total - unique`
// duplicates; request n carries key n % unique with that key's fixed content. Requests are
// signed by the JS SDK's signer (sdk-js/src/signing.ts; built on first use when missing).
//
// Pacing: the tenant's rate limit is read from the answers (`RateLimit-Policy: "tenant";q=50;w=1`,
// `RateLimit: "tenant";r=12;t=1`), and sends are spaced to stay under it (--headroom requests
// per window below the quota), so the gate passes against a tenant at its real limit instead of
// retrying blindly. A 429 that still happens (a window boundary, another client of the tenant)
// holds every sender for Retry-After and its request goes first when they resume, signed again;
// those resends are `rate_limited_retries`. A request's latency is that of the attempt that got
// its answer. Check the result with scripts/check-loadtest-result.mjs (docs/api.md, "Load-test gate").
import { execFileSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The SDK's signing module; builds sdk-js once (npm ci + esbuild) when dist/ is missing. */
export async function loadSigner() {
  const sdk = join(ROOT, "sdk-js");
  const built = join(sdk, "dist", "signing.js");
  if (!existsSync(built)) {
    console.error("dedup-loadtest: building sdk-js (npm ci && npm run build) ...");
    if (!existsSync(join(sdk, "node_modules", ".bin", "esbuild")))
      execFileSync("npm", ["ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: sdk, stdio: ["ignore", 2, 2] });
    execFileSync("npm", ["run", "--silent", "build"], { cwd: sdk, stdio: ["ignore", 2, 2] });
  }
  return import(pathToFileURL(built).href);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/**
 * Spaces sends to the server's rate limit, learnt from its headers. Until the first answer
 * names the quota only one request is out; without RateLimit headers nothing is paced.
 */
export class Pacer {
  constructor({ headroom = 2, now = () => Date.now() } = {}) {
    this.headroom = headroom;
    this.now = now;
    this.quota = undefined; // undefined: not known yet; null: the server sends no limit
    this.windowMs = 1000;
    this.window = -1;
    this.used = 0;
    this.next = 0; // earliest time of the next send
    this.blockedUntil = 0;
    this.queue = []; // waiting senders, resends first
    this.pumping = false;
    this.probing = false;
  }
  /** Wait for a send slot; `first` puts a resend at the head of the line. */
  acquire(first = false) {
    return new Promise((resolve) => {
      first ? this.queue.unshift(resolve) : this.queue.push(resolve);
      void this.pump();
    });
  }
  async pump() {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length) {
        const now = this.now();
        if (now < this.blockedUntil) {
          await sleep(this.blockedUntil - now);
          continue;
        }
        if (this.quota === undefined) {
          if (this.probing) return; // the probe's answer resumes the pump
          this.probing = true;
          this.queue.shift()();
          continue;
        }
        if (this.quota === null) {
          this.queue.shift()();
          continue;
        }
        const allowed = Math.max(1, this.quota - this.headroom);
        const window = Math.floor(now / this.windowMs);
        if (window !== this.window) [this.window, this.used] = [window, 0];
        if (this.used >= allowed) {
          await sleep((window + 1) * this.windowMs - now + 2);
          continue;
        }
        if (now < this.next) {
          await sleep(this.next - now);
          continue;
        }
        this.used++;
        this.next = now + this.windowMs / allowed; // evenly spread, not a burst per window
        this.queue.shift()();
      }
    } finally {
      this.pumping = false;
    }
  }
  /** Learn from an answer's headers (and a 429's Retry-After). */
  observe(status, headers) {
    const policy = /q=(\d+);\s*w=(\d+)/.exec(headers.get("ratelimit-policy") ?? "");
    if (policy) [this.quota, this.windowMs] = [Number(policy[1]), Number(policy[2]) * 1000];
    else if (this.quota === undefined && status >= 200 && status < 300) this.quota = null;
    const rl = /r=(\d+);\s*t=(\d+)/.exec(headers.get("ratelimit") ?? "");
    const now = this.now();
    if (rl && Number(rl[1]) === 0 && this.quota) this.used = Number.MAX_SAFE_INTEGER; // this window is spent
    if (status === 429) {
      const ra = Number(headers.get("retry-after") ?? "1");
      const nextWindow = (Math.floor(now / this.windowMs) + 1) * this.windowMs;
      this.blockedUntil = Math.max(this.blockedUntil, Math.min(now + (Number.isFinite(ra) ? ra : 1) * 1000, nextWindow + 5));
    }
    if (this.probing) {
      this.probing = false;
      void this.pump();
    }
  }
}

export function percentile(sorted, q) {
  if (!sorted.length) return 0;
  const rank = Math.max(1, Math.min(sorted.length, Math.ceil((q * sorted.length) / 100)));
  return sorted[rank - 1];
}

export async function run(o) {
  const { Signer } = await loadSigner();
  const signer = new Signer(o.secret);
  const runId = o.runId || Math.random().toString(16).slice(2, 12);
  const occurredAt = new Date(Math.floor(Date.now() / 1000) * 1000).toISOString().replace(".000Z", "+00:00");
  const endpoint = o.url.replace(/\/+$/, "") + "/v1/events";
  const target = new URL(endpoint).pathname;
  const enc = new TextEncoder();
  const bodies = Array.from({ length: o.unique }, (_, n) =>
    enc.encode(JSON.stringify({ idempotency_key: `${o.tenant}-${runId}-${n}`, type: "loadtest.sale", occurred_at: occurredAt, source: o.source, payload: { amount_minor: 100 + n, currency: "EUR", n } })),
  );
  const statuses = {}, transport = {};
  const latencies = [];
  let retries = 0, next = 0;
  const pacer = new Pacer({ headroom: o.headroom });

  async function one(i) {
    const body = bodies[i % o.unique];
    for (let attempt = 0; ; attempt++) {
      await pacer.acquire(attempt > 0);
      // Signed for every attempt: a new webhook-id (the server accepts each id once), now's time.
      const headers = await signer.sign({ keyId: o.keyId, method: "POST", target, body, timestamp: Math.floor(Date.now() / 1000) });
      const started = performance.now();
      let resp;
      try {
        resp = await fetch(endpoint, { method: "POST", body, headers: { "Content-Type": "application/json", ...headers }, signal: AbortSignal.timeout(o.timeout * 1000) });
        await resp.arrayBuffer();
      } catch (e) {
        const name = e?.cause?.code ?? e?.name ?? "Error";
        transport[name] = (transport[name] ?? 0) + 1;
        pacer.observe(0, new Headers());
        return;
      }
      const elapsed = performance.now() - started;
      pacer.observe(resp.status, resp.headers);
      if (resp.status === 429 && attempt < o.maxRetries) {
        retries++;
        continue;
      }
      latencies.push(elapsed);
      statuses[resp.status] = (statuses[resp.status] ?? 0) + 1;
      return;
    }
  }

  const started = performance.now();
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      while (next < o.total) await one(next++);
    }),
  );
  const duration = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const answered = Object.values(statuses).reduce((a, b) => a + b, 0);
  const r2 = (x) => Math.round(x * 100) / 100;
  return {
    url: o.url,
    tenant: o.tenant,
    source: o.source,
    run_id: runId,
    total: o.total,
    unique: o.unique,
    concurrency: o.concurrency,
    answered,
    by_status: Object.fromEntries(Object.entries(statuses).sort()),
    accepted: statuses[202] ?? 0,
    duplicates: statuses[200] ?? 0,
    server_errors: Object.entries(statuses).filter(([s]) => s.startsWith("5")).reduce((a, [, n]) => a + n, 0),
    transport_errors: Object.values(transport).reduce((a, b) => a + b, 0),
    transport_error_types: transport,
    rate_limited_retries: retries,
    rate_limit: pacer.quota ? { quota: pacer.quota, window_s: pacer.windowMs / 1000, paced_to: Math.max(1, pacer.quota - o.headroom) } : null,
    latency_ms: { p50: r2(percentile(latencies, 50)), p95: r2(percentile(latencies, 95)), p99: r2(percentile(latencies, 99)), max: r2(latencies.at(-1) ?? 0) },
    duration_s: Math.round(duration * 1000) / 1000,
    throughput_rps: duration ? Math.round((answered / duration) * 10) / 10 : 0,
  };
}

export function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: "string" },
      source: { type: "string", default: "loadtest" },
      tenant: { type: "string", default: "t1" },
      total: { type: "string", default: "1000" },
      unique: { type: "string", default: "200" },
      concurrency: { type: "string", default: "50" },
      out: { type: "string", default: "result.json" },
      "key-id": { type: "string", default: process.env.CODEX_KEY_ID },
      secret: { type: "string", default: process.env.CODEX_SECRET },
      timeout: { type: "string", default: "10" },
      "max-retries": { type: "string", default: "50" },
      headroom: { type: "string", default: "2" },
      "run-id": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const usage = "usage: node scripts/dedup-loadtest.mjs --url URL [--source S] [--tenant T] [--total N] [--unique N] [--concurrency N] [--out FILE] [--key-id K --secret S | CODEX_KEY_ID/CODEX_SECRET] [--timeout S] [--max-retries N] [--headroom N] [--run-id ID]";
  const fail = (m) => {
    console.error(`${usage}\ndedup-loadtest: error: ${m}`);
    process.exit(2);
  };
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const int = (k) => {
    const n = Number(values[k]);
    if (!Number.isInteger(n)) fail(`--${k} must be an integer`);
    return n;
  };
  const o = {
    url: values.url, source: values.source, tenant: values.tenant, out: values.out,
    total: int("total"), unique: int("unique"), concurrency: int("concurrency"),
    keyId: values["key-id"], secret: values.secret, timeout: Number(values.timeout),
    maxRetries: int("max-retries"), headroom: int("headroom"), runId: values["run-id"],
  };
  if (!o.url) fail("--url is required");
  if (!o.keyId || !o.secret) fail("credentials: --key-id/--secret or CODEX_KEY_ID/CODEX_SECRET");
  if (!(1 <= o.unique && o.unique <= o.total)) fail("need 1 <= --unique <= --total");
  if (o.concurrency < 1) fail("--concurrency must be at least 1");
  return o;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const o = parseOptions(process.argv.slice(2));
  const result = await run(o);
  writeFileSync(o.out, JSON.stringify(result, null, 2) + "\n");
  const l = result.latency_ms;
  console.log(
    `answered ${result.answered}/${result.total} ${JSON.stringify(result.by_status)} transport_errors=${result.transport_errors} ` +
      `429_retries=${result.rate_limited_retries} p50=${l.p50}ms p95=${l.p95}ms p99=${l.p99}ms max=${l.max}ms ${result.throughput_rps} req/s -> ${o.out}`,
  );
}
