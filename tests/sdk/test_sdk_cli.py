"""The codex-sdk command line against the stand-in server."""

from __future__ import annotations

import json
import os
import queue
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from codex_sdk import __version__
from codex_sdk.cli import EXIT_FAIL, EXIT_OK, EXIT_QUEUED, main


@pytest.fixture
def provision(standin, key_id, secret, tmp_path: Path):
    """Write a provision_tenant --json style file; returns a function taking overrides."""

    def write(*, base_url: str | None = standin.url, keys: list | None = None) -> Path:
        data = {
            "tenant_id": "7c0d8b5e-0000-4000-8000-000000000001",
            "slug": "demo",
            "keys": keys
            or [
                {"key_id": "ck_server_side", "secret": "whsec_c2VydmVyIGtleQ==", "device": None},
                {"key_id": key_id, "secret": secret, "device": "front"},
            ],
        }
        if base_url is not None:
            data["base_url"] = base_url
        path = tmp_path / "provision.json"
        path.write_text(json.dumps(data))
        return path

    return write


@pytest.fixture
def creds_path(tmp_path: Path) -> Path:
    return tmp_path / "cfg" / "credentials.json"


@pytest.fixture
def cli(creds_path: Path, queue_path: Path, capsys: pytest.CaptureFixture[str]):
    """Run main() in-process; returns (exit code, stdout, stderr)."""

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["--config", str(creds_path), "--queue", str(queue_path), *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_login_writes_private_file_and_picks_the_device_key(
    cli, provision, creds_path: Path, key_id: str, secret: str, standin
) -> None:
    code, out, err = cli("login", "--from-json", str(provision()))
    assert code == EXIT_OK, err
    assert stat.S_IMODE(creds_path.stat().st_mode) == 0o600
    saved = json.loads(creds_path.read_text())
    assert saved["key_id"] == key_id  # the first key bound to a device
    assert saved["secret"] == secret
    assert saved["base_url"] == standin.url
    assert saved["device"] == "front"
    assert key_id in out
    assert secret not in out + err


def test_login_from_a_rerun_picks_the_one_key_that_has_a_secret(
    cli, provision, creds_path: Path, key_id: str, secret: str
) -> None:
    # provision_tenant re-run with a new --device: old keys are listed without secrets.
    rerun = [
        {"key_id": "ck_server_side", "secret": None, "device": None},
        {"key_id": "ck_front_old", "secret": None, "device": "front"},
        {"key_id": key_id, "secret": secret, "device": "back"},
    ]
    assert cli("login", "--from-json", str(provision(keys=rerun)))[0] == EXIT_OK
    saved = json.loads(creds_path.read_text())
    assert (saved["key_id"], saved["device"]) == (key_id, "back")


def test_login_refuses_to_guess_between_several_device_keys(
    cli, provision, creds_path: Path, key_id: str, secret: str
) -> None:
    two = [
        {"key_id": key_id, "secret": secret, "device": "front"},
        {"key_id": "ck_back", "secret": "whsec_c2VydmVyIGtleQ==", "device": "back"},
    ]
    code, _, err = cli("login", "--from-json", str(provision(keys=two)))
    assert code == EXIT_FAIL
    assert "pass --device" in err
    assert not creds_path.exists()
    assert cli("login", "--from-json", str(provision(keys=two)), "--device", "back")[0] == EXIT_OK
    assert json.loads(creds_path.read_text())["key_id"] == "ck_back"


def test_login_overwrites_with_0600_even_if_file_was_open(cli, provision, creds_path: Path) -> None:
    creds_path.parent.mkdir(parents=True)
    creds_path.write_text("{}")
    creds_path.chmod(0o644)
    assert cli("login", "--from-json", str(provision()))[0] == EXIT_OK
    assert stat.S_IMODE(creds_path.stat().st_mode) == 0o600


def test_login_device_selection_and_errors(cli, provision, creds_path: Path) -> None:
    code, _, err = cli("login", "--from-json", str(provision()), "--device", "back")
    assert code == EXIT_FAIL
    assert "no key for device 'back'" in err
    assert "front" in err
    assert not creds_path.exists()

    code, _, err = cli("login", "--from-json", str(provision(base_url=None)))
    assert code == EXIT_FAIL
    assert "--base-url" in err
    code, _, _ = cli(
        "login", "--from-json", str(provision(base_url=None)), "--base-url", "http://h:1/"
    )
    assert code == EXIT_OK
    assert json.loads(creds_path.read_text())["base_url"] == "http://h:1"

    only_server_key = [{"key_id": "ck_a", "secret": "whsec_c2VydmVyIGtleQ==", "device": None}]
    assert cli("login", "--from-json", str(provision(keys=only_server_key)))[0] == EXIT_OK
    assert json.loads(creds_path.read_text())["key_id"] == "ck_a"  # falls back to first key

    bad = creds_path.parent / "bad.json"
    bad.write_text("not json")
    code, _, err = cli("login", "--from-json", str(bad))
    assert code == EXIT_FAIL
    assert "not valid JSON" in err
    code, _, err = cli("login", "--from-json", str(creds_path.parent / "missing.json"))
    assert code == EXIT_FAIL
    assert "cannot read" in err


def test_send_status_and_dead_letters(cli, provision, standin, secret: str) -> None:
    assert cli("login", "--from-json", str(provision()))[0] == EXIT_OK

    code, out, err = cli("send", "door.opened", "--payload", '{"door": 3}')
    assert code == EXIT_OK, err
    assert out.startswith("accepted: event ")
    assert len(standin.delivered) == 1

    when = "2026-11-26T10:00:00Z"
    args = ("send", "door.opened", "--idempotency-key", "k-1", "--occurred-at", when)
    assert cli(*args)[0] == EXIT_OK
    code, out, _ = cli(*args)
    assert code == EXIT_OK
    assert out.startswith("duplicate: event k-1")

    # Same key, different content: a conflict, kept locally as a dead letter.
    code, out, _ = cli("send", "door.opened", "--idempotency-key", "k-1", "--payload", '{"x":1}')
    assert code == EXIT_FAIL
    assert "conflict: event k-1 dead-lettered: idempotency_conflict" in out

    code, out, _ = cli("dead-letters")
    assert code == EXIT_OK
    assert "k-1" in out
    assert "conflict" in out

    code, out, err = cli("status")
    assert code == EXIT_OK, err
    assert "0 queued" in out
    assert "1 dead-lettered" in out
    assert "syncEnabled=true" in out
    code, out, _ = cli("status", "--json")
    data = json.loads(out)
    assert data["queue_depth"] == 0
    assert data["dead_letters"] == 1
    assert data["last_sync_outcome"] == "ok"
    assert data["config"] == {"syncEnabled": True, "minIntervalSec": 0.0, "retryCap": 3}
    assert secret not in out


def test_send_failures_have_clear_exit_codes(cli, provision, standin) -> None:
    code, _, err = cli("status")
    assert code == EXIT_FAIL
    assert "codex-sdk login" in err  # not logged in yet

    assert cli("login", "--from-json", str(provision()))[0] == EXIT_OK
    code, _, err = cli("send", "Not Valid", "--payload", "{}")
    assert code == EXIT_FAIL
    assert "type must be" in err
    code, _, err = cli("send", "ok", "--payload", "{nope")
    assert code == EXIT_FAIL
    assert "--payload" in err

    standin.config["syncEnabled"] = False
    code, out, _ = cli("send", "ok")
    assert code == EXIT_QUEUED
    assert "disabled by server config" in out
    standin.config["syncEnabled"] = True

    standin.stop()
    code, out, _ = cli("send", "ok", "--timeout", "1")
    assert code == EXIT_QUEUED
    assert out.startswith("queued: event ")
    code, out, _ = cli("status")
    assert code == EXIT_FAIL  # server unreachable, but local state still shown
    assert "2 queued" in out
    assert "fetch failed" in out


def test_console_entry_point_runs(subprocess_env) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "codex_sdk", "--version"],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"codex-sdk {__version__}"


def test_run_logs_syncs_pause_and_resume_then_stops_on_sigint(
    cli, provision, standin, creds_path: Path, queue_path: Path, subprocess_env
) -> None:
    assert cli("login", "--from-json", str(provision()))[0] == EXIT_OK
    proc = subprocess.Popen(
        [sys.executable, "-m", "codex_sdk", "--config", str(creds_path), "--queue",
         str(queue_path), "run", "--config-refresh", "0.05", "--heartbeat", "0.05"],
        env=subprocess_env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stderr is not None
    stderr = proc.stderr
    threading.Thread(target=lambda: [lines.put(line) for line in stderr], daemon=True).start()

    def expect(fragment: str) -> None:
        while True:  # queue.get's timeout bounds the wait; a dead child fails fast
            line = lines.get(timeout=10)
            if fragment in line:
                return

    try:
        expect("sync thread started")
        expect("sync ok: 1 accepted")
        standin.config["syncEnabled"] = False
        expect("sync paused by server config")
        posts = len(standin.posts())
        standin.config["syncEnabled"] = True
        expect("sync resumed by server config")
        expect("sync ok:")
        assert len(standin.posts()) > posts
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        expect("sync thread stopped")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
