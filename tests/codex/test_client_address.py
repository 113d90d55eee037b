"""The client address: REMOTE_ADDR, or behind a trusted proxy the right-most untrusted hop."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory, override_settings

from codex import env as envreader
from codex.http import client_address

ROOT = Path(__file__).resolve().parents[2]


def _address(trusted: str, remote: str, forwarded: str | None = None) -> str:
    proxies = tuple(ipaddress.ip_network(n) for n in trusted.split()) if trusted else ()
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    request = RequestFactory().get("/", **meta)
    with override_settings(CODEX_TRUSTED_PROXIES=proxies):
        return client_address(request)


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "expected"),
    [
        # Nobody trusted (the default): the peer, whatever the header says.
        ("", "203.0.113.9", "198.51.100.1", "203.0.113.9"),
        ("", "127.0.0.1", "198.51.100.1", "127.0.0.1"),
        # The peer is no trusted proxy: its header is ignored.
        ("127.0.0.1/32", "127.0.0.2", "198.51.100.1", "127.0.0.2"),
        # From the trusted proxy: the entry it appended.
        ("127.0.0.1/32", "127.0.0.1", "198.51.100.1", "198.51.100.1"),
        # A forged entry left of it is the client's own writing: ignored.
        ("127.0.0.1/32", "127.0.0.1", "6.6.6.6, 198.51.100.1", "198.51.100.1"),
        ("127.0.0.1/32", "127.0.0.1", "6.6.6.6,198.51.100.1", "198.51.100.1"),
        # Two proxies (a load balancer in 10/8, then the local one): walk right past both.
        ("127.0.0.1 10.0.0.0/8", "127.0.0.1", "6.6.6.6, 198.51.100.1, 10.1.2.3", "198.51.100.1"),
        # Every hop trusted: the farthest one.
        ("127.0.0.1 10.0.0.0/8", "127.0.0.1", "10.0.0.2, 10.0.0.3", "10.0.0.2"),
        # A trusted peer without the header, with an empty one, or with garbage: the peer.
        ("127.0.0.1/32", "127.0.0.1", None, "127.0.0.1"),
        ("127.0.0.1/32", "127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1/32", "127.0.0.1", "not-an-address", "127.0.0.1"),
        # A broken chain stops at the last address a trusted proxy vouched for.
        ("127.0.0.1 10.0.0.0/8", "127.0.0.1", "6.6.6.6, junk, 10.0.0.7", "10.0.0.7"),
        # IPv6, ports, brackets, IPv4-mapped peers; answers are in canonical form.
        ("::1/128", "::1", "2001:DB8::0:1", "2001:db8::1"),
        ("127.0.0.1/32", "127.0.0.1", "198.51.100.1:5123", "198.51.100.1"),
        ("127.0.0.1/32", "127.0.0.1", "[2001:db8::1]:443", "2001:db8::1"),
        ("127.0.0.1/32", "::ffff:127.0.0.1", "198.51.100.1", "198.51.100.1"),
    ],
)
def test_client_address(trusted, remote, forwarded, expected):
    assert _address(trusted, remote, forwarded) == expected


def test_trusted_proxies_parse_addresses_and_networks(monkeypatch):
    monkeypatch.setenv("CODEX_TRUSTED_PROXIES", " 127.0.0.1, 10.0.0.0/8 ,::1,, 2001:db8::/32")
    assert [str(n) for n in envreader.networks("CODEX_TRUSTED_PROXIES")] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
        "::1/128",
        "2001:db8::/32",
    ]
    monkeypatch.setenv("CODEX_TRUSTED_PROXIES", "")
    assert envreader.networks("CODEX_TRUSTED_PROXIES") == ()


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("127.0.0.1, 10.0.0.300", "entry 2 of 2 ('10.0.0.300')"),
        ("proxy.internal", "entry 1 of 1 ('proxy.internal')"),
        ("10.0.0.1/8", "has host bits set"),
        ("10.0.0.0/33", "entry 1 of 1"),
    ],
)
def test_a_bad_trusted_proxy_entry_is_refused_naming_it(monkeypatch, value, says):
    monkeypatch.setenv("CODEX_TRUSTED_PROXIES", value)
    with pytest.raises(ImproperlyConfigured, match="CODEX_TRUSTED_PROXIES") as caught:
        envreader.networks("CODEX_TRUSTED_PROXIES")
    assert says in str(caught.value)


def test_the_service_refuses_to_start_with_a_bad_trusted_proxy():
    env = {**os.environ, "CODEX_TRUSTED_PROXIES": "127.0.0.1,10.0.0.0/8,proxy"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "CODEX_TRUSTED_PROXIES entry 3 of 3 ('proxy')" in result.stderr
