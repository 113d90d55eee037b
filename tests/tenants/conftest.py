"""Fixtures for the tenants tests: an owner connection, the RLS catalogue, a Stripe stand-in."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import psycopg
import pytest
from django.db import connection

from tests.dbutil import owner_connect
from tests.helpers import assert_restricted_role

# test_pooling.py needs PgBouncer in front (CODEX_DB_POOL_MODE=transaction): `make test` runs it
# in its pooled pass (scripts/pgbouncer_run.py), never in the direct one.
if os.environ.get("CODEX_DB_POOL_MODE") != "transaction":
    collect_ignore = ["test_pooling.py"]


@pytest.fixture
def restricted_cursor(db):
    """A cursor on the test's connection, checked to be the restricted application role."""
    with connection.cursor() as cursor:
        assert_restricted_role(cursor)
        yield cursor


@pytest.fixture
def owner_connection(transactional_db) -> Iterator[psycopg.Connection]:
    """A separate connection to the test database as the owner (no SET ROLE): sees real rows."""
    conn = owner_connect(autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


# --- Stripe stand-in -----------------------------------------------------------------------


class StripeStandIn:
    """Just enough of the Stripe API for provisioning: products by id, create with prices."""

    def __init__(self) -> None:
        self.products: dict[str, dict] = {}
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    def creates(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST"]


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
            with state.lock:
                state.requests.append(
                    {
                        "method": self.command,
                        "path": urlsplit(self.path).path,
                        "authorization": self.headers.get("Authorization"),
                        "idempotency_key": self.headers.get("Idempotency-Key"),
                        "form": form or {},
                    }
                )

        def do_GET(self):
            self._record()
            path = urlsplit(self.path).path
            if path.startswith("/v1/products/"):
                pid = path.removeprefix("/v1/products/")
                if pid in state.products:
                    return self._reply(200, state.products[pid])
                return self._reply(
                    404,
                    {
                        "error": {
                            "type": "invalid_request_error",
                            "code": "resource_missing",
                            "param": "id",
                            "message": f"No such product: '{pid}'",
                        }
                    },
                )
            return self._reply(404, {"error": {"type": "invalid_request_error"}})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            self._record(form)
            if urlsplit(self.path).path != "/v1/products":
                return self._reply(404, {"error": {"type": "invalid_request_error"}})
            pid = form["id"]
            if pid in state.products:
                return self._reply(
                    400,
                    {
                        "error": {
                            "type": "invalid_request_error",
                            "code": "resource_already_exists",
                            "message": "Product already exists.",
                        }
                    },
                )
            product = {
                "id": pid,
                "object": "product",
                "livemode": False,
                "active": True,
                "name": form["name"],
                "metadata": {
                    k[len("metadata[") : -1]: v
                    for k, v in form.items()
                    if k.startswith("metadata[")
                },
                "default_price": f"price_{len(state.products) + 1}",
                "price": {
                    "currency": form.get("default_price_data[currency]"),
                    "unit_amount": int(form.get("default_price_data[unit_amount]", 0)),
                    "interval": form.get("default_price_data[recurring][interval]"),
                },
            }
            with state.lock:
                state.products[pid] = product
            return self._reply(200, product)

    return Handler


@pytest.fixture
def stripe_standin(monkeypatch) -> Iterator[StripeStandIn]:
    """A local HTTP server standing in for api.stripe.com; CODEX_STRIPE_API_BASE points at it."""
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


@pytest.fixture
def superuser_client(db, client, django_user_model):
    """A Django test client logged in as a superuser operator."""
    user = django_user_model.objects.create_superuser("operator", "op@example.com", "pw")
    client.force_login(user)
    client.user = user
    return client
