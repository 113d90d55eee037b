"""The one base of the project's management commands, and the helpers commands share.

A command parses its arguments and calls one service or selector. DomainCommand turns every
DomainError those raise (or the command itself raises: `codes.INVALID_ARGUMENTS.error(...)`) into
a CommandError (the operator message, codex.errors.operator_message; exit status 1), so no command
catches an app's errors itself, and it keeps log lines off stdout, which belongs to the command's
result.
"""

from __future__ import annotations

import getpass
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError

from codex import error_codes as codes
from codex.errors import DomainError, DomainValueError, operator_message


class DomainCommand(BaseCommand):
    """BaseCommand whose DomainErrors become CommandErrors, run with logs going to stderr."""

    def execute(self, *args, **options):
        with logs_to_stderr():
            try:
                return super().execute(*args, **options)
            except DomainError as exc:
                raise CommandError(operator_message(exc)) from exc


@contextmanager
def logs_to_stderr() -> Iterator[None]:
    """Send log lines that would go to stdout to stderr for the duration of a command.

    The project logs JSON lines to stdout; commands print credentials (or one JSON document) on
    stdout, which scripts parse, so nothing else may be written there.
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
            # "console" is the project's handler (codex.logconfig): it may hold the stdout of
            # the moment logging was configured rather than today's sys.stdout.
            if handler.get_name() == "console" or id(handler.stream) in stdouts:
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
    """Audit actor for command-line operations: 'cli:<os user>' ('cli:unknown' without one)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers with a bare uid)
        user = "unknown"
    return f"cli:{user}"


_DURATION_RE = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_parse(text: str) -> timedelta:
    """Parse '30m', '24h', '7d', '0s' or combinations like '1h30m' into a timedelta."""
    compact = text.strip().lower().replace(" ", "")
    if not compact or _DURATION_RE.sub("", compact):
        raise DomainValueError(
            codes.INVALID_DURATION, f"duration {text!r} must look like 30m, 24h, 7d, 0s or 1h30m"
        )
    seconds = sum(int(n) * _UNITS[u] for n, u in _DURATION_RE.findall(compact))
    try:
        return timedelta(seconds=seconds)
    except OverflowError as exc:  # past timedelta's ~2.7 million years
        raise DomainValueError(
            codes.INVALID_DURATION, f"duration {text!r} is far too long"
        ) from exc


def moment_parse(text: str) -> datetime:
    """An ISO 8601 date or date-time, UTC unless it carries an offset; `invalid_moment` otherwise.

    The error is a DomainValueError: as argparse's `type=` it is shown as an invalid value.
    """
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise DomainValueError(codes.INVALID_MOMENT, f"not an ISO 8601 time: {text!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
