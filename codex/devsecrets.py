"""Development/test secrets, generated once and kept under .data/ (never used when deployed)."""

from __future__ import annotations

import base64
import os
import secrets

from codex.embedded import DATA_DIR


def dev_secret(name: str, *, fernet: bool = False, nbytes: int = 50) -> str:
    """Return a stable random secret for this checkout, creating it on first use."""
    path = DATA_DIR / "secrets" / name
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = (
        base64.urlsafe_b64encode(os.urandom(32)).decode()
        if fernet
        else secrets.token_urlsafe(nbytes)
    )
    # Write aside, then link into place: when several processes boot at once, the first link
    # wins, and nobody ever reads a half-written file.
    tmp = path.with_name(f".{name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    try:
        os.link(tmp, path)
    except FileExistsError:
        value = path.read_text().strip()
    finally:
        tmp.unlink()
    return value
