"""Fixtures for SDK tests: a stand-in server and a client factory. No Django or DB needed."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

SDK_SRC = Path(__file__).resolve().parents[2] / "sdk" / "src"

try:
    import codex_sdk  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e ./sdk`
    sys.path.insert(0, str(SDK_SRC))

from codex_sdk import Client  # noqa: E402
from tests.helpers import sdk_client  # noqa: E402


def _load_standin() -> Any:
    # Loaded by path under a unique name so it works with any pytest import mode and
    # cannot clash with other test helpers in the repo.
    spec = importlib.util.spec_from_file_location(
        "codex_sdk_tests_standin", Path(__file__).with_name("_standin.py")
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


standin_module = _load_standin()

KEY_ID = "ck_test_device"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Never touch the developer's real ~/.codex-sdk.
    monkeypatch.setenv("CODEX_SDK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CODEX_SDK_CONFIG", str(tmp_path / "home" / "credentials.json"))


@pytest.fixture
def key_id() -> str:
    return KEY_ID


@pytest.fixture
def secret() -> str:
    return standin_module.new_secret()


@pytest.fixture
def standin(secret: str) -> Iterator[Any]:
    server = standin_module.StandIn({KEY_ID: secret})
    server.start()
    yield server
    if server.hold is not None:
        server.hold.set()
    server.stop()


@pytest.fixture
def queue_path(tmp_path: Path) -> Path:
    return tmp_path / "queue.sqlite3"


# Against the in-process stand-in everything may be faster than against the live server.
STANDIN_TIMINGS = {
    "timeout": 2.0,
    "backoff_base": 0.01,
    "backoff_max": 0.05,
    "config_refresh_sec": 0.05,
}


@pytest.fixture
def make_client(standin: Any, secret: str, queue_path: Path, make_client) -> Callable[..., Client]:
    """The suite's make_client (tests/conftest.py) bound to the stand-in, its key and queue_path."""
    # make_client is requested last, so its clients close at teardown before the stand-in stops.
    key = SimpleNamespace(key_id=KEY_ID, secret=secret)

    def make(**overrides: Any) -> Client:
        return make_client(
            standin.url, key, **(STANDIN_TIMINGS | {"queue_path": queue_path} | overrides)
        )

    return make


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for child Pythons that must import codex_sdk."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SDK_SRC), env.get("PYTHONPATH")]))
    return env


@pytest.fixture
def offline_client(tmp_path: Path, secret: str) -> Iterator[Client]:
    """A client whose server is port 9 (discard) on localhost: for tests that send nothing."""
    key = SimpleNamespace(key_id="ck_x", secret=secret)
    client = sdk_client("http://127.0.0.1:9", key, queue_path=tmp_path / "q.sqlite3")
    yield client
    client.close(flush=False)
