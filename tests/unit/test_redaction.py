"""Masking secret values in files, streamed in bounded chunks (providers/redaction.py)."""

from __future__ import annotations

import io
import os
import random
import re
from pathlib import Path

import pytest

from providers import redaction


def streamed(data: bytes, values: list[str], chunk: int, monkeypatch: pytest.MonkeyPatch) -> bytes:
    monkeypatch.setattr(redaction, "CHUNK_BYTES", chunk)
    target = io.BytesIO()
    redaction.redact_stream(io.BytesIO(data), target, [v.encode() for v in redaction.normalise(values)])
    return target.getvalue()


def all_at_once(data: bytes, values: list[str]) -> bytes:
    """The reference: one regex alternation, longest value first, over the whole data."""
    return re.sub(b"|".join(re.escape(v.encode()) for v in redaction.normalise(values)), b"***", data)


def test_values_split_across_chunks_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    values = ["secret-one", "secret-one-longer", "zz-other"]
    data = b"start secret-one-longer, secret-one and zz-other\nsecret-one" + b"x" * 7 + b"zz-other end"
    whole = all_at_once(data, values)
    assert whole == b"start ***, *** and ***\n***xxxxxxx*** end"
    for chunk in range(1, 40):  # every split position of every value
        assert streamed(data, values, chunk, monkeypatch) == whole, chunk


def test_streaming_equals_masking_all_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(4711)  # fixed seed: the same inputs on every run
    alphabet = "abcs3-\n"
    for _ in range(200):
        values = ["".join(rng.choice(alphabet) for _ in range(rng.randint(4, 9))) for _ in range(3)]
        data = "".join(rng.choice([*values, *alphabet]) for _ in range(60)).encode()
        expected = all_at_once(data, values)
        assert streamed(data, values, rng.randint(1, 16), monkeypatch) == expected, (values, data)


def test_redact_file_replaces_it_atomically_and_keeps_it_private(tmp_path: Path) -> None:
    path = tmp_path / "output.log"
    path.write_bytes("héllo tøken-value\n".encode() * 1000)
    os.chmod(path, 0o600)
    before = path.stat().st_ino
    assert redaction.redact_file(path, ["tøken-value"])
    assert path.read_bytes() == "héllo ***\n".encode() * 1000
    assert path.stat().st_ino != before  # a new file renamed over the old one
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["output.log"]


def test_redact_file_without_a_file(tmp_path: Path) -> None:
    assert not redaction.redact_file(tmp_path / "missing.log", ["value"])
    assert list(tmp_path.iterdir()) == []
