import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { Signer, canonicalRequest, decodeSecret, hmacSha256, sha256 } from "../dist/index.js";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
// Computed by the Python SDK (sdk/src/codex_sdk/signing.py), which the server's check mirrors.
const VECTORS = [
  ["POST", "/v1/events", '{"a":1}', "v2,8s0fzhb5klx+ywh0krrePFiYOk///PhkMeNvmQn6+XE="],
  ["GET", "/v1/events/a%2Fb%20c%C3%A9!*", "", "v2,kDvIy/rAiIjuBcrI2lG+f6UDK46dy3cbjaO1WnY6y5c="],
  ["GET", "/config?x=1 2&y=é", "", "v2,OmZoi1D87qtNIWDoMFp3pfmmzUNMNsQ4Z78xP43WWJs="],
];

test("v2 signatures equal the Python SDK's, through WebCrypto and the sync fallback", async () => {
  const s = new Signer(SECRET);
  for (const [method, target, body, expected] of VECTORS) {
    const input = { keyId: "ck_1", method, target, body: new TextEncoder().encode(body), timestamp: 1700000000, msgId: "msg_1" };
    const h = await s.sign(input);
    assert.equal(h["webhook-signature"], expected, `${method} ${target}`);
    assert.equal(s.signSync(input)["webhook-signature"], expected);
    assert.equal(h["X-Codex-Key-Id"], "ck_1");
    assert.equal(h["webhook-timestamp"], "1700000000");
  }
});

test("the canonical request binds method, path, query and body", () => {
  const text = new TextDecoder().decode(canonicalRequest("post", "/v1/events/a%2fb?q=1", "msg_x", 5, new TextEncoder().encode("{}")));
  assert.equal(text, "v2\nPOST\n/v1/events/a/b\nq=1\nmsg_x\n5\n{}");
});

test("every signature gets a fresh webhook-id", async () => {
  const s = new Signer(SECRET);
  const input = { keyId: "k", method: "GET", target: "/config", body: new Uint8Array(), timestamp: 1 };
  const ids = new Set();
  for (let i = 0; i < 20; i++) ids.add((await s.sign(input))["webhook-id"]);
  assert.equal(ids.size, 20);
  assert.match([...ids][0], /^msg_[0-9a-f]{32}$/);
});

test("the pure-JS SHA-256 and HMAC match node:crypto on every length around the block size", () => {
  const key = decodeSecret(SECRET);
  for (let n = 0; n < 200; n += 7) {
    const data = new Uint8Array(n).map((_, i) => (i * 31 + n) & 255);
    assert.equal(Buffer.from(sha256(data)).toString("hex"), createHash("sha256").update(data).digest("hex"));
    assert.equal(Buffer.from(hmacSha256(key, data)).toString("hex"), createHmac("sha256", key).update(data).digest("hex"));
  }
  const long = new Uint8Array(100).fill(7);
  assert.equal(Buffer.from(hmacSha256(long, long)).toString("hex"), createHmac("sha256", long).update(long).digest("hex"));
});

test("secrets: unpadded base64 works, junk is refused", () => {
  assert.equal(decodeSecret("whsec_AAAA").length, 3);
  assert.equal(decodeSecret("whsec_AAA").length, 2);
  assert.throws(() => decodeSecret(""), TypeError);
  assert.throws(() => decodeSecret("whsec_!!!"), TypeError);
});
