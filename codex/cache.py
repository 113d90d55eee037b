"""Django's Redis cache, keeping one redis-py client per pool instead of one per call.

Django builds a new `redis.Redis` for every cache operation; redis-py 8 rebuilds its response
callback table in each constructor, which cost ~0.2 ms per operation on the ingest hot path
(rate limit + flags = several per request). A client over a pool is thread-safe, so reuse it.
"""

from __future__ import annotations

import os
import threading

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


class _ReusingClient(RedisCacheClient):
    def __init__(self, servers, **options):
        super().__init__(servers, **options)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class ReusingRedisCache(RedisCache):
    """settings.CACHES backend: Django's RedisCache with reused clients."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusingClient


def redis_client(cache: RedisCache, key: str):
    """The redis-py client behind a Django Redis cache, for a made key (for pipelines)."""
    return cache._cache.get_client(key, write=True)


_held = threading.local()


def _held_command(pool, args: tuple):
    conn = getattr(_held, "conn", None)
    if conn is None or _held.pool is not pool or _held.pid != os.getpid():
        conn = pool.get_connection()
        _held.conn, _held.pool, _held.pid = conn, pool, os.getpid()
    try:
        conn.send_command(*args)
        return conn.read_response()
    except (RedisConnectionError, RedisTimeoutError, OSError):
        _held.conn = None  # its state is unknown: never reuse it
        conn.disconnect()
        pool.release(conn)
        raise


def thread_command(cache: RedisCache, key: str, *args):
    """One command on a connection this thread keeps across calls: the reply (hot path).

    A pooled call takes a connection and checks it for stale input (a poll syscall), wraps the
    command in retries and puts it back: about half of the replay claim's CPU per request. A
    thread keeps its own instead (gthread threads live as long as the worker). A stale
    connection (Redis restarted, a Sentinel failover) is dropped and the command tried once
    more on a new one; a timeout is not retried (it would double the wait); errors are raised.
    """
    pool = redis_client(cache, key).connection_pool
    try:
        return _held_command(pool, args)
    except RedisConnectionError:
        return _held_command(pool, args)
