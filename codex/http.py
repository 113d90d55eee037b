"""HTTP edges: the client's address, refusing a body by its declared size, keep-alive hygiene."""

from __future__ import annotations

import contextlib
import ipaddress
import socket

from django.conf import settings

from codex import error_codes as codes
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
        raise ApiError(codes.PAYLOAD_TOO_LARGE, f"{what} may be at most {max_bytes} bytes.")
    if not length and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        discard_body(request, None)
        raise ApiError(codes.LENGTH_REQUIRED)  # "Send the body with a Content-Length."


_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_address(raw: str) -> _Address | None:
    """One address as a proxy writes it: bare, `1.2.3.4:port` or `[v6]:port`; None if not one."""
    raw = raw.strip()
    if raw.startswith("["):
        raw = raw[1 : raw.find("]")] if "]" in raw else ""
    elif raw.count(":") == 1:  # IPv4 with a port (a bare IPv6 address has several colons)
        raw = raw.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)  # a dual-stack socket's ::ffff:a.b.c.d
    return mapped or address


def client_address(request) -> str:
    """The client's IP address, the one every per-address limit keys on.

    REMOTE_ADDR, unless it is one of settings.CODEX_TRUSTED_PROXIES: then X-Forwarded-For is
    walked from the right (each proxy appends the peer it saw) past the trusted proxies, and the
    first entry that is not one is the client. Entries left of it were written by the client and
    are never read, so a forged header buys nothing; an entry that is not an address ends the
    walk at the last address a trusted proxy vouched for. With no trusted proxies (the default)
    the header is ignored altogether.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    peer = _parse_address(remote)
    if peer is None:
        return remote or "unknown"
    trusted = settings.CODEX_TRUSTED_PROXIES
    if not any(peer in network for network in trusted):
        return str(peer)
    address = peer
    for entry in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        hop = _parse_address(entry)
        if hop is None:
            break
        address = hop
        if not any(hop in network for network in trusted):
            break
    return str(address)
