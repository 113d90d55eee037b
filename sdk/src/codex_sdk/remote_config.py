"""The server-driven sync configuration served at GET /config."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RemoteConfig:
    sync_enabled: bool = True
    min_interval_sec: float = 900.0
    retry_cap: int = 3

    @classmethod
    def from_wire(cls, data: Any) -> RemoteConfig:
        """Parse the server's camelCase JSON; ValueError on anything off-contract."""
        if not isinstance(data, dict):
            raise ValueError("config must be a JSON object")
        enabled = data.get("syncEnabled")
        interval = data.get("minIntervalSec")
        cap = data.get("retryCap")
        # bool is an int subclass: exclude it explicitly from the numeric fields.
        if not isinstance(enabled, bool):
            raise ValueError("syncEnabled must be a boolean")
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval < 0:
            raise ValueError("minIntervalSec must be a non-negative number")
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise ValueError("retryCap must be a non-negative integer")
        return cls(sync_enabled=enabled, min_interval_sec=float(interval), retry_cap=cap)

    def to_wire(self) -> dict[str, Any]:
        return {
            "syncEnabled": self.sync_enabled,
            "minIntervalSec": self.min_interval_sec,
            "retryCap": self.retry_cap,
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_CONFIG = RemoteConfig()
