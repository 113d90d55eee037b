#!/usr/bin/env python3
"""Local rollback drill: a broken release replaces a good one; roll back; /healthz green in < 60 s.

    python scripts/rollback_drill.py [--broken boot|500] [--budget 60] [--json out.json]

1. release A: gunicorn from this checkout (gunicorn.conf.py, codex.wsgi) on a free loopback
   port, CODEX_VERSION=A; wait for GET /healthz 200 reporting version A.
2. deploy release B on the same port, which is broken:
   - `boot` (default): the same gunicorn with CODEX_ENV=production and SECRET_KEY missing, so the
     service refuses to start (a bad configuration shipped with a release);
   - `500`: a stand-in that answers every request with 500 (a release that boots but is sick).
3. detect the failure the way a health check does: B's process exits, or /healthz fails
   3 times in a row (0.5 s apart).
4. roll back: stop B, start A again (on a real host: redeploy A's digest, rollback.yml), and
   measure the seconds from the rollback start to the first /healthz 200 that reports version A.

Prints the figures, writes them to --json if asked, and exits 1 when the rollback took >= the
budget (or anything else failed). Every wait is bounded; every process it started is stopped
(its whole process group) on the way out, also on Ctrl-C. No database or Redis is needed:
/healthz touches neither, so unset DATABASE_URL/REDIS_URL get unreachable placeholders.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STANDIN_500 = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"error": {"code": "internal", "message": "broken release B"}}'
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def boot_error(log_text: str) -> str | None:
    """The configuration error a release died of, from its (JSON) log."""
    match = re.search(r"ImproperlyConfigured: [^\\\"]+", log_text)
    return match.group(0) if match else None


class DrillError(Exception):
    """The drill could not run as designed (not the same as a slow rollback)."""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthz(port: int, timeout: float = 1.0) -> tuple[int | None, dict]:
    """(status, body) of GET /healthz; (None, {}) when nothing answers."""
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except (OSError, ValueError):
        return None, {}


class Drill:
    """Starts and stops the releases; remembers every process to clean up."""

    def __init__(self, port: int, workdir: Path, log) -> None:
        self.port = port
        self.workdir = workdir
        self.log = log
        self.processes: list[subprocess.Popen] = []

    def _base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("DATABASE_URL", "postgresql://drill@127.0.0.1:1/drill")
        env.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")
        # Throw-away keys, so development mode generates nothing under .data/.
        env.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
        env.setdefault("CODEX_SECRETS_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
        env.update(
            {
                "BIND": f"127.0.0.1:{self.port}",
                "WEB_CONCURRENCY": "1",
                "GUNICORN_THREADS": "2",
                "GUNICORN_GRACEFUL_TIMEOUT": "5",
                "LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.pop("PYTEST_VERSION", None)  # run as a service would, not with test settings
        env.pop("CODEX_ENV", None)
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        logfile = (self.workdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop gunicorn and its workers
        )
        logfile.close()
        self.processes.append(proc)
        return proc

    def start_release(self, version: str, *, broken: str | None = None) -> subprocess.Popen:
        """Start release `version`; `broken` = boot | 500 makes it the bad release."""
        env = self._base_env()
        env["CODEX_VERSION"] = version
        metrics = self.workdir / f"metrics-{version}-{len(self.processes)}"
        metrics.mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
        if broken == "500":
            return self._spawn(version, [sys.executable, "-c", STANDIN_500, str(self.port)], env)
        if broken == "boot":
            env["CODEX_ENV"] = "production"
            env.pop("SECRET_KEY", None)
        gunicorn = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
        return self._spawn(version, [*gunicorn, "codex.wsgi:application"], env)

    def stop(self, proc: subprocess.Popen, timeout: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL after `timeout` seconds."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # workers left behind by a dead master

    def stop_all(self) -> None:
        for proc in self.processes:
            self.stop(proc, timeout=5)

    def wait_green(self, version: str, timeout: float, proc: subprocess.Popen) -> float:
        """Seconds until /healthz is 200 with `version`; DrillError on timeout or exit."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            status, body = healthz(self.port)
            if status == 200 and body.get("version") == version:
                return time.monotonic() - started
            if proc.poll() is not None:
                raise DrillError(f"release {version} exited ({proc.returncode}) before green")
            time.sleep(0.05)
        raise DrillError(f"release {version} not green within {timeout:g} s")

    def wait_failure(self, proc: subprocess.Popen, timeout: float) -> tuple[float, str]:
        """Seconds until the health check declares the release failed, and why."""
        started = time.monotonic()
        # Nothing listening yet is a boot in progress, not a verdict, until half the step's
        # budget is gone: a slow machine must not name "no answer" where the release exits.
        boot_grace = timeout / 2
        failures = 0
        while time.monotonic() - started < timeout:
            if proc.poll() is not None:
                return time.monotonic() - started, f"process exited with {proc.returncode}"
            status, _ = healthz(self.port)
            booting = status is None and time.monotonic() - started < boot_grace
            failures = failures + 1 if status != 200 and not booting else 0
            if failures >= 3:
                return time.monotonic() - started, f"/healthz failed 3 times (last: {status})"
            time.sleep(0.5)
        raise DrillError(f"broken release still looks healthy after {timeout:g} s")


def run(args: argparse.Namespace) -> dict:
    """The drill; returns the figures."""

    def log(msg: str) -> None:
        print(f"drill: {msg}", flush=True)

    with tempfile.TemporaryDirectory(prefix="rollback-drill-") as tmp:
        drill = Drill(args.port or free_port(), Path(tmp), log)
        try:
            log(f"release A: gunicorn on 127.0.0.1:{drill.port} (CODEX_VERSION=A)")
            a = drill.start_release("A")
            boot_a = drill.wait_green("A", args.step_timeout, a)
            log(f"release A green in {boot_a:.2f} s")

            log(f"deploying broken release B ({args.broken})")
            deploy_started = time.monotonic()
            drill.stop(a)
            b = drill.start_release("B", broken=args.broken)
            detect_s, why = drill.wait_failure(b, args.step_timeout)
            log(f"release B failed health after {detect_s:.2f} s: {why}")

            log("rolling back to release A")
            rollback_started = time.monotonic()
            drill.stop(b)
            a2 = drill.start_release("A")
            drill.wait_green("A", args.budget + 30, a2)
            rollback_s = time.monotonic() - rollback_started
            outage_s = time.monotonic() - deploy_started
        finally:
            drill.stop_all()
            logs = {p.name: p.read_text(errors="replace")[-20000:] for p in Path(tmp).glob("*.log")}
    passed = rollback_s < args.budget
    log(
        f"rollback to A: /healthz 200 version A {rollback_s:.2f} s after the rollback started "
        f"(budget {args.budget:g} s) -> {'PASS' if passed else 'FAIL'}"
    )
    return {
        "broken": args.broken,
        "boot_a_s": round(boot_a, 2),
        "detect_s": round(detect_s, 2),
        "failure": why,
        "rollback_s": round(rollback_s, 2),
        "outage_s": round(outage_s, 2),
        "budget_s": args.budget,
        "passed": passed,
        "broken_release_error": boot_error(logs.get("B.log", "")),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--broken", choices=("boot", "500"), default="boot")
    p.add_argument("--budget", type=float, default=60.0, help="seconds the rollback may take")
    p.add_argument("--step-timeout", type=float, default=30.0, help="bound of every other wait")
    p.add_argument("--port", type=int, default=0, help="default: a free loopback port")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args(argv)

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        result = run(args)
    except DrillError as exc:
        print(f"drill: FAIL {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("drill: interrupted; processes stopped", file=sys.stderr)
        return 130
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
