"""Redis through Sentinel: the cache, the rate limiter and /readyz follow the current master.

With REDIS_SENTINELS set (docs/ha.md, docs/configuration.md), REDIS_URL gives only the password
and database number; where the master is, the Sentinels say, asked again after every connection
error, so a failover needs no restart. The Celery broker uses kombu's own `sentinel://` transport
with the same settings (codex/settings.py).
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit

from redis.sentinel import Sentinel, SentinelConnectionPool


def url_credentials(url: str) -> tuple[str | None, str | None, int]:
    """(username, password, database number) of a redis:// URL; its host and port are unused."""
    parts = urlsplit(url)
    db = parts.path.lstrip("/") or "0"
    return (
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
        int(db) if db.isdigit() else 0,
    )


def broker_url(redis_url: str, sentinels: list[tuple[str, int]]) -> str:
    """kombu's `sentinel://h1:p1/db;sentinel://h2:p2/db`, carrying REDIS_URL's credentials."""
    username, password, db = url_credentials(redis_url)
    auth = ""
    if password:
        auth = f"{quote(username or '', safe='')}:{quote(password, safe='')}@"
    return ";".join(
        f"sentinel://{auth}{f'[{host}]' if ':' in host else host}:{port}/{db}"
        for host, port in sentinels
    )


class SentinelPool(SentinelConnectionPool):
    """CACHES pool_class: Django builds pools with `from_url(LOCATION, **OPTIONS)`."""

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        sentinels: list[tuple[str, int]],
        service_name: str,
        sentinel_kwargs: dict | None = None,
        **kwargs,
    ):
        username, password, db = url_credentials(url)
        timeouts = {k: v for k, v in kwargs.items() if k.startswith("socket_")}
        manager = Sentinel(sentinels, sentinel_kwargs={**timeouts, **(sentinel_kwargs or {})})
        return cls(
            service_name,
            manager,
            username=username,
            password=password,
            db=db,
            **kwargs,
        )


def master_client(
    url: str,
    sentinels: list[tuple[str, int]],
    service_name: str,
    *,
    timeout: float,
    sentinel_password: str | None = None,
):
    """A redis-py client on the current master (for /readyz), with short timeouts."""
    import redis

    extra = {"password": sentinel_password} if sentinel_password else {}
    pool = SentinelPool.from_url(
        url,
        sentinels=sentinels,
        service_name=service_name,
        sentinel_kwargs=extra,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )
    return redis.Redis(connection_pool=pool)


def _broker_transport():
    """kombu's Sentinel transport, with a channel that survives a broker failover.

    kombu 5.7's SentinelChannel drops its pool when the connection breaks; closing the channel
    afterwards (Celery does on a lost broker) restores unacked messages through a new pool built
    from the already released connection, and the AttributeError that raises ("'NoneType' object
    has no attribute 'hostname'") is an "Unrecoverable error" that stops the worker: enrichment
    stalled after a Redis master was killed (scripts/ha_drill.py). Raised as a connection error
    instead, Celery ignores it and reconnects through the Sentinels; the unacked messages stay
    in Redis for the visibility timeout, and every drain is re-woken by the sweeper anyway.
    """
    import redis
    from kombu.transport import redis as kombu_redis

    class FailoverSafeChannel(kombu_redis.SentinelChannel):
        def _connparams(self, asynchronous=False):
            if self.connection.client is None:
                raise redis.exceptions.ConnectionError("broker connection already released")
            return super()._connparams(asynchronous=asynchronous)

    class Transport(kombu_redis.SentinelTransport):
        Channel = FailoverSafeChannel

    return Transport


SentinelTransport = None  # set by use_broker_transport()


def use_broker_transport() -> None:
    """Make `sentinel://` broker URLs use the failover-safe transport (settings call this).

    The alias itself is replaced, not a new scheme added: kombu finds the other Sentinels by
    their `sentinel://` scheme, and a failover to the next URL re-resolves the scheme's alias.
    """
    global SentinelTransport
    from kombu import transport

    if SentinelTransport is None:
        SentinelTransport = _broker_transport()
    transport.TRANSPORT_ALIASES["sentinel"] = "codex.sentinel:SentinelTransport"
