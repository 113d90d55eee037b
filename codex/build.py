"""The running release (version and commit), read once: /healthz and codex_build_info use it."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from codex import env

# What a checkout reports when nothing set CODEX_VERSION (development, tests). Images get the
# release from the Dockerfile's CODEX_VERSION build argument (cd.yml: the tag or main-<sha>).
DEFAULT_VERSION = "0.1.0"
UNKNOWN_COMMIT = "unknown"
_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class BuildInfo:
    """What /healthz and codex_build_info{version,commit} report."""

    version: str
    commit: str


def _git_commit(root: Path) -> str | None:
    """HEAD of the checkout at `root`, for development; None without git or a repository."""
    if not (root / ".git").exists():
        return None  # an image: .git is not copied (.dockerignore), CODEX_COMMIT says it
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None


def build_info_read(*, environ: Mapping[str, str] | None = None, root: Path = _ROOT) -> BuildInfo:
    """CODEX_VERSION / CODEX_COMMIT (set in the image), else the default and the checkout's HEAD."""
    environ = env.environ_copy() if environ is None else environ
    version = environ.get("CODEX_VERSION", "").strip() or DEFAULT_VERSION
    commit = environ.get("CODEX_COMMIT", "").strip() or _git_commit(root) or UNKNOWN_COMMIT
    return BuildInfo(version=version, commit=commit)


BUILD = build_info_read()
