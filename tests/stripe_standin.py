"""A local HTTP stand-in for the parts of the Stripe API we call: products and the events list."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl, urlsplit

_NOT_FOUND = {"error": {"type": "invalid_request_error"}}


class StripeStandIn:
    """The account's products and events, and every request the library made."""

    def __init__(self) -> None:
        self.products: dict[str, dict] = {}
        self.events: list[dict] = []
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    def creates(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST"]

    def product_get(self, pid: str) -> tuple[int, dict]:
        if pid in self.products:
            return 200, self.products[pid]
        error = {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "param": "id",
            "message": f"No such product: '{pid}'",
        }
        return 404, {"error": error}

    def product_create(self, form: dict) -> tuple[int, dict]:
        pid = form["id"]
        if pid in self.products:
            error = {
                "type": "invalid_request_error",
                "code": "resource_already_exists",
                "message": "Product already exists.",
            }
            return 400, {"error": error}
        product = {
            "id": pid,
            "object": "product",
            "livemode": False,
            "active": True,
            "name": form["name"],
            "metadata": {
                k[len("metadata[") : -1]: v for k, v in form.items() if k.startswith("metadata[")
            },
            "default_price": f"price_{len(self.products) + 1}",
            "price": {
                "currency": form.get("default_price_data[currency]"),
                "unit_amount": int(form.get("default_price_data[unit_amount]", 0)),
                "interval": form.get("default_price_data[recurring][interval]"),
            },
        }
        with self.lock:
            self.products[pid] = product
        return 200, product

    def events_list(self, raw_query: str) -> tuple[int, dict]:
        """GET /v1/events: a `created` range, `types[]`, newest first, `starting_after` pages."""
        params = parse_qs(raw_query)
        query = {k: v[-1] for k, v in params.items()}
        types = [v for k, vs in params.items() if k.startswith("types[") for v in vs]
        gte = int(query.get("created[gte]", 0))
        lt = int(query.get("created[lt]", 2**40))
        limit = int(query.get("limit", 10))
        matching = sorted(
            (
                e
                for e in self.events
                if gte <= e["created"] < lt and (not types or e["type"] in types)
            ),
            key=lambda e: (-e["created"], e["id"]),
        )
        after = query.get("starting_after")
        if after:
            ids = [e["id"] for e in matching]
            matching = matching[ids.index(after) + 1 :]
        page = {
            "object": "list",
            "url": "/v1/events",
            "has_more": len(matching) > limit,
            "data": matching[:limit],
        }
        return 200, page


def _handler(state: StripeStandIn) -> type[BaseHTTPRequestHandler]:
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

        def _record(self, form: dict | None = None) -> None:
            url = urlsplit(self.path)
            with state.lock:
                state.requests.append(
                    {
                        "method": self.command,
                        "path": url.path,
                        "query": {k: v[-1] for k, v in parse_qs(url.query).items()},
                        "authorization": self.headers.get("Authorization"),
                        "idempotency_key": self.headers.get("Idempotency-Key"),
                        "form": form or {},
                    }
                )

        def do_GET(self):
            self._record()
            url = urlsplit(self.path)
            if url.path == "/v1/events":
                return self._reply(*state.events_list(url.query))
            if url.path.startswith("/v1/products/"):
                return self._reply(*state.product_get(url.path.removeprefix("/v1/products/")))
            return self._reply(404, _NOT_FOUND)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            self._record(form)
            if urlsplit(self.path).path != "/v1/products":
                return self._reply(404, _NOT_FOUND)
            return self._reply(*state.product_create(form))

    return Handler


@contextmanager
def stripe_served(monkeypatch) -> Iterator[StripeStandIn]:
    """Serve a stand-in on a free port; CODEX_STRIPE_API_BASE points the library at it."""
    state = StripeStandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    monkeypatch.setenv("CODEX_STRIPE_API_BASE", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
