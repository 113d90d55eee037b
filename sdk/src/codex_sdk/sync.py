"""One sync pass: claim batches from the queue, send them, settle results, retry failures."""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .api import Api, EventResult
from .errors import ServerError, TransportError
from .events import BATCH_OVERHEAD, encode_batch
from .remote_config import RemoteConfig
from .retry import full_jitter
from .store import QueuedEvent, Store

log = logging.getLogger(__name__)

MAX_BATCH_EVENTS = 500
MAX_BODY_BYTES = 1024 * 1024
DELIVERED = frozenset({"accepted", "duplicate"})
DEAD = frozenset({"conflict", "rejected"})
# Request-level answers that blame the batch's content: bisect to isolate the bad event. Only our
# own error codes count: a proxy's 400/413 or a host-header rejection says nothing about the
# events, and bisecting on it would dead-letter every one of them.
_CONTENT_ERRORS = frozenset({400, 413})
_CONTENT_CODES = frozenset({"malformed_json", "invalid_request", "payload_too_large"})
_MIN_REQUEST_TIMEOUT = 0.2


@dataclass(frozen=True)
class SyncResult:
    """Outcome of one sync pass (a flush or one background sync).

    outcome: "ok" (everything claimable settled), "empty" (nothing to send), "disabled"
    (syncEnabled is false), "failed" (a batch still failed after retryCap retries, or a
    non-retryable error), "timeout" (the deadline came first), "stopped" (close() began),
    "busy" (another flush held the sync lock past the timeout).
    """

    outcome: str
    accepted: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    requests: int = 0
    remaining: int = 0
    error: str | None = None
    started_at: float = 0.0  # unix seconds
    finished_at: float = 0.0
    statuses: dict[str, str] = field(default_factory=dict)  # key -> server status

    @property
    def delivered(self) -> int:
        return self.accepted + self.duplicates

    @property
    def ok(self) -> bool:
        return self.outcome in ("ok", "empty")


@dataclass
class _Tally:
    accepted: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    requests: int = 0
    statuses: dict[str, str] = field(default_factory=dict)


class _Abort(Exception):
    """Ends the pass early; outcome and error go into the SyncResult."""

    def __init__(self, outcome: str, error: str) -> None:
        super().__init__(error)
        self.outcome = outcome
        self.error = error


class Syncer:
    def __init__(
        self,
        store: Store,
        api: Api,
        *,
        owner: str,
        timeout: float,
        lease_sec: float,
        backoff_base: float,
        backoff_max: float,
        max_batch_events: int = MAX_BATCH_EVENTS,
        max_batch_bytes: int = MAX_BODY_BYTES,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.api = api
        self.owner = owner
        self.timeout = timeout
        self.lease_sec = lease_sec
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_batch_events = min(max_batch_events, MAX_BATCH_EVENTS)
        self.max_batch_bytes = min(max_batch_bytes, MAX_BODY_BYTES)
        self.rng = rng or random.Random()  # noqa: S311 - jitter needs no crypto RNG
        # Monotonic time before which no request may be sent (server's Retry-After).
        self.not_before = 0.0
        self.requests_total = 0

    def honour_retry_after(self, seconds: float | None) -> None:
        if seconds:
            self.not_before = max(self.not_before, time.monotonic() + seconds)

    def run(
        self,
        config: Callable[[], RemoteConfig],
        *,
        deadline: float = math.inf,
        max_retries: int | None = None,
        force: bool = False,
        stop: threading.Event,
    ) -> SyncResult:
        """Send everything claimable, batch by batch, until done, failure or deadline.

        `config` is re-read between batches so a server-side pause takes effect mid-pass.
        """
        started = time.time()
        tally = _Tally()
        outcome, error = "empty", None
        # Events tracked during the pass wait for the next one: a steady stream of track()
        # calls must not turn a single sync into an endless one.
        upto = self.store.max_seq()
        try:
            while True:
                cfg = config()
                if not (cfg.sync_enabled or force):
                    raise _Abort("disabled", "syncEnabled is false")
                if stop.is_set():
                    raise _Abort("stopped", "client is closing")
                if time.monotonic() >= deadline:
                    raise _Abort("timeout", "flush deadline reached")
                batch = self.store.claim(
                    self.owner,
                    max_events=self.max_batch_events,
                    max_bytes=self.max_batch_bytes - BATCH_OVERHEAD,
                    lease_sec=self.lease_sec,
                    max_seq=upto,
                )
                if not batch:
                    break
                outcome = "ok"
                retries = cfg.retry_cap if max_retries is None else max_retries
                try:
                    self._send_batch(batch, tally, retries, deadline, stop)
                except BaseException:
                    # Never strand leased rows on an early exit: give them straight back.
                    self.store.release(self.owner, batch, attempted=False)
                    raise
        except _Abort as abort:
            outcome, error = abort.outcome, abort.error or None
        return SyncResult(
            outcome=outcome,
            accepted=tally.accepted,
            duplicates=tally.duplicates,
            dead_lettered=tally.dead_lettered,
            requests=tally.requests,
            remaining=self.store.depth(),
            error=error,
            started_at=started,
            finished_at=time.time(),
            statuses=tally.statuses,
        )

    def _send_batch(
        self,
        batch: list[QueuedEvent],
        tally: _Tally,
        retries: int,
        deadline: float,
        stop: threading.Event,
    ) -> None:
        """Deliver one claimed batch, retrying up to `retries` times; raise _Abort on failure."""
        pending = batch
        attempt = 0
        while True:
            self._wait_not_before(deadline, stop)
            pending = self.store.renew(self.owner, pending, self.lease_sec)
            if not pending:
                return  # our lease lapsed and another process took over these rows
            remaining = deadline - time.monotonic()
            if remaining < _MIN_REQUEST_TIMEOUT:
                raise _Abort("timeout", "flush deadline reached")
            body = encode_batch([ev.body for ev in pending])
            retry_after: float | None = None
            tally.requests += 1
            self.requests_total += 1
            try:
                results = self.api.post_events(body, timeout=min(self.timeout, remaining))
            except TransportError as exc:
                error = str(exc)
                log.warning("send failed (attempt %d/%d): %s", attempt + 1, retries + 1, error)
            except ServerError as exc:
                error = str(exc)
                if exc.status in _CONTENT_ERRORS and exc.code in _CONTENT_CODES:
                    self._bisect_or_bury(pending, exc, tally, retries, deadline, stop)
                    return
                if not exc.retryable:
                    log.error("send refused, will retry next sync: %s", error)
                    self.store.release(self.owner, pending, attempted=True)
                    raise _Abort("failed", error) from exc
                retry_after = exc.retry_after
                self.honour_retry_after(retry_after)
                log.warning("send failed (attempt %d/%d): %s", attempt + 1, retries + 1, error)
            else:
                pending = self._settle(pending, results, tally)
                if not pending:
                    return
                error = f"{len(pending)} events missing from the server's answer"
                log.warning("%s; retrying them", error)
            attempt += 1
            if attempt > retries:
                self.store.release(self.owner, pending, attempted=True)
                raise _Abort("failed", f"gave up after {attempt} attempts: {error}")
            delay = full_jitter(attempt - 1, self.backoff_base, self.backoff_max, self.rng)
            if retry_after is not None:
                delay = max(delay, retry_after)
            if time.monotonic() + delay >= deadline:
                self.store.release(self.owner, pending, attempted=True)
                raise _Abort("timeout", f"next retry would pass the deadline: {error}")
            if stop.wait(delay):
                self.store.release(self.owner, pending, attempted=True)
                raise _Abort("stopped", "client is closing")

    def _wait_not_before(self, deadline: float, stop: threading.Event) -> None:
        wait = self.not_before - time.monotonic()
        if wait <= 0:
            return
        if time.monotonic() + wait >= deadline:
            raise _Abort("timeout", f"server asked to retry after {wait:.1f}s")
        if stop.wait(wait):
            raise _Abort("stopped", "client is closing")

    def _bisect_or_bury(
        self,
        pending: list[QueuedEvent],
        exc: ServerError,
        tally: _Tally,
        retries: int,
        deadline: float,
        stop: threading.Event,
    ) -> None:
        """Split a batch the server refused as a whole; a lone refused event is dead-lettered.

        Without this, one poison event at the head of the queue would block it forever.
        """
        if len(pending) == 1:
            key = pending[0].idempotency_key
            log.error("event %s refused by the server, dead-lettered: %s", key, exc)
            tally.dead_lettered += self.store.complete([], [(key, exc.code, exc.code, exc.message)])
            tally.statuses[key] = exc.code
            return
        log.warning("batch of %d refused (%s); splitting it", len(pending), exc.code)
        mid = len(pending) // 2
        for half in (pending[:mid], pending[mid:]):
            self._send_batch(half, tally, retries, deadline, stop)

    def _settle(
        self, pending: list[QueuedEvent], results: list[EventResult], tally: _Tally
    ) -> list[QueuedEvent]:
        """Apply per-event answers; return the events still unsettled."""
        by_key = {r.idempotency_key: r for r in results}
        delivered: list[str] = []
        dead: list[tuple[str, str, str | None, str | None]] = []
        unsettled: list[QueuedEvent] = []
        for ev in pending:
            res = by_key.get(ev.idempotency_key)
            if res is not None and res.status in DELIVERED:
                delivered.append(ev.idempotency_key)
                if res.status == "accepted":
                    tally.accepted += 1
                else:
                    tally.duplicates += 1
            elif res is not None and res.status in DEAD:
                dead.append((ev.idempotency_key, res.status, res.error_code, res.error_message))
                log.warning(
                    "event %s %s by the server (%s: %s), dead-lettered",
                    ev.idempotency_key,
                    res.status,
                    res.error_code,
                    res.error_message,
                )
            else:
                unsettled.append(ev)
                continue
            tally.statuses[ev.idempotency_key] = res.status
        tally.dead_lettered += self.store.complete(delivered, dead)
        return unsettled
