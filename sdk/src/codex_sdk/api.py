"""Signed calls to the two server endpoints, mapping answers onto SDK types and errors."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from . import signing
from ._version import __version__
from .errors import ServerError
from .lookup import EventFate
from .remote_config import RemoteConfig
from .retry import parse_http_date, parse_max_age, parse_retry_after
from .transport import Response, Transport

log = logging.getLogger(__name__)

USER_AGENT = f"codex-sdk/{__version__}"
# Server tolerance is 5 minutes; only correct our clock when we are clearly outside it.
_SKEW_CORRECTION_THRESHOLD_SEC = 60.0


@dataclass(frozen=True)
class ConfigAnswer:
    config: RemoteConfig | None  # None on 304 Not Modified
    etag: str | None
    max_age: float | None


@dataclass(frozen=True)
class EventResult:
    idempotency_key: str
    status: str
    error_code: str | None
    error_message: str | None


class Api:
    def __init__(self, base_url: str, key_id: str, secret: str) -> None:
        if not isinstance(key_id, str) or not key_id:
            raise ValueError("key_id must be a non-empty string")
        self.key_id = key_id
        self._key = signing.decode_secret(secret)  # the secret itself is not kept
        self.transport = Transport(base_url, user_agent=USER_AGENT)
        # Seconds to add to the local clock; learnt from the server's Date header on a
        # timestamp_out_of_tolerance answer (devices often boot with a wrong clock).
        self.clock_offset = 0.0

    def _send(
        self, method: str, path: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> Response:
        for attempt in range(2):
            offset = self.clock_offset
            ts = int(time.time() + offset)
            # Signed afresh for every attempt: a new webhook-id (the server accepts each id once)
            # over this request's method, path and body. `path` is the API path, without the
            # base URL's prefix: what the server routes.
            signed = signing.sign_headers(
                self.key_id, self._key, body, method=method, path=path, timestamp=ts
            )
            resp = self.transport.request(
                method, path, body, {**headers, **signed}, timeout=timeout
            )
            if 200 <= resp.status < 300 or resp.status == 304:
                return resp
            error = self._error(resp)
            # One immediate re-sign if the answer taught us the server's clock.
            if attempt == 0 and self.clock_offset != offset:
                continue
            raise error
        raise AssertionError("unreachable")

    def _error(self, resp: Response) -> ServerError:
        code, message, rid = f"http_{resp.status}", resp.body[:200].decode("utf-8", "replace"), None
        try:
            err = json.loads(resp.body)["error"]
            code, message, rid = str(err["code"]), str(err.get("message", "")), err.get("rid")
        except (ValueError, KeyError, TypeError):
            pass  # a proxy's HTML error page: keep the generic code
        if code == "timestamp_out_of_tolerance":
            self._learn_clock(resp)
        return ServerError(
            resp.status,
            code,
            message,
            retry_after=parse_retry_after(resp.headers.get("retry-after")),
            rid=rid,
        )

    def _learn_clock(self, resp: Response) -> None:
        server_now = parse_http_date(resp.headers.get("date"))
        if server_now is None:
            return
        offset = server_now - time.time()
        # Compared with the current correction, so a clock later fixed by NTP is re-learnt.
        if abs(offset - self.clock_offset) >= _SKEW_CORRECTION_THRESHOLD_SEC:
            log.warning("device clock is off by %.0fs from the server; compensating", offset)
            self.clock_offset = offset

    def get_config(self, etag: str | None, *, timeout: float) -> ConfigAnswer:
        headers = {"If-None-Match": etag} if etag else {}
        resp = self._send("GET", "/config", b"", headers, timeout)
        max_age = parse_max_age(resp.headers.get("cache-control"))
        if resp.status == 304:
            return ConfigAnswer(None, resp.headers.get("etag", etag), max_age)
        try:
            config = RemoteConfig.from_wire(json.loads(resp.body))
        except ValueError as exc:
            raise ServerError(resp.status, "bad_config", str(exc)) from exc
        return ConfigAnswer(config, resp.headers.get("etag"), max_age)

    def post_events(self, body: bytes, *, timeout: float) -> list[EventResult]:
        headers = {"Content-Type": "application/json"}
        resp = self._send("POST", "/v1/events", body, headers, timeout)
        try:
            data = json.loads(resp.body)
            raw_results: list[dict[str, Any]] = data["results"]
            results = []
            for item in raw_results:
                err = item.get("error") or {}
                results.append(
                    EventResult(
                        idempotency_key=str(item["idempotency_key"]),
                        status=str(item["status"]),
                        error_code=err.get("code"),
                        error_message=err.get("message"),
                    )
                )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # Events may or may not have been stored; resending is safe (idempotency keys).
            raise ServerError(502, "bad_response", f"unparseable events answer: {exc}") from exc
        return results

    def lookup_event(self, idempotency_key: str, *, timeout: float) -> EventFate | None:
        """The server's record of this tenant's event, or None when it has none."""
        path = "/v1/events/" + quote(idempotency_key, safe="")
        try:
            resp = self._send("GET", path, b"", {}, timeout)
        except ServerError as exc:
            if exc.status == 404 and exc.code == "not_found":
                return None
            raise
        try:
            return EventFate.from_wire(json.loads(resp.body))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ServerError(502, "bad_response", f"unparseable lookup answer: {exc}") from exc
