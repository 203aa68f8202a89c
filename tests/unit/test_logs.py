"""Log output: secrets redacted in plain and JSON formats."""

from __future__ import annotations

import json
import logging

from dispatcher.logs import JsonFormatter, RedactingFormatter, redact

KEY = "pnu_" + "a1B2c3D4e5" * 4


def test_known_secret_shapes_are_redacted():
    text = redact(f"env={{'PREFECT_API_KEY': '{KEY}', 'aws_secret_access_key': 'wJalrXUtnFEMI'}} Authorization: Bearer abc.def")
    assert KEY not in text and "wJalrXUtnFEMI" not in text and "abc.def" not in text
    assert "PREFECT_API_KEY" in text  # the name stays, so the line still says what it was


def _record(message: str, exc: Exception | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, None) if exc else None
    return logging.LogRecord("dispatcher.x", logging.ERROR, __file__, 1, message, None, exc_info)


def test_json_lines_carry_level_logger_message_and_redacted_exception():
    line = JsonFormatter().format(_record(f"submitting with {KEY}", RuntimeError(f"password={KEY}")))
    payload = json.loads(line)
    assert payload["level"] == "ERROR" and payload["logger"] == "dispatcher.x"
    assert KEY not in line and "pnu_***" in payload["message"]
    assert "RuntimeError" in payload["exception"]


def test_plain_format_is_redacted_too():
    assert KEY not in RedactingFormatter("%(message)s").format(_record(f"key {KEY}"))
