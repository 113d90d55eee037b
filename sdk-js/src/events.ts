/** Local validation and wire encoding of events, mirroring the server's limits (docs/api.md). */

export const MAX_PAYLOAD_BYTES = 64 * 1024;
const TYPE_RE = /^[a-z0-9_.:-]{1,100}$/;
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export interface TrackOptions {
  occurredAt?: string | Date;
  idempotencyKey?: string;
  subjectId?: string | null;
  source?: string;
}

export interface WireEvent {
  idempotency_key: string;
  type: string;
  occurred_at: string;
  source: string;
  payload: Record<string, unknown>;
  subject_id?: string;
}

function checkStrings(value: unknown, path: string, depth = 0): void {
  if (depth > 64) throw new TypeError(`payload is nested deeper than 64 levels`);
  if (typeof value === "string") {
    if (value.includes("\u0000") || LONE_SURROGATE.test(value)) throw new TypeError(`${path}: NUL or an unpaired surrogate`);
  } else if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError(`${path}: numbers must be finite`);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => checkStrings(v, `${path}[${i}]`, depth + 1));
  } else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      checkStrings(k, path, depth + 1);
      checkStrings(v, `${path}.${k}`, depth + 1);
    }
  }
}

/** Compact JSON with every non-ASCII character escaped: the stored bytes are the bytes sent. */
export function encodeJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

export function rfc3339(d: Date): string {
  if (Number.isNaN(d.getTime())) throw new TypeError("occurredAt is an invalid Date");
  return d.toISOString(); // UTC, milliseconds, "Z"
}

/** Validate and return the event exactly as it will be sent; TypeError for what the server would refuse. */
export function buildEvent(type: string, payload: Record<string, unknown> | undefined, o: TrackOptions = {}, defaultSource = "sdk"): WireEvent {
  if (typeof type !== "string" || !TYPE_RE.test(type)) throw new TypeError(`type must be 1-100 characters of [a-z0-9_.:-], got ${JSON.stringify(type)}`);
  payload ??= {};
  if (typeof payload !== "object" || Array.isArray(payload)) throw new TypeError("payload must be a plain object");
  checkStrings(payload, "payload");
  let measured: string;
  try {
    measured = encodeJson(payload);
  } catch (e) {
    throw new TypeError(`payload is not JSON-serialisable: ${(e as Error).message}`);
  }
  if (measured.length > MAX_PAYLOAD_BYTES) throw new TypeError(`payload exceeds ${MAX_PAYLOAD_BYTES} bytes when serialised`);
  let occurred: string;
  if (o.occurredAt === undefined) occurred = rfc3339(new Date());
  else if (o.occurredAt instanceof Date) occurred = rfc3339(o.occurredAt);
  else if (typeof o.occurredAt === "string" && RFC3339_RE.test(o.occurredAt) && !Number.isNaN(Date.parse(o.occurredAt.toUpperCase())))
    occurred = o.occurredAt; // verbatim: rewriting it would change the content fingerprint
  else throw new TypeError(`occurredAt is not an RFC 3339 timestamp with offset: ${JSON.stringify(o.occurredAt)}`);
  const key = o.idempotencyKey ?? crypto.randomUUID();
  if (typeof key !== "string" || key.length < 1 || key.length > 255 || key.includes("\u0000") || LONE_SURROGATE.test(key))
    throw new TypeError("idempotencyKey must be a string of 1-255 characters");
  const source = o.source ?? defaultSource;
  if (typeof source !== "string" || source.length < 1 || source.length > 64 || !/^[\x20-\x7e\u00a0-\uffff]+$/.test(source))
    throw new TypeError("source must be a printable string of 1-64 characters");
  const ev: WireEvent = { idempotency_key: key, type, occurred_at: occurred, source, payload: JSON.parse(measured) };
  if (o.subjectId != null) {
    if (typeof o.subjectId !== "string" || o.subjectId.length < 1 || o.subjectId.length > 255 || o.subjectId.includes("\u0000"))
      throw new TypeError("subjectId must be a string of 1-255 characters (no NUL) or null");
    ev.subject_id = o.subjectId; // only when set, as the Python SDK: same bytes, same fingerprint
  }
  return ev;
}

export const encodeBatch = (bodies: string[]) => '{"events":[' + bodies.join(",") + "]}";
export const BATCH_OVERHEAD = encodeBatch([]).length;
