"""gunicorn's logger without access lines: the app logs one JSON line per request, with its rid."""

from gunicorn.glogging import Logger


class AppLogsAccess(Logger):
    """gunicorn.glogging.Logger whose access() does nothing.

    With a logconfig_dict gunicorn formats and emits an access line for every request even when
    accesslog is None: a second, rid-less line per request, and ~7% of a worker's CPU on the
    ingest path (py-spy, docs/performance.md).
    """

    def access(self, resp, req, environ, request_time) -> None:
        """codex.middleware.RequestContextMiddleware logs the request instead."""
        return
