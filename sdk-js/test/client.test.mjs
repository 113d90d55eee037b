import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, FileStore, MemoryStore, QueueFullError } from "../dist/index.js";
import { FakeClock, FakeServer, KEY_ID, SECRET, settle } from "./helpers.mjs";

function setup(opts = {}) {
  const clock = new FakeClock();
  const server = new FakeServer(clock);
  const store = opts.store ?? new MemoryStore();
  const make = (more = {}) =>
    new Client({ baseUrl: "http://api.test", keyId: KEY_ID, secret: SECRET, store, clock, fetch: server.fetch, logger: null, random: () => 1, autoStart: false, ...opts, ...more });
  return { clock, server, store, client: make(), make };
}

test("track then flush: accepted once, the queue empties, lookup finds it", async () => {
  const { server, client } = setup();
  const key = await client.track("door.opened", { door: 3 }, { idempotencyKey: "k1" });
  assert.equal(key, "k1");
  assert.equal((await client.status()).queueDepth, 1);
  const r = await client.flush();
  assert.equal(r.outcome, "ok");
  assert.equal(r.accepted, 1);
  assert.deepEqual(r.statuses, { k1: "accepted" });
  assert.equal((await client.status()).queueDepth, 0);
  assert.equal((await client.flush()).outcome, "empty");
  assert.equal((await client.lookup("k1")).status, "accepted");
  assert.equal(await client.lookup("nope"), null);
  assert.equal(server.posts().length, 1);
  assert.equal(server.posts()[0].headers.get("content-type"), "application/json");
});

test("re-tracking a queued key: same content is a no-op, different content throws", async () => {
  const { client } = setup();
  await client.track("a", { x: 1 }, { idempotencyKey: "k", occurredAt: "2026-01-01T00:00:00Z" });
  await client.track("a", { x: 1 }, { idempotencyKey: "k", occurredAt: "2026-01-01T00:00:00Z" });
  await assert.rejects(client.track("a", { x: 2 }, { idempotencyKey: "k", occurredAt: "2026-01-01T00:00:00Z" }), /different content/);
  assert.equal((await client.status()).queueDepth, 1);
});

test("batches hold at most 500 events and 1 MiB", async () => {
  const { server, client } = setup();
  for (let i = 0; i < 1200; i++) await client.track("bulk", { i }, { idempotencyKey: `b${i}` });
  const r = await client.flush();
  assert.equal(r.accepted, 1200);
  assert.deepEqual(server.posts().map((p) => JSON.parse(p.text).events.length), [500, 500, 200]);
  const big = setup();
  for (let i = 0; i < 40; i++) await big.client.track("big", { blob: "x".repeat(60_000) }, { idempotencyKey: `g${i}` });
  await big.client.flush();
  for (const p of big.server.posts()) assert.ok(p.text.length <= 1024 * 1024);
  assert.ok(big.server.posts().length >= 3);
  assert.equal(big.server.ledger.size, 40);
});

test("per-item results: conflict and rejected go to dead letters, requeue brings them back", async () => {
  const { server, client } = setup();
  server.ledger.set("taken", { id: 99, content: "other" });
  await client.track("ok", {}, { idempotencyKey: "fine" });
  await client.track("ok", {}, { idempotencyKey: "taken" });
  await client.track("bad.event", {}, { idempotencyKey: "bad" });
  const r = await client.flush();
  assert.deepEqual([r.accepted, r.deadLettered], [1, 2]);
  const dead = await client.deadLetters();
  assert.deepEqual(dead.map((d) => [d.key, d.status, d.errorCode]).sort(), [["bad", "rejected", "invalid_event"], ["taken", "conflict", "idempotency_key_reused"]]);
  assert.equal(dead[0].event.idempotency_key, dead[0].key);
  assert.equal(await client.requeueDeadLetters(["bad"]), 1);
  assert.equal((await client.status()).queueDepth, 1);
  assert.equal((await client.status()).deadLetters, 1);
});

test("a content error is bisected down to the poison event; a proxy's 400 is not", async () => {
  const { server, client } = setup();
  for (let i = 0; i < 8; i++) await client.track("e", { i }, { idempotencyKey: `k${i}` });
  server.script.push = Array.prototype.push;
  // Any request carrying k5 is refused as a whole with our own code.
  const poison = (req) => (req.method === "POST" && req.text.includes('"k5"') ? server.error(400, "invalid_request") : undefined);
  for (let i = 0; i < 10; i++) server.script.push(poison);
  const r = await client.flush();
  assert.equal(r.accepted, 7);
  assert.equal(r.deadLettered, 1);
  assert.equal((await client.deadLetters())[0].key, "k5");

  const proxy = setup();
  await proxy.client.track("e", {}, { idempotencyKey: "p1" });
  await proxy.client.track("e", {}, { idempotencyKey: "p2" });
  proxy.server.script.push(() => new Response("<html>bad request</html>", { status: 400 }));
  const pr = await proxy.client.flush();
  assert.equal(pr.outcome, "failed");
  assert.equal(pr.deadLettered, 0);
  assert.equal((await proxy.client.status()).queueDepth, 2);
});

test("429: Retry-After is honoured (no request before it), then delivery", async () => {
  const { clock, server, client } = setup();
  await client.track("e", {}, { idempotencyKey: "r1" });
  server.script.push((req) => req.method === "POST" && server.error(429, "rate_limited", { "retry-after": "7" }));
  const flushing = client.flush({ timeoutMs: 60_000 });
  await clock.advance(6_000);
  assert.equal(server.posts().length, 1);
  const r = await clock.runUntil(flushing);
  assert.equal(r.outcome, "ok");
  const [a, b] = server.posts();
  assert.ok(b.at - a.at >= 7_000, `resent after ${b.at - a.at} ms`);
  assert.notEqual(a.headers.get("webhook-id"), b.headers.get("webhook-id"));
});

test("retryCap: retryCap + 1 attempts with full-jitter backoff, then the events stay queued", async () => {
  const { clock, server, client } = setup({ backoffBaseMs: 1000 });
  await client.track("e", {}, { idempotencyKey: "x" });
  server.online = false;
  const flushing = client.flush({ timeoutMs: 120_000 });
  const r = await clock.runUntil(flushing);
  assert.equal(r.outcome, "failed");
  assert.equal(r.requests, 4); // default retryCap 3
  assert.equal((await client.status()).queueDepth, 1);
  server.online = true;
  assert.equal((await client.flush()).accepted, 1);
});

test("/config: read at start, ETag revalidated at max-age, syncEnabled pauses and resumes live", async () => {
  const { clock, server, client } = setup({ autoStart: true });
  server.config = { syncEnabled: false, minIntervalSec: 5, retryCap: 2 };
  server.maxAge = 10;
  await client.start();
  assert.equal((await client.status()).configSource, "server");
  assert.equal((await client.status()).paused, true);
  await client.track("e", {}, { idempotencyKey: "p" });
  await clock.advance(30_000);
  assert.equal(server.posts().length, 0, "paused: nothing sent");
  assert.equal((await client.flush()).outcome, "disabled");
  const configs = server.requests.filter((r) => r.path === "/config");
  assert.ok(configs.length >= 3, `polled ${configs.length} times`);
  assert.ok(configs.slice(1).every((r) => r.headers.get("if-none-match")), "revalidated with the ETag");
  assert.equal((await client.status()).configSource, "server-cached");
  server.config = { ...server.config, syncEnabled: true };
  await clock.advance(10_000);
  assert.equal(server.posts().length, 1, "resumed without a restart");
  assert.equal((await client.status()).queueDepth, 0);
  await client.close();
});

test("minIntervalSec spaces background syncs; track() wakes an idle client when one is due", async () => {
  const { clock, server, client } = setup({ autoStart: true });
  server.config = { syncEnabled: true, minIntervalSec: 60, retryCap: 3 };
  server.maxAge = 3600;
  await client.start();
  await client.track("e", {}, { idempotencyKey: "a" });
  await clock.advance(1_000);
  assert.equal(server.posts().length, 1);
  await client.track("e", {}, { idempotencyKey: "b" });
  await clock.advance(30_000);
  assert.equal(server.posts().length, 1, "not before the interval");
  await clock.advance(31_000);
  assert.equal(server.posts().length, 2);
  await client.close();
});

test("a persisted config is used when /config cannot be read", async () => {
  const { server, store, make } = setup();
  server.config = { syncEnabled: false, minIntervalSec: 30, retryCap: 1 };
  const first = make();
  await first.start();
  await first.close({ flush: false });
  server.online = false;
  const second = make();
  await second.start();
  const s = await second.status();
  assert.equal(s.configSource, "persisted");
  assert.deepEqual(s.config, server.config);
  await second.close({ flush: false });
  assert.ok(store);
});

test("leases: two senders on one queue never send an event twice", async () => {
  const { server, make } = setup();
  const a = make(), b = make();
  for (let i = 0; i < 1500; i++) await (i % 2 ? a : b).track("e", { i }, { idempotencyKey: `k${i}` });
  const [ra, rb] = await Promise.all([a.flush(), b.flush()]);
  assert.equal(ra.accepted + rb.accepted, 1500);
  assert.equal(ra.duplicates + rb.duplicates, 0);
  const sent = server.sentKeys();
  assert.equal(sent.length, 1500);
  assert.equal(new Set(sent).size, 1500);
});

test("queue cap: a clear error, and a counter of what was refused", async () => {
  const { client } = setup({ maxQueueEvents: 3 });
  for (let i = 0; i < 3; i++) await client.track("e", {}, { idempotencyKey: `q${i}` });
  await assert.rejects(client.track("e", {}, { idempotencyKey: "q3" }), QueueFullError);
  await assert.rejects(client.track("e", {}, { idempotencyKey: "q4" }), /queue is full/);
  assert.equal((await client.status()).refused, 2);
});

test("close() makes one last attempt and leaves the rest queued", async () => {
  const { server, make, store } = setup();
  const c = make();
  await c.track("e", {}, { idempotencyKey: "c1" });
  server.online = false;
  await c.close({ timeoutMs: 1000 });
  assert.equal((await c.status()).counters.postRequests, 1);
  assert.equal((await store.counts(Date.now())).depth, 1);
  await assert.rejects(c.track("e", {}), /closed/);
});

test("file store: durable across instances, private, atomic, and leases across instances", async () => {
  const dir = mkdtempSync(join(tmpdir(), "codex-js-"));
  const path = join(dir, "q.json");
  const { server, make } = setup();
  const one = make({ store: new FileStore(path) });
  for (let i = 0; i < 50; i++) await one.track("e", { i }, { idempotencyKey: `f${i}` });
  await one.close({ flush: false });
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir), ["q.json"]); // no temp or lock file left behind
  const two = make({ store: new FileStore(path) }), three = make({ store: new FileStore(path) });
  assert.equal((await two.status()).queueDepth, 50);
  const rs = await Promise.all([two.flush(), three.flush()]);
  assert.equal(rs[0].accepted + rs[1].accepted, 50);
  assert.equal(new Set(server.sentKeys()).size, server.sentKeys().length);
  assert.equal((await two.status()).queueDepth, 0);
});

test("clock skew: a timestamp_out_of_tolerance answer teaches the server's clock, re-signed once", async () => {
  const { clock, server, client } = setup();
  await client.track("e", {}, { idempotencyKey: "s" });
  const serverNow = new Date(clock.now() + 3_600_000).toUTCString();
  server.script.push((req) => req.method === "POST" && server.error(401, "timestamp_out_of_tolerance", { date: serverNow }));
  const r = await client.flush();
  assert.equal(r.accepted, 1);
  const [a, b] = server.posts();
  assert.ok(Number(b.headers.get("webhook-timestamp")) - Number(a.headers.get("webhook-timestamp")) >= 3590);
  await settle();
});

test("keepalive flush on page hide: this tab's events in one signed request within 64 KiB", async () => {
  const { server, client } = setup();
  for (let i = 0; i < 30; i++) await client.track("e", { blob: "z".repeat(4000) }, { idempotencyKey: `h${i}` });
  const sent = client.flushKeepalive();
  assert.ok(sent > 0 && sent < 30, `sent ${sent}`);
  await settle();
  const [req] = server.posts();
  assert.equal(req.keepalive, true);
  assert.ok(req.text.length <= 60 * 1024);
  assert.equal((await client.status()).queueDepth, 30 - sent, "answered events settled");
  const r = await client.flush();
  assert.equal(r.accepted, 30 - sent);
  assert.equal(r.duplicates, 0);
  assert.equal(client.flushKeepalive(), 0);
});

test("hidden page: the next rows are leased and sent with keepalive; a second sender skips them", async () => {
  const { server, make } = setup();
  const a = make(), b = make();
  for (let i = 0; i < 20; i++) await a.track("e", { blob: "q".repeat(5000) }, { idempotencyKey: `v${i}` });
  const sent = await a.flushHidden();
  assert.ok(sent > 0 && sent < 20, `sent ${sent}`);
  const flushed = await b.flush(); // runs while the keepalive rows are leased or settled
  await settle();
  assert.equal(flushed.accepted + sent, 20);
  assert.equal(new Set(server.sentKeys()).size, 20);
  assert.equal(server.sentKeys().length, 20, "no event sent twice");
  assert.equal((await a.status()).queueDepth, 0);
});

test("Web Locks: one sender at a time; a background pass finding the lock taken is busy", async () => {
  const held = new Set();
  const locks = {
    async request(name, opts, cb) {
      if (held.has(name) && opts.ifAvailable) return cb(null);
      while (held.has(name)) await new Promise((r) => setTimeout(r, 1));
      held.add(name);
      try {
        return await cb({ name });
      } finally {
        held.delete(name);
      }
    },
  };
  const had = Object.getOwnPropertyDescriptor(globalThis, "navigator");
  Object.defineProperty(globalThis, "navigator", { value: { locks }, configurable: true });
  try {
    const { server, make } = setup();
    let inFlight = 0, overlap = 0;
    const counting = async (...args) => {
      inFlight++;
      overlap = Math.max(overlap, inFlight);
      try {
        return await server.fetch(...args);
      } finally {
        inFlight--;
      }
    };
    const a = make({ fetch: counting }), b = make({ fetch: counting });
    for (let i = 0; i < 600; i++) await a.track("e", { i }, { idempotencyKey: `w${i}` });
    const first = a.flush();
    await new Promise((r) => setImmediate(r));
    const busy = await b["runPass"]({ deadline: Infinity, force: false }, false);
    assert.equal(busy.outcome, "busy");
    const [ra, rb] = await Promise.all([first, b.flush()]);
    assert.equal(ra.accepted + rb.accepted, 600);
    assert.equal(overlap, 1, "never two senders at once");
    assert.equal(server.sentKeys().length, 600);
  } finally {
    if (had) Object.defineProperty(globalThis, "navigator", had);
    else delete globalThis.navigator;
  }
});
