"""A local HTTP stand-in for Stripe's GET /v1/events (list, `created` range, pagination)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest


class StripeEvents:
    """The account's events, and every request the library made."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.requests: list[dict] = []
        self.lock = threading.Lock()


def _handler(state: StripeEvents) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def _reply(self, status: int, doc: dict) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Request-Id", "req_standin")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            types = parse_qs(url.query).get("types[]") or [
                v for k, vs in parse_qs(url.query).items() if k.startswith("types[") for v in vs
            ]
            with state.lock:
                state.requests.append(
                    {
                        "path": url.path,
                        "query": query,
                        "authorization": self.headers.get("Authorization"),
                    }
                )
            if url.path != "/v1/events":
                return self._reply(404, {"error": {"type": "invalid_request_error"}})
            gte = int(query.get("created[gte]", 0))
            lt = int(query.get("created[lt]", 2**40))
            limit = int(query.get("limit", 10))
            # Stripe lists newest first.
            matching = sorted(
                (
                    e
                    for e in state.events
                    if gte <= e["created"] < lt and (not types or e["type"] in types)
                ),
                key=lambda e: (-e["created"], e["id"]),
            )
            after = query.get("starting_after")
            if after:
                ids = [e["id"] for e in matching]
                matching = matching[ids.index(after) + 1 :]
            page = matching[:limit]
            return self._reply(
                200,
                {
                    "object": "list",
                    "url": "/v1/events",
                    "has_more": len(matching) > limit,
                    "data": page,
                },
            )

    return Handler


@pytest.fixture
def stripe_events(monkeypatch) -> Iterator[StripeEvents]:
    """The stand-in, with CODEX_STRIPE_API_BASE pointing the stripe library at it."""
    state = StripeEvents()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    monkeypatch.setenv("CODEX_STRIPE_API_BASE", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
