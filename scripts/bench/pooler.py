"""PgBouncer (transaction pooling) in front of the embedded PostgreSQL, for the benchmark's rows.

Started exactly as scripts/pgbouncer_run.py starts it for the pooled test pass (its config, the app
role given a login, `-u pgserver` as root); the caller points DATABASE_URL at it as the app role,
DATABASE_OWNER_URL at PostgreSQL directly and sets CODEX_DB_POOL_MODE=transaction.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from scripts import pgbouncer_run as pgb


@dataclass
class Pooler:
    """A PgBouncer we started."""

    proc: subprocess.Popen
    port: int
    workdir: Path
    version: str

    def url(self, db_name: str) -> str:
        """DATABASE_URL for `db_name` through the pooler, as the app role."""
        return f"postgresql://{quote(pgb.APP_ROLE)}@127.0.0.1:{self.port}/{db_name}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def binary() -> str | None:
    """The pgbouncer executable, or None (scripts/ensure_pgbouncer.sh installs it)."""
    return shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )


def start() -> Pooler:
    """PgBouncer in transaction mode on a free port (embedded PostgreSQL only)."""
    exe = binary()
    if exe is None:
        raise SystemExit("pgbouncer is missing: bash scripts/ensure_pgbouncer.sh")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    owner_url, socket_dir, pg_port = pgb._owner_url()
    pgb._app_role_login(owner_url)
    port = pgb._free_port()
    workdir = Path(tempfile.mkdtemp(prefix="codex-bench-pgbouncer-"))
    ini = pgb._config(workdir, socket_dir=socket_dir, pg_port=pg_port, port=port)
    args = [exe, str(ini)]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root; the embedded PostgreSQL runs as `pgserver` there.
        for path in (workdir, *workdir.iterdir()):
            shutil.chown(path, user="pgserver")
        args = [exe, "-u", "pgserver", str(ini)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pgb._wait_listening(port, proc, workdir / "pgbouncer.log")
    return Pooler(proc, port, workdir, version.splitlines()[0] if version else "pgbouncer")
