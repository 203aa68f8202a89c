"""The watcher's crash message masks the run's secrets in the output it copies, before truncating."""

from __future__ import annotations

from uuid import uuid4

from prefect.workers.base import BaseJobConfiguration

from dispatcher.config import LoopConfig
from dispatcher.loops.calls import ProviderCalls
from dispatcher.loops.watcher import masked_tail
from providers.base import RunRef
from providers.errors import TransientProviderError
from providers.secrets import RunSecrets

SECRET = "tok-" + "9" * 20


class TailProvider:
    kind = "tail"

    def __init__(self, lines: list[str] | Exception) -> None:
        self.lines = lines

    async def last_log_lines(self, run: RunRef, limit: int = 20) -> list[str]:
        if isinstance(self.lines, Exception):
            raise self.lines
        return self.lines


REF = RunRef(flow_run_id=uuid4(), attempt_id=uuid4(), infrastructure_id="x", configuration=BaseJobConfiguration())


async def test_secrets_are_masked_before_lines_are_cut() -> None:
    long_line = "a" * 490 + SECRET + "b" * 10  # cut at 500 first, the secret's prefix would survive
    multi = "-----BEGIN-----\nsecret-body-line\n-----END-----"
    lines = ["visible", long_line, "x -----BEGIN-----", "secret-body-line", "-----END----- y"]
    tail = masked_tail(lines, RunSecrets(values=[SECRET, multi]))
    assert tail == ["visible", "a" * 490 + "***" + "b" * 7, "x *** y"]
    assert not any(part in line for line in tail for part in ("tok-9999", "secret-body"))


async def test_no_lines_and_provider_errors() -> None:
    """A log tail is best effort: a provider that has none, or fails, gives no lines (through the call path)."""
    secrets = RunSecrets(values=[SECRET])
    assert masked_tail([], secrets) == []
    loop = LoopConfig(watch_interval_s=0.1)
    assert await ProviderCalls(TailProvider([]), loop).last_log_lines(REF, 10) == []  # type: ignore[arg-type]
    failing = ProviderCalls(TailProvider(TransientProviderError("down")), loop)  # type: ignore[arg-type]
    assert await failing.last_log_lines(REF, 10) == []
