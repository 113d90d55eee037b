"""docs/api.md's signing examples (curl + openssl, Python), run as written against a live server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _block(name: str, lang: str) -> str:
    text = DOC.read_text()
    match = re.search(rf"<!-- docs-test: {name} -->\n```{lang}\n(.*?)```", text, re.S)
    assert match, f"no docs-test block {name!r} in docs/api.md"
    return match.group(1)


def _curl(url: str, key_id: str, secret: str) -> list[dict]:
    env = {**os.environ, "CODEX_URL": url, "CODEX_KEY_ID": key_id, "CODEX_SECRET": secret}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _block("curl-v2", "sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


@pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("curl") is None,
    reason="docs/api.md's commands need openssl and curl (NOT TESTED: install them)",
)
def test_the_documented_curl_commands_post_look_up_and_read_config(live_server, signed):
    key = signed.key
    posted, looked_up, config = _curl(live_server.url, key.key_id, key.secret)
    assert posted["status"] == "accepted"
    assert looked_up["idempotency_key"] == "order-1002"
    assert looked_up["status"] in ("accepted", "enriched")
    assert set(config) >= {"syncEnabled", "minIntervalSec", "retryCap"}
    # A wrong secret, same commands: every request refused.
    wrong = "whsec_" + "QUFB" * 11
    answers = _curl(live_server.url, key.key_id, wrong)
    assert [a["error"]["code"] for a in answers] == ["invalid_signature"] * 3


def test_the_documented_python_example_posts_and_looks_up(live_server, signed, capsys):
    key = signed.key
    code = _block("python-v2", "python")
    for name, value in (
        ("BASE_URL", live_server.url),
        ("KEY_ID", key.key_id),
        ("SECRET", key.secret),
    ):
        code, n = re.subn(rf'^{name} = ".*"$', f"{name} = {value!r}", code, flags=re.M)
        assert n == 1, name
    exec(compile(code, "docs/api.md", "exec"), {})  # our own documentation, as written
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("202 ")
    assert lines[1] in ("200 accepted", "200 enriched")
