"""What happened to one event on the server (GET /v1/events/<idempotency_key>)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EventFate:
    """The server's record of one of this tenant's events.

    status: accepted (stored, enrichment due), enriched, dead_lettered (stage and error_class
    say why) or erased.
    """

    id: int
    idempotency_key: str
    type: str
    source: str
    status: str
    received_at: str
    enriched_at: str | None
    stage: str | None = None
    error_class: str | None = None

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> EventFate:
        letter = data.get("dead_letter") or {}
        return cls(
            id=int(data["id"]),
            idempotency_key=str(data["idempotency_key"]),
            type=str(data["type"]),
            source=str(data["source"]),
            status=str(data["status"]),
            received_at=str(data["received_at"]),
            enriched_at=data.get("enriched_at"),
            stage=letter.get("stage"),
            error_class=letter.get("error_class"),
        )

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def describe(self) -> str:
        text = f"{self.status}: event {self.idempotency_key} (#{self.id}, {self.type})"
        text += f", received {self.received_at}"
        if self.enriched_at:
            text += f", enriched {self.enriched_at}"
        if self.status == "dead_lettered":
            text += f"; stage {self.stage}: {self.error_class}"
        return text
