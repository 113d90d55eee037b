/** Full-jitter backoff and the HTTP headers that steer it (Retry-After, Cache-Control, Date). */

export const MAX_RETRY_AFTER_SEC = 3600; // a hostile Retry-After must not silence a device for days

export const fullJitter = (attempt: number, base: number, cap: number, rnd: () => number = Math.random) =>
  rnd() * Math.min(cap, base * 2 ** Math.min(attempt, 32));

export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | null {
  if (value == null || !value.trim()) return null;
  const v = value.trim();
  let sec: number;
  if (/^\d+$/.test(v)) sec = Number(v);
  else {
    const when = Date.parse(v);
    if (Number.isNaN(when)) return null;
    sec = (when - nowMs) / 1000;
  }
  return Math.max(0, Math.min(sec, MAX_RETRY_AFTER_SEC));
}

export function parseMaxAge(cc: string | null | undefined): number | null {
  if (!cc) return null;
  if (/no-store|no-cache/i.test(cc)) return 0;
  const m = /(?:^|,)\s*max-age\s*=\s*"?(\d+)"?\s*(?:,|$)/i.exec(cc);
  return m ? Number(m[1]) : null;
}

/** `RateLimit: "tenant";r=12;t=1` -> {remaining, reset seconds}; null when absent. */
export function parseRateLimit(value: string | null | undefined): { remaining: number; reset: number } | null {
  if (!value) return null;
  const r = /(?:^|;)\s*r=(\d+)/.exec(value), t = /(?:^|;)\s*t=(\d+)/.exec(value);
  return r && t ? { remaining: Number(r[1]), reset: Number(t[1]) } : null;
}

export interface RemoteConfig {
  syncEnabled: boolean;
  minIntervalSec: number;
  retryCap: number;
}

export const DEFAULT_CONFIG: RemoteConfig = { syncEnabled: true, minIntervalSec: 900, retryCap: 3 };

export function configFromWire(d: any): RemoteConfig {
  if (!d || typeof d !== "object") throw new TypeError("config must be a JSON object");
  const { syncEnabled, minIntervalSec, retryCap } = d;
  if (typeof syncEnabled !== "boolean") throw new TypeError("syncEnabled must be a boolean");
  if (typeof minIntervalSec !== "number" || !(minIntervalSec >= 0)) throw new TypeError("minIntervalSec must be a non-negative number");
  if (!Number.isInteger(retryCap) || retryCap < 0) throw new TypeError("retryCap must be a non-negative integer");
  return { syncEnabled, minIntervalSec, retryCap };
}
