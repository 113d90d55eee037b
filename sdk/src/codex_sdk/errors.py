"""Exception types raised by the SDK's transport and sync layers."""

from __future__ import annotations


class CodexError(Exception):
    """Base class for SDK errors."""


class TransportError(CodexError):
    """The request never produced an HTTP response (refused, reset, timeout, DNS...)."""


class ServerError(CodexError):
    """The server answered with a request-level error (non-2xx, or an unusable 2xx body)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: float | None = None,
        rid: str | None = None,
    ) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.rid = rid

    @property
    def retryable(self) -> bool:
        # 429/5xx are load or outage signals; everything else repeats identically on retry.
        return self.status == 429 or self.status >= 500
