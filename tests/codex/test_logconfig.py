"""The JSON log line: any `extra` value renders, and a signing secret never does."""

from __future__ import annotations

import json
import logging

from codex.logconfig import JsonFormatter, records_lean
from tests.helpers import logging_records_kept


def _line(**extra) -> dict:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "msg %s", ("x",), None)
    record.__dict__.update(extra)
    return json.loads(JsonFormatter().format(record))


def test_int_keys_big_ints_objects_and_non_ascii_render():
    doc = _line(counts={1: 2}, big=2**70, when=object, shop="café")
    assert doc["msg"] == "msg x"
    assert doc["counts"] == {"1": 2}
    assert doc["big"] == 2**70
    assert doc["when"] == str(object)
    assert doc["shop"] == "café"


def test_a_signing_secret_is_redacted_in_any_field():
    doc = _line(detail="key whsec_c2VjcmV0c2VjcmV0 leaked", nested={"s": "whsec_QUJD"})
    assert "whsec_c2VjcmV0c2VjcmV0" not in json.dumps(doc)
    assert doc["detail"] == "key whsec_[redacted] leaked"
    assert doc["nested"] == {"s": "whsec_[redacted]"}


def test_lean_records_print_the_same_line():
    logger = logging.getLogger("codex.test.lean")
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(JsonFormatter().format(record))

    logger.addHandler(Keep())
    try:
        with logging_records_kept():
            logger.warning("same %s", "line", extra={"shop": "s-1"})
            records_lean()
            logger.warning("same %s", "line", extra={"shop": "s-1"})
    finally:
        logger.handlers.clear()
    first, second = (json.loads(line) for line in lines)
    first.pop("ts")
    second.pop("ts")
    assert first == second
    assert first["shop"] == "s-1"
