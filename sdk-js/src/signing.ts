/**
 * Request signing, the one module that knows the scheme (docs/api.md, "Authentication").
 *
 * v2: `webhook-signature: v2,<base64 HMAC-SHA256>` over
 *   v2\n{METHOD}\n{canonical path}\n{canonical query}\n{webhook-id}\n{webhook-timestamp}\n{body}
 * keyed with the base64 after `whsec_`; every request (every retry too) gets a new webhook-id,
 * which the server accepts once per key. WebCrypto (browsers, Node 18+) does the HMAC;
 * `signHeadersSync` is a pure-JS fallback for page unload, when a promise may never resolve.
 */

export const VERSION = "v2";
const enc = new TextEncoder();
type Bytes = Uint8Array;

export function decodeSecret(secret: string): Bytes {
  if (typeof secret !== "string" || !secret) throw new TypeError("secret must be a non-empty string");
  const b64 = secret.startsWith("whsec_") ? secret.slice(6) : secret;
  let bin: string;
  try {
    bin = atob(b64.replace(/=+$/, "") + "===".slice((b64.replace(/=+$/, "").length + 3) % 4));
  } catch {
    throw new TypeError("secret is not valid base64 after the whsec_ prefix");
  }
  if (!bin.length) throw new TypeError("secret decodes to an empty key");
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

export function b64(bytes: Bytes): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return btoa(s);
}

export function newMessageId(): string {
  const r = crypto.getRandomValues(new Uint8Array(16));
  let h = "msg_";
  for (const b of r) h += b.toString(16).padStart(2, "0");
  return h;
}

const hex = (b: number) => "%" + b.toString(16).toUpperCase().padStart(2, "0");

/** Percent-decode to bytes (what the server's HTTP stack does to a path). */
function unquoteBytes(s: string): number[] {
  const out: number[] = [];
  const raw = enc.encode(s);
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === 37 && i + 2 < raw.length + 0 && /^[0-9a-fA-F]{2}$/.test(String.fromCharCode(raw[i + 1], raw[i + 2]))) {
      out.push(parseInt(String.fromCharCode(raw[i + 1], raw[i + 2]), 16));
      i += 2;
    } else out.push(c);
  }
  return out;
}

const unreserved = (c: number) =>
  (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 46 || c === 95 || c === 126;

/** The canonical path and query of a request target `/path?query` (what the server recomputes). */
export function canonicalTarget(target: string): [string, string] {
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? "" : target.slice(q + 1);
  let p = "";
  for (const c of unquoteBytes(path)) p += unreserved(c) || c === 47 ? String.fromCharCode(c) : hex(c);
  let qs = "";
  for (const c of enc.encode(query)) qs += c >= 0x21 && c <= 0x7e ? String.fromCharCode(c) : hex(c);
  return [p, qs];
}

export function canonicalRequest(method: string, target: string, msgId: string, timestamp: number, body: Bytes): Bytes {
  const [p, q] = canonicalTarget(target);
  const head = enc.encode([VERSION, method.toUpperCase(), p, q, msgId, String(timestamp)].join("\n") + "\n");
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

export interface SignInput {
  keyId: string;
  method: string;
  target: string; // API path with any query, as routed by the server: "/v1/events", "/config"
  body: Bytes;
  timestamp: number; // unix seconds
  msgId?: string;
}

function headers(i: SignInput, id: string, mac: Bytes): Record<string, string> {
  return {
    "X-Codex-Key-Id": i.keyId,
    "webhook-id": id,
    "webhook-timestamp": String(i.timestamp),
    "webhook-signature": `${VERSION},${b64(mac)}`,
  };
}

/** A signer bound to one secret (the raw key is imported once and not kept as text). */
export class Signer {
  private key: Bytes;
  private cryptoKey?: Promise<CryptoKey>;
  constructor(secret: string) {
    this.key = decodeSecret(secret);
  }
  private imported(): Promise<CryptoKey> {
    return (this.cryptoKey ??= crypto.subtle.importKey("raw", this.key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]));
  }
  async sign(i: SignInput): Promise<Record<string, string>> {
    const id = i.msgId ?? newMessageId();
    const data = canonicalRequest(i.method, i.target, id, i.timestamp, i.body);
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", await this.imported(), data));
    return headers(i, id, mac);
  }
  signSync(i: SignInput): Record<string, string> {
    const id = i.msgId ?? newMessageId();
    return headers(i, id, hmacSha256(this.key, canonicalRequest(i.method, i.target, id, i.timestamp, i.body)));
  }
}

// --- a small synchronous SHA-256 / HMAC (FIPS 180-4), for the unload path only ---
const K = new Uint32Array(64);
(() => {
  let n = 2;
  for (let i = 0; i < 64; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) if (n % d === 0) prime = false;
    if (prime) K[i++] = (Math.cbrt(n) % 1) * 2 ** 32;
  }
})();

export function sha256(msg: Bytes): Bytes {
  const H = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const len = msg.length;
  const total = ((len + 9 + 63) >> 6) << 6;
  const buf = new Uint8Array(total);
  buf.set(msg);
  buf[len] = 0x80;
  const dv = new DataView(buf.buffer);
  dv.setUint32(total - 8, Math.floor(len / 2 ** 29));
  dv.setUint32(total - 4, (len << 3) >>> 0);
  const W = new Uint32Array(64);
  const rotr = (x: number, n: number) => (x >>> n) | (x << (32 - n));
  for (let o = 0; o < total; o += 64) {
    for (let t = 0; t < 16; t++) W[t] = dv.getUint32(o + t * 4);
    for (let t = 16; t < 64; t++) {
      const a = W[t - 15], b = W[t - 2];
      W[t] = W[t - 16] + (rotr(a, 7) ^ rotr(a, 18) ^ (a >>> 3)) + W[t - 7] + (rotr(b, 17) ^ rotr(b, 19) ^ (b >>> 10));
    }
    let [a, b, c, d, e, f, g, h] = H;
    for (let t = 0; t < 64; t++) {
      const t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + W[t]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      h = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
  }
  const out = new Uint8Array(32);
  const odv = new DataView(out.buffer);
  H.forEach((v, i) => odv.setUint32(i * 4, v));
  return out;
}

export function hmacSha256(key: Bytes, data: Bytes): Bytes {
  let k = key.length > 64 ? sha256(key) : key;
  const block = new Uint8Array(64);
  block.set(k);
  const ipad = block.map((x) => x ^ 0x36), opad = block.map((x) => x ^ 0x5c);
  const inner = new Uint8Array(64 + data.length);
  inner.set(ipad);
  inner.set(data, 64);
  const outer = new Uint8Array(96);
  outer.set(opad);
  outer.set(sha256(inner), 64);
  return sha256(outer);
}
