"""In-process cost of parsing, validating and fingerprinting one event of a 100-event batch.

    python -m scripts.bench.validation    (DJANGO_SETTINGS_MODULE=codex.settings)

Prints microseconds per event, the minimum over 30 passes of 100 batches (the least disturbed
figure on a shared machine), for the bench's event and for a richer one (nested payload, a
subject, a non-UTC offset): the whole body (JSON decode included), validation + fingerprint
alone (decoded events), and the whole body when its last event is invalid (parse_body's fast
path declines it and the exact path answers). The issue-21 target: validation + fingerprint under
15 us per event.
"""

from __future__ import annotations

import json
import os
import time


def _per_event_us(work) -> float:
    best = float("inf")
    for _ in range(30):
        started = time.perf_counter()
        for _ in range(100):
            work()
        best = min(best, (time.perf_counter() - started) / 100 / 100 * 1e6)
    return best


def main() -> None:
    """Print the two figures as one line of JSON."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codex.settings")
    import django

    django.setup()
    from ingest.validation import loads, parse_body, validate_event

    plain = {
        "type": "sale.completed",
        "occurred_at": "2026-12-01T10:00:00Z",
        "source": "bench",
        "payload": {"amount": "12.50", "currency": "EUR", "store": "s-17", "items": 3},
    }
    rich = {
        "type": "order.paid",
        "occurred_at": "2026-12-01T10:00:00.123+02:00",
        "source": "pos",
        "subject_id": "customer-4711",
        "payload": {
            "total": 1234,
            "lines": [{"sku": "A-1", "qty": 2, "price": "4.50"}, {"sku": "B-2", "qty": 1}],
            "customer": {"id": "c-1", "tags": ["vip", "eu"]},
        },
    }
    figures = {}
    for name, event in (("bench event", plain), ("nested event", rich)):
        batch = [dict(event, idempotency_key=f"k-{i:06d}") for i in range(100)]
        body = json.dumps({"events": batch}).encode()
        declined = json.dumps({"events": [*batch[:-1], dict(batch[-1], type="Bad")]}).encode()
        events = loads(body)["events"]
        figures[name] = {
            "body_us": round(_per_event_us(lambda b=body: parse_body(b)), 2),
            "validate_fingerprint_us": round(
                _per_event_us(lambda e=events: [validate_event(x) for x in e]), 2
            ),
            "declined_body_us": round(_per_event_us(lambda b=declined: parse_body(b)), 2),
        }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
