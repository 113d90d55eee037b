"""Read and validate the service's settings from the environment, in one place.

`read()` is what settings.py needs at start; `text`, `integer`, `number`, `enabled`, `path`,
`networks` and `host_ports` are the one way any other module (gunicorn.conf.py, the Celery hooks,
/metrics, the embedded servers, billing) reads a variable: at call time, with a default for unset
or empty, and an ImproperlyConfigured naming the variable when a number (or an address) is not one.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

ENVIRONMENTS = ("development", "test", "staging", "production")
DEPLOYED = ("staging", "production")
# Values that must come from the environment in deployed environments: no invented defaults there.
REQUIRED_WHEN_DEPLOYED = (
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "ALLOWED_HOSTS",
    "CODEX_SECRETS_KEY",
    "METRICS_TOKEN",
)


@dataclass(frozen=True)
class Env:
    """The environment as the settings module needs it."""

    name: str
    secret_key: str | None
    database_url: str | None
    redis_url: str | None
    allowed_hosts: list[str]
    secrets_key: str | None
    public_base_url: str

    @property
    def deployed(self) -> bool:
        return self.name in DEPLOYED


def _default_env_name(environ: os._Environ[str] | dict[str, str]) -> str:
    # pytest (>= 8.2) exports PYTEST_VERSION, so a bare `pytest` runs with test settings.
    return "test" if environ.get("PYTEST_VERSION") else "development"


def read(environ: os._Environ[str] | dict[str, str] | None = None) -> Env:
    """Return the validated environment; raise ImproperlyConfigured naming every missing value."""
    environ = os.environ if environ is None else environ
    name = environ.get("CODEX_ENV") or _default_env_name(environ)
    if name not in ENVIRONMENTS:
        raise ImproperlyConfigured(
            f"CODEX_ENV must be one of {', '.join(ENVIRONMENTS)}, not {name!r}"
        )
    if name in DEPLOYED:
        missing = [key for key in REQUIRED_WHEN_DEPLOYED if not environ.get(key, "").strip()]
        if missing:
            raise ImproperlyConfigured(
                f"CODEX_ENV={name} refuses to start without: {', '.join(missing)}"
            )
    if environ.get("CODEX_SECRETS_KEY", "").strip():
        fernet_keys(environ["CODEX_SECRETS_KEY"])  # a malformed key refuses to start
    hosts = [h.strip() for h in environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
    return Env(
        name=name,
        secret_key=environ.get("SECRET_KEY") or None,
        database_url=environ.get("DATABASE_URL") or None,
        redis_url=environ.get("REDIS_URL") or None,
        allowed_hosts=hosts or ["127.0.0.1", "localhost", "testserver", "[::1]"],
        secrets_key=environ.get("CODEX_SECRETS_KEY") or None,
        public_base_url=(environ.get("CODEX_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/"),
    )


def text(name: str, default: str | None = None) -> str | None:
    """The variable's value now, or `default` when it is unset or empty."""
    return os.environ.get(name) or default


def _converted(name: str, default, convert, what: str):
    raw = text(name)
    try:
        return default if raw is None else convert(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be {what}, not {raw!r}") from exc


def integer(name: str, default: int) -> int:
    """The variable as an integer, or `default`; ImproperlyConfigured when it is not one."""
    return _converted(name, default, int, "an integer")


def number(name: str, default: float) -> float:
    """The variable as a float, or `default`; ImproperlyConfigured when it is not a number."""
    return _converted(name, default, float, "a number")


def enabled(name: str, default: bool) -> bool:
    """A 0/1 switch: "1" is on, anything else set is off, unset or empty is `default`."""
    raw = text(name)
    return default if raw is None else raw == "1"


def path(name: str, default: Path) -> Path:
    """The variable as a filesystem path, or `default`."""
    raw = text(name)
    return Path(raw) if raw else default


def networks(name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The variable as comma-separated IP addresses and CIDR networks; unset or empty is none.

    ImproperlyConfigured names the variable and the bad entry (its position and value) when an
    entry is not an address or network; a network with host bits set (10.0.0.1/8) is refused
    rather than guessed at.
    """
    entries = [e.strip() for e in (text(name) or "").split(",") if e.strip()]
    parsed = []
    for position, entry in enumerate(entries, start=1):
        try:
            parsed.append(ipaddress.ip_network(entry))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"{name} entry {position} of {len(entries)} ({entry!r}) is not an IP address or "
                f"network such as 10.0.0.5, 10.0.0.0/8 or ::1: {exc}"
            ) from exc
    return tuple(parsed)


def environ_copy() -> dict[str, str]:
    """A copy of the whole environment, for a child process started with additions."""
    return dict(os.environ)


def fernet_keys(material: str | None) -> list:
    """CODEX_SECRETS_KEY as Fernet keys (first encrypts); ImproperlyConfigured naming the entry.

    The message gives the entry's position, never its value.
    """
    from cryptography.fernet import Fernet

    entries = [k.strip() for k in (material or "").split(",") if k.strip()]
    if not entries:
        raise ImproperlyConfigured("CODEX_SECRETS_KEY has no key")
    keys = []
    for position, entry in enumerate(entries, start=1):
        try:
            keys.append(Fernet(entry.encode()))
        except (ValueError, TypeError) as exc:
            raise ImproperlyConfigured(
                f"CODEX_SECRETS_KEY entry {position} of {len(entries)} is not a Fernet key "
                "(32 url-safe base64-encoded bytes)"
            ) from exc
    return keys


def database_config(url: str) -> dict:
    """A postgres:// URL as a Django DATABASES entry (?host= may name a socket directory)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ImproperlyConfigured(
            f"DATABASE_URL must be a postgres:// URL, got scheme {parts.scheme!r}"
        )
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    host = query.pop("host", None) or (unquote(parts.hostname) if parts.hostname else "")
    return {
        "ENGINE": "codex.db.backend",
        "NAME": unquote(parts.path.lstrip("/")) or "postgres",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": 60,
        # No per-request "SELECT 1" (3% of an ingest request): a connection that broke while idle
        # fails its request with 503 and is closed at that request's end (errors_occurred).
        "CONN_HEALTH_CHECKS": False,
        "OPTIONS": {**connection_liveness(), **query},
    }


def connection_liveness() -> dict[str, int]:
    """libpq options that notice a dead or vanished server within seconds (docs/ha.md).

    connect_timeout bounds a connect to a host that does not answer (a failed-over primary's
    address); TCP keepalives find an idle connection whose server is gone (a dead machine sends
    no RST) after idle + interval x count seconds; tcp_user_timeout drops a connection whose
    written data goes unacknowledged that long, so a request never waits on a dead socket past
    its statement budget. A URL's own ?keepalives_idle=... wins. Unix sockets ignore the TCP ones.
    """
    return {
        "connect_timeout": integer("CODEX_DB_CONNECT_TIMEOUT_S", 5),
        "keepalives": 1,
        "keepalives_idle": integer("CODEX_DB_KEEPALIVES_IDLE_S", 10),
        "keepalives_interval": integer("CODEX_DB_KEEPALIVES_INTERVAL_S", 3),
        "keepalives_count": integer("CODEX_DB_KEEPALIVES_COUNT", 3),
        "tcp_user_timeout": integer("CODEX_DB_TCP_USER_TIMEOUT_MS", 10000),
    }


def host_ports(name: str) -> list[tuple[str, int]]:
    """The variable as comma-separated host:port pairs ([v6]:port too); unset or empty is none.

    ImproperlyConfigured names the variable and the bad entry's position and value.
    """
    entries = [e.strip() for e in (text(name) or "").split(",") if e.strip()]
    parsed = []
    for position, entry in enumerate(entries, start=1):
        host, sep, port = entry.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ImproperlyConfigured(
                f"{name} entry {position} of {len(entries)} ({entry!r}) is not host:port"
                " such as sentinel-1.internal:26379"
            )
        parsed.append((host, int(port)))
    return parsed
