"""Helpers shared by the tenants management commands: stdout belongs to the command's result."""

from __future__ import annotations

import getpass
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from tenants.errors import TenantError


@contextmanager
def logs_to_stderr() -> Iterator[None]:
    """Send log lines that would go to stdout to stderr for the duration of a command.

    The project logs JSON lines to stdout; these commands print credentials (or one JSON
    document) on stdout, which scripts parse, so nothing else may be written there.
    """
    moved: list[tuple[logging.StreamHandler, object]] = []
    stdouts = {id(sys.stdout), id(sys.__stdout__)}
    for logger in [logging.getLogger(), *_configured_loggers()]:
        for handler in logger.handlers:
            if not isinstance(handler, logging.StreamHandler) or isinstance(
                handler, logging.FileHandler
            ):
                continue
            if handler.stream is sys.stderr:
                continue
            if handler.get_name() == "stdout" or id(handler.stream) in stdouts:
                moved.append((handler, handler.stream))
                handler.setStream(sys.stderr)
    try:
        yield
    finally:
        for handler, stream in moved:
            handler.setStream(stream)


def _configured_loggers() -> list[logging.Logger]:
    return [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]


def cli_actor() -> str:
    """Audit actor for command-line operations: 'cli:<os user>'."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}"


_DURATION_RE = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_parse(text: str) -> timedelta:
    """Parse '30m', '24h', '7d', '0s' or combinations like '1h30m' into a timedelta."""
    compact = text.strip().lower().replace(" ", "")
    if not compact or _DURATION_RE.sub("", compact):
        raise TenantError(f"duration {text!r} must look like 30m, 24h, 7d, 0s or 1h30m")
    seconds = sum(int(n) * _UNITS[u] for n, u in _DURATION_RE.findall(compact))
    return timedelta(seconds=seconds)
