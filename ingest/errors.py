"""ingest's exceptions that predate the registry, and the entry the one mapping answers each as.

EventInvalid (ingest.validation) is caught where it is raised (a batch item's `error`, the single
event's `invalid_request`); should one escape to an edge, codex.errors.domain_error answers it as
`invalid_request` with its message instead of a 500.
"""

from __future__ import annotations

from codex import error_codes as codes
from codex.errors import answer_as
from ingest.validation import EventInvalid

answer_as(EventInvalid, codes.INVALID_REQUEST)
