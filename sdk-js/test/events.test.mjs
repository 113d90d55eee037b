import { test } from "node:test";
import assert from "node:assert/strict";
import { buildEvent, encodeJson, fullJitter, parseMaxAge, parseRateLimit, parseRetryAfter } from "../dist/index.js";

test("buildEvent validates like the server", () => {
  const ev = buildEvent("sale.completed", { amount: "1.00" }, { occurredAt: "2026-01-15T10:30:00+01:00", idempotencyKey: "k1", subjectId: "c-1" });
  assert.deepEqual(ev, { idempotency_key: "k1", type: "sale.completed", occurred_at: "2026-01-15T10:30:00+01:00", source: "sdk", payload: { amount: "1.00" }, subject_id: "c-1" });
  assert.equal(buildEvent("a", undefined).source, "sdk");
  assert.match(buildEvent("a", {}).idempotency_key, /^[0-9a-f-]{36}$/);
  assert.equal(buildEvent("a", {}, { occurredAt: new Date(0) }).occurred_at, "1970-01-01T00:00:00.000Z");
  assert.equal("subject_id" in buildEvent("a", {}), false);
  for (const [type, payload, opts] of [
    ["Bad Type", {}, {}],
    ["a", [], {}],
    ["a", { x: "\u0000" }, {}],
    ["a", { x: "\ud800" }, {}],
    ["a", { x: Infinity }, {}],
    ["a", { x: "y".repeat(65 * 1024) }, {}],
    ["a", {}, { occurredAt: "2026-01-15 10:30:00" }],
    ["a", {}, { occurredAt: "2026-01-15T10:30:00" }],
    ["a", {}, { idempotencyKey: "" }],
    ["a", {}, { idempotencyKey: "k".repeat(256) }],
    ["a", {}, { source: "" }],
    ["a", {}, { subjectId: "" }],
  ])
    assert.throws(() => buildEvent(type, payload, opts), TypeError, JSON.stringify([type, opts]));
});

test("the stored JSON is ASCII (what is queued is byte for byte what is sent)", () => {
  assert.equal(encodeJson({ a: "é€😀" }), '{"a":"\\u00e9\\u20ac\\ud83d\\ude00"}');
  assert.deepEqual(JSON.parse(encodeJson({ a: "é€😀" })), { a: "é€😀" });
});

test("headers: Retry-After, Cache-Control max-age, RateLimit; full jitter stays under its ceiling", () => {
  const now = Date.UTC(2026, 0, 1);
  assert.equal(parseRetryAfter("3", now), 3);
  assert.equal(parseRetryAfter(new Date(now + 10_000).toUTCString(), now), 10);
  assert.equal(parseRetryAfter("999999", now), 3600);
  assert.equal(parseRetryAfter("soon", now), null);
  assert.equal(parseMaxAge("private, max-age=30"), 30);
  assert.equal(parseMaxAge("no-store"), 0);
  assert.equal(parseMaxAge(null), null);
  assert.deepEqual(parseRateLimit('"tenant";r=12;t=1'), { remaining: 12, reset: 1 });
  for (let a = 0; a < 10; a++) assert.ok(fullJitter(a, 1000, 60_000) <= Math.min(60_000, 1000 * 2 ** a));
  assert.equal(fullJitter(3, 1000, 60_000, () => 0.5), 4000);
});
