"""Minimal HTTP(S) transport over http.client: one connection per request, no redirects."""

from __future__ import annotations

import http.client
import ssl
import urllib.parse
from dataclasses import dataclass

from .errors import TransportError

# Responses from this API are small; a cap protects the device from a misbehaving proxy.
MAX_RESPONSE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes


class Transport:
    def __init__(self, base_url: str, *, user_agent: str) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
        self.base_url = base_url
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._user_agent = user_agent
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None

    def request(
        self, method: str, path: str, body: bytes, headers: dict[str, str], *, timeout: float
    ) -> Response:
        """Perform one request; raises TransportError if no HTTP response was obtained."""
        conn: http.client.HTTPConnection
        if self._ssl is not None:
            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=self._ssl
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        all_headers = {
            "User-Agent": self._user_agent,
            "Accept": "application/json",
            # A fresh connection per request: syncs are minutes apart, keep-alive buys nothing.
            "Connection": "close",
            **headers,
        }
        try:
            conn.request(method, self._prefix + path, body=body or None, headers=all_headers)
            resp = conn.getresponse()
            data = resp.read(MAX_RESPONSE_BYTES + 1)
            if len(data) > MAX_RESPONSE_BYTES:
                raise TransportError("response body too large")
            return Response(
                status=resp.status,
                headers={k.lower(): v for k, v in resp.getheaders()},
                body=data,
            )
        except (OSError, http.client.HTTPException) as exc:  # TimeoutError is an OSError
            raise TransportError(f"{method} {path}: {exc.__class__.__name__}: {exc}") from exc
        finally:
            conn.close()
