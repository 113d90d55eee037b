"""Credentials file for the CLI: parse `provision_tenant --json` output, store it 0600."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .client import data_dir
from .signing import decode_secret


class CredentialsError(Exception):
    """Missing, unreadable or unusable credentials (message is safe to print)."""


@dataclass(frozen=True)
class Credentials:
    base_url: str
    key_id: str
    secret: str = field(repr=False)  # never in a repr, a log line or a traceback
    tenant_id: str | None = None
    slug: str | None = None
    device: str | None = None

    def describe(self) -> str:
        """Human summary without the secret."""
        who = f"tenant {self.slug or self.tenant_id or '?'}"
        dev = f", device {self.device}" if self.device else ""
        return f"key {self.key_id} ({who}{dev}) at {self.base_url}"


def default_path() -> Path:
    env = os.environ.get("CODEX_SDK_CONFIG")
    return Path(env) if env else data_dir() / "credentials.json"


def from_provision(
    data: Any, *, device: str | None = None, base_url: str | None = None
) -> Credentials:
    """Pick one key out of the JSON printed by the server's `provision_tenant --json`.

    Only keys whose secret is present count (a re-run lists existing keys without secrets).
    --device selects by device name; otherwise the one device key, else the tenant key; with
    several device keys the choice is refused rather than guessed, so two devices never end up
    sharing one key. An explicit base_url overrides the file's.
    """
    if not isinstance(data, dict):
        raise CredentialsError("provisioning JSON must be an object")
    keys = data.get("keys")
    if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
        raise CredentialsError("provisioning JSON has no keys")
    usable = [k for k in keys if isinstance(k.get("secret"), str) and k.get("secret")]
    if device is not None:
        matches = [k for k in keys if k.get("device") == device]
        if not matches:
            known = sorted({str(k.get("device")) for k in keys if k.get("device")})
            raise CredentialsError(
                f"no key for device {device!r} (devices: {', '.join(known) or 'none'})"
            )
        chosen = next((k for k in matches if k in usable), matches[0])
    else:
        device_keys = [k for k in usable if k.get("device")]
        if len(device_keys) > 1:
            names = ", ".join(sorted(str(k["device"]) for k in device_keys))
            raise CredentialsError(f"several device keys ({names}): pass --device NAME")
        chosen = (device_keys or usable or keys)[0]
    url = base_url or data.get("base_url")
    if not url:
        raise CredentialsError("provisioning JSON has no base_url; pass --base-url")
    key_id, secret = chosen.get("key_id"), chosen.get("secret")
    if not isinstance(key_id, str) or not key_id or not isinstance(secret, str) or not secret:
        raise CredentialsError("chosen key lacks key_id or secret")
    try:
        decode_secret(secret)
    except ValueError as exc:
        raise CredentialsError(f"key {key_id}: {exc}") from None
    return Credentials(
        base_url=str(url).rstrip("/"),
        key_id=key_id,
        secret=secret,
        tenant_id=data.get("tenant_id"),
        slug=data.get("slug"),
        device=chosen.get("device"),
    )


def save(path: Path, creds: Credentials) -> None:
    """Write atomically with mode 0600 (mkstemp creates the file private from the start)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".credentials-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(creds), fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path) -> Credentials:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CredentialsError(
            f"no credentials at {path}; run `codex-sdk login --from-json FILE` first"
        ) from None
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"cannot read credentials at {path}: {exc}") from None
    try:
        return Credentials(
            base_url=data["base_url"],
            key_id=data["key_id"],
            secret=data["secret"],
            tenant_id=data.get("tenant_id"),
            slug=data.get("slug"),
            device=data.get("device"),
        )
    except (KeyError, TypeError):
        raise CredentialsError(f"credentials at {path} are incomplete; log in again") from None
