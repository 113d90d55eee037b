/** @codex-ingest/sdk: signed, durable, server-steered event delivery for browsers and Node. */
export { Client, type ClientOptions, type Status, type SyncResult, MAX_BATCH_EVENTS, MAX_BODY_BYTES, KEEPALIVE_BODY_BYTES } from "./client.js";
export { Api, ServerError, TransportError, type EventFate, type EventResult } from "./api.js";
export { MemoryStore, QueueFullError, StateStore, type Store, type DeadLetter } from "./store.js";
export { buildEvent, encodeJson } from "./events.js";
export { DEFAULT_CONFIG, fullJitter, parseMaxAge, parseRateLimit, parseRetryAfter, type RemoteConfig } from "./retry.js";
export { Signer, canonicalRequest, decodeSecret, hmacSha256, newMessageId, sha256 } from "./signing.js";
export { realClock, type Clock } from "./clock.js";
export { VERSION as SIGNATURE_VERSION } from "./signing.js";
export const version = "0.1.0";

export { FileStore } from "./file-store.js";
export { IndexedDBStore } from "./idb-store.js";
