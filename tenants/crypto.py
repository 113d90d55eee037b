"""Signing secrets encrypted at rest with CODEX_SECRETS_KEY (Fernet; several keys rotate)."""

from __future__ import annotations

import base64
import os
import re
import secrets
import uuid
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from codex import error_codes as codes
from codex.env import fernet_keys
from codex.errors import DomainError

SECRET_PREFIX = "whsec_"


class SecretUndecryptable(DomainError):
    """A stored secret no key of CODEX_SECRETS_KEY decrypts (a key was dropped too early).

    Registry entry `secret_undecryptable`: commands and the admin show its message; the API
    answers it as 503 `unavailable` with Retry-After (codex.errors.domain_error).
    """

    def __init__(self, message: str | None = None):
        super().__init__(codes.SECRET_UNDECRYPTABLE, message)


def secrets_keys(key_material: str) -> list[Fernet]:
    """The Fernet keys of CODEX_SECRETS_KEY, the first one encrypting (codex.env validates)."""
    return fernet_keys(key_material)


@lru_cache(maxsize=4)
def _fernet(key_material: str) -> MultiFernet:
    return MultiFernet(secrets_keys(key_material))


def encrypt(plaintext: str) -> str:
    """Encrypt with the first CODEX_SECRETS_KEY key."""
    return _fernet(settings.CODEX_SECRETS_KEY).encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt with any CODEX_SECRETS_KEY key; SecretUndecryptable when none can."""
    try:
        return _fernet(settings.CODEX_SECRETS_KEY).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUndecryptable() from exc


def reencrypt(token: str) -> str | None:
    """The token encrypted with the first key, or None when it already is (idempotent)."""
    keys = secrets_keys(settings.CODEX_SECRETS_KEY)
    try:
        keys[0].decrypt(token.encode())
        return None
    except InvalidToken:
        pass
    try:
        return _fernet(settings.CODEX_SECRETS_KEY).rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUndecryptable() from exc


def new_signing_secret() -> str:
    """A Standard Webhooks secret: whsec_ + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(32)).decode()


def new_key_id(tenant_id: uuid.UUID) -> str:
    """A public key id that names its tenant: ck_<tenant hex>_<random>.

    Carrying the tenant lets authentication open the tenant's scope before looking the key up,
    so no cross-tenant index or system scope sits on the ingest hot path.
    """
    return f"ck_{tenant_id.hex}_{secrets.token_hex(8)}"


# ASCII only: int() and uuid.UUID accept other Unicode digits, and PostgreSQL text refuses NUL.
_KEY_ID_RE = re.compile(r"ck_([0-9a-fA-F]{32})_[0-9A-Za-z]{1,28}", re.ASCII)


def tenant_of_key_id(key_id: str) -> uuid.UUID | None:
    """The tenant a key id names, or None when it is not of our form."""
    match = _KEY_ID_RE.fullmatch(key_id)
    return uuid.UUID(hex=match.group(1)) if match else None


def secret_bytes(secret: str) -> bytes:
    """The HMAC key bytes of a whsec_ secret."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))
