"""HTTP edges: refuse a body by its declared size, and leave the keep-alive connection usable."""

from __future__ import annotations

import contextlib
import socket

from codex.errors import ApiError

# A refused body up to this size is read and dropped (cheap, and the connection stays in sync);
# beyond it the connection is closed after the answer instead of reading on.
DISCARD_LIMIT = 8 * 1024 * 1024
_CHUNK = 64 * 1024


def discard_body(request, declared: int | None) -> None:
    """Make the unread request body harmless for the next request on the same connection.

    gunicorn neither drains an unread body nor honours an application's `Connection: close`, so
    the leftover bytes were parsed as the next request ("server disconnected"). A declared (or
    chunked) body up to DISCARD_LIMIT is read and dropped; a larger one gets the socket's read
    side shut, so the server closes the connection right after sending the answer.
    """
    stream = request.META.get("wsgi.input")
    if declared is not None and declared <= DISCARD_LIMIT and stream is not None:
        left = declared
        while left > 0:
            chunk = stream.read(min(_CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
        return
    if declared is None and stream is not None:  # chunked: read up to the limit
        read = 0
        while read <= DISCARD_LIMIT:
            chunk = stream.read(_CHUNK)
            if not chunk:
                return
            read += len(chunk)
    sock = request.META.get("gunicorn.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RD)


def body_size_check(request, max_bytes: int, what: str = "The body") -> None:
    """Refuse a body over `max_bytes` (413) or sent chunked (411) before reading it.

    The one size check of the plain views: WSGI hands a view exactly Content-Length bytes, so a
    body that passes here is never larger once read. The refused body is discarded.
    """
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > max_bytes:
        discard_body(request, length)
        raise ApiError(
            "payload_too_large", f"{what} may be at most {max_bytes} bytes.", status_code=413
        )
    if not length and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        discard_body(request, None)
        raise ApiError("length_required", "Send the body with a Content-Length.", status_code=411)
