"""Replacing known secret values in text, in strings and in files (standard library only).

The local supervisor imports this module to redact a run's ``output.log`` and must
start without the dispatcher's dependencies; :mod:`providers.secrets` builds the
values and wraps them for the dispatcher.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

#: What a secret value is replaced with.
MASK = "***"
#: Shorter values are ignored: masking every "on" or "123" would shred the output.
MIN_SECRET_LENGTH = 4
#: Chunk size when redacting a file; memory use is about twice this plus the longest value.
CHUNK_BYTES = 1 << 20


def normalise(values: Iterable[str]) -> list[str]:
    """Distinct values of at least MIN_SECRET_LENGTH characters, longest first.

    A multi-line value (a PEM key) also contributes each of its lines, so a tail of
    output that shows only part of it is still masked.
    """
    found: set[str] = set()
    for value in values:
        found.add(value)
        if "\n" in value or "\r" in value:
            found.update(line.strip() for line in value.splitlines())
    # Longest first so that a value containing another one is masked whole; ties in a fixed order.
    return sorted((v for v in found if len(v) >= MIN_SECRET_LENGTH), key=lambda v: (-len(v), v))


def text_pattern(values: list[str]) -> re.Pattern[str] | None:
    """One alternation of the (normalised, longest-first) values; None when there is nothing to mask."""
    return re.compile("|".join(re.escape(v) for v in values)) if values else None


def redact_text(text: str, values: Iterable[str]) -> str:
    """``text`` with every value masked (for a few short strings; RunSecrets caches its pattern)."""
    pattern = text_pattern(normalise(values))
    return text if pattern is None else pattern.sub(MASK, text)


def masked_spans(data: bytes, values: list[bytes]) -> list[tuple[int, int]]:
    """(start, end) of every value to mask in ``data``: leftmost first, the longest at a position.

    The same matches as one regex alternation of the values, longest first, but found
    with ``bytes.find`` per value: that is C-speed substring search, where re tries
    every alternative at every position (measured with bench/redaction.py: 190 vs 140 MiB/s
    with 10 values, 58 vs 11 MiB/s with 100).
    """
    found = []
    for value in values:
        start = data.find(value)
        while start >= 0:
            found.append((start, start + len(value)))
            start = data.find(value, start + 1)
    found.sort(key=lambda span: (span[0], -span[1]))
    spans: list[tuple[int, int]] = []
    for start, end in found:
        if not spans or start >= spans[-1][1]:
            spans.append((start, end))
    return spans


def redact_stream(source: BinaryIO, target: BinaryIO, values: list[bytes]) -> None:
    """Copy ``source`` to ``target`` with every value masked, in bounded memory.

    The longest value's length minus one byte is held back between chunks, so a value
    split across two chunks is still found; a match that starts before the held-back
    part is complete within the buffer, so it is final.
    """
    mask = MASK.encode()
    keep = max((len(v) for v in values), default=1) - 1
    pending = b""
    while chunk := source.read(CHUNK_BYTES):
        buffer = pending + chunk
        safe = len(buffer) - keep
        position = 0
        for start, end in masked_spans(buffer, values):
            if start >= safe:
                break
            target.write(buffer[position:start])
            target.write(mask)
            position = end
        cut = max(position, safe)
        target.write(buffer[position:cut])
        pending = buffer[cut:]
    position = 0
    for start, end in masked_spans(pending, values):
        target.write(pending[position:start] + mask)
        position = end
    target.write(pending[position:])


def redact_file(path: Path, values: list[str], mode: int = 0o600) -> bool:
    """Rewrite ``path`` with every value masked: streamed to a temporary file, then renamed over it.

    A reader sees the old or the new file, never half of one. True when it was rewritten
    (False: no such file, or nothing to mask).
    """
    encoded = sorted({v.encode("utf-8") for v in values if v})
    if not encoded:
        return False
    tmp = path.with_name(f"{path.name}.redacting-{os.getpid()}")
    try:
        source = open(path, "rb")
    except FileNotFoundError:
        return False
    try:
        with source, os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as target:
            redact_stream(source, target, encoded)
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise
    return True


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
