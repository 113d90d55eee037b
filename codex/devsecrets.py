"""Development/test secrets, generated once and kept under .data/ (never used when deployed)."""

from __future__ import annotations

import base64
import os
import secrets

from codex.embedded import DATA_DIR


def dev_secret(name: str, *, fernet: bool = False) -> str:
    """Return a stable random secret for this checkout, creating it on first use."""
    path = DATA_DIR / "secrets" / name
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = (
        base64.urlsafe_b64encode(os.urandom(32)).decode() if fernet else secrets.token_urlsafe(50)
    )
    # O_EXCL: when several processes boot at once, the first writer wins and the rest read it.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value
