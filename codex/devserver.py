"""`make run`: migrate, provision the demo tenant once, then web + worker + beat under honcho."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from codex import env as envreader

# The embedded servers' directory (CODEX_DATA_DIR, default .data/) also keeps the admin
# password and the demo credentials, so every path printed here is the one really used.
from codex.embedded import DATA_DIR

BASE_DIR = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def _manage(*args: str, env: dict[str, str], capture: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        env=env,
        cwd=BASE_DIR,
        check=True,
        text=True,
        capture_output=capture,
    )


def _service_env() -> dict[str, str]:
    """Resolve the embedded servers once, so the three processes do not each start them."""
    env = envreader.environ_copy()
    env.setdefault("CODEX_ENV", "development")
    if not env.get("DATABASE_URL"):
        from codex import embedded

        print(f"starting embedded PostgreSQL (data in {embedded.PG_DIR}) ...", flush=True)
        env["DATABASE_URL"] = embedded.postgres_url()
        env["CODEX_EMBEDDED_DB"] = "1"
    if not env.get("REDIS_URL"):
        from codex import embedded

        print(f"starting embedded Redis ({embedded.REDIS_DIR}) ...", flush=True)
        env["REDIS_URL"] = embedded.redis_url()
    return env


def _credentials_path(env: dict[str, str]) -> Path:
    """Where the demo credentials live: one file per database, so switching servers never mixes."""
    if env.get("CODEX_EMBEDDED_DB") == "1":
        return DATA_DIR / "demo-credentials.json"
    digest = hashlib.sha256(env["DATABASE_URL"].encode()).hexdigest()[:8]
    return DATA_DIR / f"demo-credentials-{digest}.json"


def _demo_credentials(env: dict[str, str]) -> Path | None:
    """Provision the `demo` tenant on first run and keep its credentials in .data/ (0600)."""
    path = _credentials_path(env)
    if path.exists():
        return path
    if not (BASE_DIR / "tenants" / "management" / "commands" / "provision_tenant.py").exists():
        return None
    result = _manage(
        "provision_tenant",
        "demo",
        "--name",
        "Demo store",
        "--device",
        "front",
        "--json",
        env=env,
        capture=True,
    )
    doc = json.loads(result.stdout)
    if not any(k.get("secret") for k in doc.get("keys", [])):
        return None  # tenant existed from an earlier data dir; secrets are never shown twice
    DATA_DIR.mkdir(exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=2)
    # First run only: the SDK settings, once, as provision_tenant itself shows them.
    print("\n  demo tenant provisioned; SDK settings (also kept in the file below):")
    for key in doc["keys"]:
        who = f"device {key['device']}" if key["device"] else "tenant key"
        print(f"    {who:<14} base_url={doc.get('base_url', '')} key_id={key['key_id']}")
        print(f"    {'':<14} secret={key['secret']}")
    return path


def _admin_password(env: dict[str, str]) -> Path:
    """A development superuser `admin`, password generated once under DATA_DIR/secrets/."""
    from codex.devsecrets import dev_secret

    password = dev_secret("admin-password", nbytes=12)
    code = (
        "from django.contrib.auth import get_user_model; U = get_user_model(); "
        "u = U.objects.filter(username='admin').first() or U(username='admin', is_staff=True, "
        f"is_superuser=True); u.set_password({password!r}); u.save()"
    )
    _manage("shell", "--no-imports", "-c", code, env=env)
    return DATA_DIR / "secrets" / "admin-password"


def main() -> int:
    """Prepare and exec honcho; Ctrl-C stops web, worker and beat together."""
    env = _service_env()
    for sub in ("metrics/web", "metrics/worker"):
        shutil.rmtree(DATA_DIR / sub, ignore_errors=True)
        (DATA_DIR / sub).mkdir(parents=True, exist_ok=True)
    print("applying migrations ...", flush=True)
    _manage("migrate", "--no-input", env=env, capture=True)
    _manage("collectstatic", "--no-input", env=env, capture=True)
    password_file = _admin_password(env)
    creds = _demo_credentials(env)
    base = env.get("CODEX_PUBLIC_URL", "http://127.0.0.1:8000")
    print(
        "\n".join(
            [
                "",
                f"  API        {base}/v1/events   (health: {base}/healthz, {base}/readyz)",
                f"  metrics    {base}/metrics",
                f"  admin      {base}/admin/   user: admin   password: cat {password_file}",
                f"  demo SDK   credentials in {creds}  (codex-sdk login --from-json {creds})"
                if creds
                else "  demo SDK   tenant exists (manage.py rotate_signing_key demo for a key)",
                "  stop       Ctrl-C (stops web, worker and beat)",
                "",
            ]
        ),
        flush=True,
    )
    honcho = str(VENV_BIN / "honcho")
    os.chdir(BASE_DIR)
    os.execve(honcho, [honcho, "start", "-f", "Procfile"], env)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
