"""Settings for failover: libpq liveness options, REDIS_SENTINELS parsing, the Sentinel URLs."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from codex import env as envreader
from codex.sentinel import SentinelPool, broker_url, url_credentials


def test_database_connections_get_keepalives_and_timeouts_and_the_url_wins(monkeypatch):
    monkeypatch.setenv("CODEX_DB_KEEPALIVES_IDLE_S", "7")
    options = envreader.database_config("postgresql://u@h/db?connect_timeout=2")["OPTIONS"]
    assert options["connect_timeout"] == "2"  # the URL's own value
    assert options["keepalives"] == 1
    assert options["keepalives_idle"] == 7
    assert options["keepalives_interval"] == 3
    assert options["keepalives_count"] == 3
    assert options["tcp_user_timeout"] == 10000


def test_redis_sentinels_parse_host_port_pairs_and_refuse_a_bad_entry(monkeypatch):
    monkeypatch.setenv("REDIS_SENTINELS", "s1:26379, [::1]:26380 ,10.0.0.3:26381")
    assert envreader.host_ports("REDIS_SENTINELS") == [
        ("s1", 26379),
        ("::1", 26380),
        ("10.0.0.3", 26381),
    ]
    monkeypatch.setenv("REDIS_SENTINELS", "s1:26379,s2")
    with pytest.raises(ImproperlyConfigured, match=r"REDIS_SENTINELS entry 2 of 2 \('s2'\)"):
        envreader.host_ports("REDIS_SENTINELS")
    monkeypatch.delenv("REDIS_SENTINELS")
    assert envreader.host_ports("REDIS_SENTINELS") == []


def test_the_broker_url_names_every_sentinel_with_the_redis_password_and_db():
    url = broker_url("redis://:p%40ss@ignored:6379/3", [("s1", 26379), ("::1", 26380)])
    assert url == "sentinel://:p%40ss@s1:26379/3;sentinel://:p%40ss@[::1]:26380/3"
    assert url_credentials("redis://:p%40ss@ignored:6379/3") == (None, "p@ss", 3)


def test_the_cache_pool_asks_the_sentinels_for_the_master_with_the_url_credentials():
    pool = SentinelPool.from_url(
        "redis://:secret@/2",
        sentinels=[("127.0.0.1", 1)],
        service_name="codex",
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
    )
    assert pool.service_name == "codex"
    assert pool.connection_kwargs["password"] == "secret"
    assert pool.connection_kwargs["db"] == 2
    sentinel = pool.sentinel_manager.sentinels[0]
    assert sentinel.connection_pool.connection_kwargs["socket_timeout"] == 0.5


def test_a_released_sentinel_broker_channel_raises_a_connection_error_celery_ignores():
    """kombu 5.7 raised AttributeError here (an "Unrecoverable error" that stopped the worker)."""
    import redis
    from kombu import Connection

    from codex import sentinel

    sentinel.use_broker_transport()
    conn = Connection("sentinel://127.0.0.1:1/0", transport_options={"master_name": "codex"})
    assert isinstance(conn.transport, sentinel.SentinelTransport)
    channel = sentinel.SentinelTransport.Channel.__new__(sentinel.SentinelTransport.Channel)
    channel.connection = conn.transport
    conn.transport.client = None  # what a released connection leaves behind
    with pytest.raises(redis.exceptions.ConnectionError, match="already released"):
        channel._connparams()
    assert redis.exceptions.ConnectionError in conn.connection_errors
