"""Test helpers: a real Prometheus and Alertmanager on loopback ports, and a webhook receiver.

The binaries come from Debian's `prometheus` and `prometheus-alertmanager` packages
(scripts/ensure_promtool.sh installs them); a test that needs one skips, loudly, only when it
cannot be installed. Every wait polls an observable state with a deadline.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from tests.helpers import wait_until
from tests.netutil import free_port

ROOT = Path(__file__).resolve().parents[2]
OBS = ROOT / "infra" / "observability"
RULES = OBS / "prometheus" / "rules" / "codex-alerts.yml"
PROM_CONFIG = OBS / "prometheus" / "prometheus.yml"
AM_CONFIG = OBS / "alertmanager" / "alertmanager.yml"
_installed: dict[str, bool] = {}


def tool(name: str) -> str:
    """Path of a Prometheus tool; installs it via scripts/ensure_promtool.sh once if missing."""
    path = shutil.which(name)
    if path is None and not _installed:
        result = subprocess.run(
            ["bash", str(ROOT / "scripts" / "ensure_promtool.sh")],
            capture_output=True,
            text=True,
            timeout=600,
        )
        _installed["ran"] = result.returncode == 0
        path = shutil.which(name)
    if path is None:
        pytest.skip(
            f"!!! {name} is NOT INSTALLED and scripts/ensure_promtool.sh could not install it "
            "(needs root or sudo with apt-get): the alert rules are NOT being tested. "
            "Run: sudo apt-get install -y prometheus prometheus-alertmanager"
        )
    return path


# What a Prometheus or Alertmanager that is not up (or not ready) yet answers: "not yet".
NOT_READY = (httpx.TransportError, ValueError, KeyError)


def rules_for_test(*, interval: str = "1s", for_: str = "2s") -> dict:
    """The shipped rules, evaluated every `interval`, each alert's `for:` shortened to `for_`.

    Expressions, labels and annotations are the shipped ones, unchanged.
    """
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        group["interval"] = interval
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = for_
    return rules


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _ready(proc: subprocess.Popen, url: str, name: str) -> None:
    def ready():
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited: {proc.stderr.read() if proc.stderr else ''}")
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200

    wait_until(ready, timeout=30, interval=0.2, message=f"{name} to be ready", ignoring=NOT_READY)


@contextmanager
def prometheus(workdir: Path, config: dict, rules: dict | None = None) -> Iterator[str]:
    """Run Prometheus with `config` (and `rules` as its only rule file); yield its base URL."""
    binary = tool("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    config = copy.deepcopy(config)
    if rules is not None:
        (workdir / "rules.yml").write_text(yaml.safe_dump(rules))
        config["rule_files"] = [str(workdir / "rules.yml")]
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--rules.alert.resend-delay=1s",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _ready(proc, url, "prometheus")
        yield url
    finally:
        _stop(proc)


def query(url: str, expr: str) -> list[dict]:
    """An instant query's result vector."""
    doc = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


@contextmanager
def alertmanager(workdir: Path, config: dict) -> Iterator[str]:
    """Run Alertmanager (no clustering) with `config`; yield its base URL."""
    binary = tool("prometheus-alertmanager")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "alertmanager.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'alertmanager.yml'}",
            f"--storage.path={workdir / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _ready(proc, url, "alertmanager")
        yield url
    finally:
        _stop(proc)


class WebhookReceiver:
    """A local HTTP server standing in for the pager and the chat channel: records every POST."""

    def __init__(self) -> None:
        self.deliveries: list[dict] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.deliveries.append(
                        {
                            "path": self.path,
                            "authorization": self.headers.get("Authorization"),
                            "body": json.loads(body),
                        }
                    )
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def alerts(self, path: str) -> list[tuple[dict, dict]]:
        """(notification, alert) for every alert delivered to `path`."""
        with self._lock:
            return [
                (d["body"], alert)
                for d in self.deliveries
                if d["path"] == path
                for alert in d["body"]["alerts"]
            ]
