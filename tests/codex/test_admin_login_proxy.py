"""The admin login behind a real HAProxy in front of gunicorn: one operator's failures lock out
only that operator (address and username), a forged X-Forwarded-For is ignored, and concurrent
guesses reach the password check at most the limit's number of times.

HAProxy is Debian's `haproxy` (scripts/ensure_haproxy.sh installs it as root); without it the
tests skip, loudly. Clients bind their sockets to other loopback addresses (127.0.0.2, ...), so
HAProxy's `option forwardfor` writes a different X-Forwarded-For for each operator.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.dbutil import database_url
from tests.factories import UserFactory
from tests.netutil import free_port
from tests.procs import gunicorn_server

pytestmark = pytest.mark.slow

PASSWORD = "right-horse-battery"
HAPROXY_CONFIG = """\
global
    maxconn 256

defaults
    mode http
    option forwardfor
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend admin
    bind 127.0.0.1:{port}
    default_backend web

backend web
    server gunicorn 127.0.0.1:{backend}
"""


def haproxy_binary() -> str:
    for candidate in (shutil.which("haproxy"), "/usr/sbin/haproxy"):
        if candidate and Path(candidate).exists():
            return candidate
    message = (
        "HAPROXY NOT RUN: the admin login was not tested behind a reverse proxy; Debian's "
        "`haproxy` is missing (bash scripts/ensure_haproxy.sh as root installs it)"
    )
    warnings.warn(message, stacklevel=2)
    pytest.skip(message)
    raise AssertionError("unreachable")


@contextmanager
def haproxy_in_front(backend_port: int, workdir: Path) -> Iterator[str]:
    """Yield the URL of an HAProxy (HTTP mode, option forwardfor) in front of `backend_port`."""
    binary = haproxy_binary()
    port = free_port()
    config = workdir / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(port=port, backend=backend_port))
    checked = subprocess.run(
        [binary, "-c", "-f", str(config)], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    proc = subprocess.Popen(
        [binary, "-db", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"haproxy exited: {proc.stderr.read().decode()[-2000:]}")
            assert time.monotonic() < deadline, "haproxy did not listen within 10 s"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)  # polling for haproxy to bind
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def stack(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[dict[str, str]]:
    """gunicorn trusting 127.0.0.1 (where HAProxy connects from), HAProxy in front of it."""
    with django_db_blocker.unblock():
        url = database_url()
    env = {"DATABASE_URL": url, "CODEX_TRUSTED_PROXIES": "127.0.0.1"}
    # One worker (4 threads): under pytest every process has its own cache key prefix
    # (settings), so two workers would keep two sets of counters; deployed, they share one.
    with gunicorn_server(env, workers=1) as (direct, _proc):
        backend_port = int(direct.rsplit(":", 1)[1])
        with haproxy_in_front(backend_port, tmp_path_factory.mktemp("haproxy")) as proxied:
            yield {"proxied": proxied, "direct": direct}


class Operator:
    """A browser-like client whose connections leave from `source` (a loopback address)."""

    def __init__(self, base: str, source: str):
        self.source = source
        self.http = httpx.Client(
            base_url=base,
            transport=httpx.HTTPTransport(local_address=source),
            timeout=30,
            follow_redirects=False,
        )

    def open_form(self) -> str:
        """GET the login page (the CSRF cookie); return the token to post."""
        assert self.http.get("/admin/login/").status_code == 200
        return self.http.cookies["csrftoken"]

    def submit(self, token: str, username: str, password: str, **headers) -> httpx.Response:
        return self.http.post(
            "/admin/login/?next=/admin/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": token},
            headers=headers,
        )

    def login(self, username: str, password: str, **headers) -> httpx.Response:
        return self.submit(self.open_form(), username, password, **headers)


def test_operator_a_locked_out_behind_haproxy_does_not_lock_out_operator_b(stack, transactional_db):
    a, b = (
        UserFactory(is_superuser=True, password=PASSWORD).username,
        UserFactory(is_superuser=True, password=PASSWORD).username,
    )
    op_a = Operator(stack["proxied"], "127.0.0.2")
    op_b = Operator(stack["proxied"], "127.0.0.3")

    for _ in range(5):
        assert op_a.login(a, "wrong").status_code == 200  # the form again, with an error
    locked = op_a.login(a, PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed logins from this address" in locked.text
    assert 'id="login-form"' in locked.text
    assert 1 <= int(locked.headers["Retry-After"]) <= 300

    # Operator B, same proxy, another address: logs in and uses the admin.
    signed_in = op_b.login(b, PASSWORD)
    assert signed_in.status_code == 302, signed_in.text[:500]
    assert op_b.http.get("/admin/").status_code == 200

    # A's own failures elsewhere do not lock A's username out of B's address (a stranger's bad
    # passwords cannot lock an operator out); A, moving to B's desk, logs in.
    by_name = Operator(stack["proxied"], "127.0.0.3").login(a, PASSWORD)
    assert by_name.status_code == 302, by_name.text[:500]

    # A forged X-Forwarded-For sent through the proxy buys no fresh address: HAProxy appends
    # the real one, and that is the one counted.
    op_c = Operator(stack["proxied"], "127.0.0.4")
    for i in range(5):
        forged = {"X-Forwarded-For": f"198.51.100.{i + 1}"}
        assert op_c.login(f"nobody-c{i}-{a}", "x", **forged).status_code == 200
    refused = op_c.login(b, PASSWORD, **{"X-Forwarded-For": "198.51.100.99"})
    assert refused.status_code == 429
    assert "from this address" in refused.text

    # Straight to gunicorn, not through the trusted proxy: X-Forwarded-For naming B's address is
    # ignored; the failures count against the sender's own address, never B's.
    op_d = Operator(stack["direct"], "127.0.0.5")
    for i in range(5):
        forged = {"X-Forwarded-For": "127.0.0.3"}
        assert op_d.login(f"nobody-d{i}-{a}", "x", **forged).status_code == 200
    assert op_d.login(b, PASSWORD, **{"X-Forwarded-For": "127.0.0.3"}).status_code == 429
    again = Operator(stack["proxied"], "127.0.0.3").login(b, PASSWORD)
    assert again.status_code == 302


def test_concurrent_bad_attempts_through_haproxy_reach_the_password_check_five_times(
    stack, transactional_db
):
    victim = UserFactory(is_superuser=True, password=PASSWORD).username
    attempts = 16
    clients = [Operator(stack["proxied"], "127.0.0.6") for _ in range(attempts)]
    tokens = [c.open_form() for c in clients]
    start = threading.Barrier(attempts)
    statuses: list[int] = []

    def attempt(client: Operator, token: str) -> None:
        start.wait()
        statuses.append(client.submit(token, victim, "wrong").status_code)

    threads = [
        threading.Thread(target=attempt, args=pair) for pair in zip(clients, tokens, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    counts = Counter(statuses)
    print(
        f"\n{attempts} concurrent bad attempts through haproxy: {counts[200]} reached the "
        f"password check, {counts[429]} refused"
    )
    # 200 is the form again after a checked password; 429 refused before any check.
    assert counts == Counter({200: 5, 429: attempts - 5})
