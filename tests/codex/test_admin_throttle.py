"""The admin login is throttled per client address and per username, with an atomic count."""

from __future__ import annotations

import logging
import threading
import uuid
from contextlib import contextmanager

import pytest
from django.contrib.auth.backends import ModelBackend
from django.db import connections
from django.test import Client, override_settings

from codex import env as envreader
from tests.factories import UserFactory
from tests.netutil import free_port

PASSWORD = "right-horse-battery"
COUNTING = "tests.codex.test_admin_throttle.CountingBackend"


class CountingBackend(ModelBackend):
    """ModelBackend that counts the attempts which reached a password check."""

    calls = 0
    lock = threading.Lock()

    def authenticate(self, request, username=None, password=None, **kwargs):
        with CountingBackend.lock:
            CountingBackend.calls += 1
        return super().authenticate(request, username=username, password=password, **kwargs)


@contextmanager
def counted_password_checks():
    """Count password checks (the counter is the backend's, reset here) while inside."""
    CountingBackend.calls = 0
    with override_settings(AUTHENTICATION_BACKENDS=[COUNTING]):
        yield CountingBackend


def _fresh_ip() -> str:
    """An address no other test of this run has used (the counters live 5 minutes in Redis)."""
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


def _login(client: Client, username: str, password: str, ip: str, **headers):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=ip,
        headers=headers,
    )


@pytest.mark.django_db
def test_five_failures_then_even_the_right_password_gets_429_from_that_address():
    boss = UserFactory(is_superuser=True, password=PASSWORD).username
    ip = _fresh_ip()
    client = Client()
    for _ in range(5):
        response = _login(client, boss, "wrong", ip)
        assert response.status_code == 200  # the form again, with an error
    refused = _login(client, boss, PASSWORD, ip)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_a_refused_attempt_is_the_admin_login_page_with_a_clear_message():
    name = UserFactory(is_superuser=True, password=PASSWORD).username
    ip = _fresh_ip()
    for _ in range(5):
        _login(Client(), name, "wrong", ip)
    refused = _login(Client(), name, PASSWORD, ip)
    assert refused.status_code == 429
    assert refused["Content-Type"].startswith("text/html")
    page = refused.content.decode()
    assert 'id="login-form"' in page  # the admin's own login page, styled, with its form
    assert "Too many failed logins" in page
    assert "try again in" in page.lower()
    assert f'value="{name}"' in page  # the username stays filled in
    assert 299 <= int(refused["Retry-After"]) <= 300


@pytest.mark.django_db
def test_a_refused_attempt_checks_no_password():
    name = UserFactory(is_superuser=True, password=PASSWORD).username
    ip = _fresh_ip()
    with counted_password_checks() as backend:
        for _ in range(5):
            assert _login(Client(), name, "wrong", ip).status_code == 200
        assert backend.calls == 5
        for _ in range(3):
            assert _login(Client(), name, PASSWORD, ip).status_code == 429
        assert backend.calls == 5


@pytest.mark.django_db
def test_another_operator_from_another_address_is_not_affected():
    a, b = (
        UserFactory(is_superuser=True, password=PASSWORD).username,
        UserFactory(is_superuser=True, password=PASSWORD).username,
    )
    ip = _fresh_ip()
    for _ in range(5):
        _login(Client(), a, "wrong", ip)
    assert _login(Client(), a, PASSWORD, ip).status_code == 429
    other = Client()
    assert _login(other, b, PASSWORD, _fresh_ip()).status_code == 302
    assert other.session["_auth_user_id"]


@pytest.mark.django_db
def test_a_blank_form_checks_no_password_and_counts_against_nothing():
    name = UserFactory(is_superuser=True, password=PASSWORD).username
    ip = _fresh_ip()
    with counted_password_checks() as backend:
        for username, password in [("", "x"), ("   ", "x"), (name, "")] * 3:
            assert _login(Client(), username, password, ip).status_code == 200
        assert backend.calls == 0
    assert _login(Client(), name, PASSWORD, ip).status_code == 302


@pytest.mark.django_db
def test_an_ipv6_client_is_counted_by_its_64():
    name = UserFactory(is_superuser=True, password=PASSWORD).username
    prefix = f"2001:db8:{uuid.uuid4().int % 65535:x}:{uuid.uuid4().int % 65535:x}"
    for host in range(1, 6):  # five hosts of one /64 (one machine's usual share)
        assert _login(Client(), f"x{host}-{name}", "x", f"{prefix}::{host}").status_code == 200
    refused = _login(Client(), name, PASSWORD, f"{prefix}::99")
    assert refused.status_code == 429
    assert _login(Client(), name, PASSWORD, "2001:db8:ffff:ffff::1").status_code == 302


@pytest.mark.django_db
def test_a_strangers_five_failures_do_not_lock_an_operator_out_from_their_own_address():
    a, b = (
        UserFactory(is_superuser=True, password=PASSWORD).username,
        UserFactory(is_superuser=True, password=PASSWORD).username,
    )
    for _ in range(5):  # someone else, elsewhere, guessing a's password
        assert _login(Client(), a, "wrong", _fresh_ip()).status_code == 200
    # a, from a's own address, still gets a password check and logs in.
    assert _login(Client(), a, PASSWORD, _fresh_ip()).status_code == 302
    # Five failures for a username from one address lock that username there only.
    spot = _fresh_ip()
    for _ in range(5):
        assert _login(Client(), b, "wrong", spot).status_code == 200
    refused = _login(Client(), b, PASSWORD, spot)
    assert refused.status_code == 429
    assert _login(Client(), b, PASSWORD, _fresh_ip()).status_code == 302


@pytest.mark.django_db
def test_a_distributed_guesser_is_stopped_by_the_per_username_limit():
    from codex.admin_throttle import USERNAME_LIMIT

    a, b = (
        UserFactory(is_superuser=True, password=PASSWORD).username,
        UserFactory(is_superuser=True, password=PASSWORD).username,
    )
    for _ in range(USERNAME_LIMIT):  # a new address each time
        assert _login(Client(), a, "wrong", _fresh_ip()).status_code == 200
    fresh = _fresh_ip()
    refused = _login(Client(), a, PASSWORD, fresh)
    assert refused.status_code == 429
    assert "for this username" in refused.content.decode()
    # The fresh address itself is not spent: another operator logs in from it.
    assert _login(Client(), b, PASSWORD, fresh).status_code == 302


@pytest.mark.django_db
def test_the_username_count_ignores_case_and_surrounding_spaces():
    name = UserFactory(is_superuser=True, password=PASSWORD).username
    from codex.admin_throttle import USERNAME_LIMIT

    variants = (name.upper(), f" {name} ", name.title(), name, f"{name.upper()} ")
    for n in range(USERNAME_LIMIT):  # a fresh address each time: only the username count adds up
        assert _login(Client(), variants[n % 5], "wrong", _fresh_ip()).status_code == 200
    refused = _login(Client(), name, PASSWORD, _fresh_ip())
    assert refused.status_code == 429
    assert "for this username" in refused.content.decode()


@pytest.mark.django_db
def test_a_success_neither_counts_nor_resets_another_users_failures():
    a, b = (
        UserFactory(is_superuser=True, password=PASSWORD).username,
        UserFactory(is_superuser=True, password=PASSWORD).username,
    )
    ip = _fresh_ip()
    for _ in range(4):
        assert _login(Client(), a, "wrong", ip).status_code == 200
    for _ in range(3):  # b logs in from the same address: not counted, resets nothing
        assert _login(Client(), b, PASSWORD, ip).status_code == 302
    assert _login(Client(), a, "wrong", ip).status_code == 200  # a's 5th: still checked
    assert _login(Client(), b, PASSWORD, ip).status_code == 429  # the address is now spent


@pytest.mark.django_db
def test_without_trusted_proxies_a_forged_x_forwarded_for_is_ignored(settings):
    settings.CODEX_TRUSTED_PROXIES = ()
    name = UserFactory(is_superuser=True, password=PASSWORD).username
    ip = _fresh_ip()
    for i in range(5):  # a new forged address and a new username each time
        forged = {"X-Forwarded-For": _fresh_ip()}
        assert _login(Client(), f"nobody-{i}-{name}", "x", ip, **forged).status_code == 200
    refused = _login(Client(), name, PASSWORD, ip, **{"X-Forwarded-For": _fresh_ip()})
    assert refused.status_code == 429
    assert "this address" in refused.content.decode()


@pytest.mark.django_db
def test_behind_a_trusted_proxy_operators_count_on_their_own_addresses(settings, monkeypatch):
    monkeypatch.setenv("CODEX_TRUSTED_PROXIES", "127.0.0.1")
    settings.CODEX_TRUSTED_PROXIES = envreader.networks("CODEX_TRUSTED_PROXIES")
    a, b = (
        UserFactory(is_superuser=True, password=PASSWORD).username,
        UserFactory(is_superuser=True, password=PASSWORD).username,
    )
    a_ip, b_ip = _fresh_ip(), _fresh_ip()
    for _ in range(5):  # every request arrives from the proxy's address
        _login(Client(), a, "wrong", "127.0.0.1", **{"X-Forwarded-For": a_ip})
    assert (
        _login(Client(), a, PASSWORD, "127.0.0.1", **{"X-Forwarded-For": a_ip}).status_code == 429
    )
    # A forged entry left of what the proxy appended does not move a to a fresh bucket.
    forged = {"X-Forwarded-For": f"{_fresh_ip()}, {a_ip}"}
    assert _login(Client(), f"x-{b}", "x", "127.0.0.1", **forged).status_code == 429
    ok = _login(Client(), b, PASSWORD, "127.0.0.1", **{"X-Forwarded-For": b_ip})
    assert ok.status_code == 302


@pytest.mark.django_db(transaction=True)
def test_concurrent_bad_attempts_reach_the_password_check_at_most_five_times():
    name = UserFactory(is_superuser=True, password=PASSWORD).username
    ip = _fresh_ip()
    threads_n = 24
    start = threading.Barrier(threads_n)
    statuses: list[int] = []

    def attempt() -> None:
        try:
            start.wait()
            response = _login(Client(), name, "wrong", ip)
            statuses.append(response.status_code)
        finally:
            connections.close_all()

    with counted_password_checks() as backend:
        threads = [threading.Thread(target=attempt) for _ in range(threads_n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        checked = backend.calls
    print(f"\n{threads_n} concurrent bad attempts: {checked} reached the password check")
    assert checked == 5
    assert sorted(statuses) == [200] * 5 + [429] * (threads_n - 5)


@pytest.mark.django_db
def test_redis_down_fails_open_with_a_warning_and_passwords_are_still_checked(settings, caplog):
    name = UserFactory(is_superuser=True, password=PASSWORD).username
    settings.CACHES = {
        "default": {
            "BACKEND": "codex.cache.ReusingRedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
            "OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
        }
    }
    ip = _fresh_ip()
    with caplog.at_level(logging.WARNING, logger="codex.admin_throttle"):
        for _ in range(6):
            assert _login(Client(), name, "wrong", ip).status_code == 200
        assert _login(Client(), name, PASSWORD, ip).status_code == 302
    assert any("throttle unavailable" in r.getMessage() for r in caplog.records)
