"""The watcher's crash message masks the run's secrets in the output it copies, before truncating."""

from __future__ import annotations

from uuid import uuid4

from prefect.workers.base import BaseJobConfiguration

from dispatcher.loops.watcher import _safe_log_tail
from providers.base import RunRef
from providers.errors import TransientProviderError
from providers.secrets import RunSecrets

SECRET = "tok-" + "9" * 20


class TailProvider:
    def __init__(self, lines: list[str] | Exception) -> None:
        self.lines = lines

    async def last_log_lines(self, run: RunRef, limit: int = 20) -> list[str]:
        if isinstance(self.lines, Exception):
            raise self.lines
        return self.lines


REF = RunRef(flow_run_id=uuid4(), infrastructure_id="x", configuration=BaseJobConfiguration())


async def test_secrets_are_masked_before_lines_are_cut() -> None:
    long_line = "a" * 490 + SECRET + "b" * 10  # cut at 500 first, the secret's prefix would survive
    multi = "-----BEGIN-----\nsecret-body-line\n-----END-----"
    lines = ["visible", long_line, "x -----BEGIN-----", "secret-body-line", "-----END----- y"]
    provider = TailProvider(lines)
    tail = await _safe_log_tail(provider, REF, RunSecrets(values=[SECRET, multi]))  # type: ignore[arg-type]
    assert tail == ["visible", "a" * 490 + "***" + "b" * 7, "x *** y"]
    assert not any(part in line for line in tail for part in ("tok-9999", "secret-body"))


async def test_no_lines_and_provider_errors() -> None:
    secrets = RunSecrets(values=[SECRET])
    assert await _safe_log_tail(TailProvider([]), REF, secrets) == []  # type: ignore[arg-type]
    assert await _safe_log_tail(TailProvider(TransientProviderError("down")), REF, secrets) == []  # type: ignore[arg-type]
