"""Run a command (default: the pooled test pass) behind a transaction-pooling PgBouncer.

Starts PgBouncer (Debian's `pgbouncer`, see scripts/ensure_pgbouncer.sh) in front of the embedded
PostgreSQL, gives the app role a login, and runs the command with DATABASE_URL pointing at
PgBouncer as that role, DATABASE_OWNER_URL at PostgreSQL directly and
CODEX_DB_POOL_MODE=transaction.
`make test` uses it for the RLS, race, flood, drain and pooling tests:

    python scripts/pgbouncer_run.py                   # the pooled test pass
    python scripts/pgbouncer_run.py -- CMD ARGS...    # anything else (e.g. gunicorn, a bench)

The alias `<db>_pool1` (any database name) is a pool of exactly one server connection, for the
test that interleaves two tenants over it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_TESTS = [
    "tests/tenants/test_rls.py",
    "tests/tenants/test_pooling.py",
    "tests/ingest/test_live.py",
    "tests/ingest/test_drain.py",
    "tests/ingest/test_enrichment.py",  # a real Celery worker through the pool
    "tests/codex/test_health.py::test_readyz_is_ok_when_postgres_and_redis_answer",
]
APP_ROLE = os.environ.get("CODEX_DB_APP_ROLE", "codex_app")
POOL_SIZE = int(os.environ.get("CODEX_PGBOUNCER_POOL_SIZE") or 10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _owner_url() -> tuple[str, str, int]:
    """The embedded PostgreSQL as the owner: (URL, socket directory, port)."""
    from codex import embedded

    url = embedded.postgres_url()
    import pgserver

    info = pgserver.get_server(embedded.PG_DIR, cleanup_mode=None).get_postmaster_info()
    return url, str(info.socket_dir), int(info.port or 5432)


def _app_role_login(owner_url: str) -> None:
    """The app role may log in (behind PgBouncer it is the login); create it if missing."""
    import psycopg
    from psycopg import sql

    from codex.env import database_config

    db = database_config(owner_url)
    with psycopg.connect(
        dbname=db["NAME"], user=db["USER"] or None, host=db["HOST"] or None, autocommit=True
    ) as conn:
        role = sql.Identifier(APP_ROLE)
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP_ROLE]).fetchone()
        if not exists:
            conn.execute(
                sql.SQL(
                    "CREATE ROLE {} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE "
                    "NOINHERIT"
                ).format(role)
            )
            conn.execute(sql.SQL("GRANT {} TO current_user").format(role))
        conn.execute(sql.SQL("ALTER ROLE {} LOGIN").format(role))


def _config(workdir: Path, *, socket_dir: str, pg_port: int, port: int) -> Path:
    (workdir / "userlist.txt").write_text(f'"{APP_ROLE}" ""\n')
    ini = workdir / "pgbouncer.ini"
    ini.write_text(
        f"""[databases]
; one server connection only: the pooled-scope interleaving test
test_codex_pool1 = host={socket_dir} port={pg_port} dbname=test_codex pool_size=1
codex_pool1 = host={socket_dir} port={pg_port} dbname=codex pool_size=1
* = host={socket_dir} port={pg_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {workdir / "userlist.txt"}
pool_mode = transaction
default_pool_size = {POOL_SIZE}
max_client_conn = 1000
; psycopg may send `options` (the health probe's statement_timeout); PgBouncer 1.18 refuses
; unknown startup parameters otherwise. The app role's own defaults hold instead.
ignore_startup_parameters = options
stats_users = {APP_ROLE}
logfile = {workdir / "pgbouncer.log"}
"""
    )
    return ini


def _wait_listening(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"pgbouncer exited ({proc.returncode}): {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)  # polling for the listener, bounded by the deadline above
    raise SystemExit(f"pgbouncer did not listen on {port} within 15 s")


def main(argv: list[str]) -> int:
    binary = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if binary is None:
        print(
            "#" * 88 + "\n# pgbouncer_run: pgbouncer is MISSING (scripts/ensure_pgbouncer.sh could "
            "not install it):\n# the pooled pass of the RLS, race and flood tests does NOT run.\n"
            + "#"
            * 88,
            file=sys.stderr,
        )
        return 0
    command = argv[argv.index("--") + 1 :] if "--" in argv else None
    owner_url, socket_dir, pg_port = _owner_url()
    _app_role_login(owner_url)
    port = _free_port()
    workdir = Path(tempfile.mkdtemp(prefix="codex-pgbouncer-"))
    ini = _config(workdir, socket_dir=socket_dir, pg_port=pg_port, port=port)
    args = [binary, str(ini)]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root; the embedded PostgreSQL runs as `pgserver` there.
        user = "pgserver"
        shutil.chown(workdir, user=user)
        for path in workdir.iterdir():
            shutil.chown(path, user=user)
        args = [binary, "-u", user, str(ini)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_listening(port, proc, workdir / "pgbouncer.log")
        env = {
            **os.environ,
            "DATABASE_URL": f"postgresql://{quote(APP_ROLE)}@127.0.0.1:{port}/codex",
            "DATABASE_OWNER_URL": owner_url,
            "CODEX_DB_POOL_MODE": "transaction",
            "CODEX_TEST_PGBOUNCER": f"127.0.0.1:{port}",
        }
        if command is None:
            extra = argv or []
            command = [sys.executable, "-m", "pytest", *DEFAULT_TESTS, *extra]
            print(f"pgbouncer_run: pooled pass through PgBouncer on 127.0.0.1:{port} (transaction)")
        return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
