"""Codex Ingest device SDK: durable local queue plus signed, batched background delivery."""

import logging

from ._version import __version__
from .client import Client, Status
from .errors import CodexError, ServerError, TransportError
from .lookup import EventFate
from .remote_config import RemoteConfig
from .store import DeadLetter
from .sync import SyncResult

# Library etiquette: silent unless the application configures logging.
logging.getLogger("codex_sdk").addHandler(logging.NullHandler())

__all__ = [
    "Client",
    "CodexError",
    "DeadLetter",
    "EventFate",
    "RemoteConfig",
    "ServerError",
    "Status",
    "SyncResult",
    "TransportError",
    "__version__",
]
