"""``dispatcher check``: everything ``serve`` needs, verified without serving, one line per check.

The file is validated first (its problems exit 3, as for ``serve``); then each
workspace's Prefect API, each configured pool, the ledger and each provider's
settings are checked. Nothing is written: no migration, no pool heartbeat, no
state directory created. Secrets are never printed.
"""

from __future__ import annotations

from dataclasses import dataclass

from dispatcher.config import DispatcherConfig, WorkspaceConfig
from dispatcher.prefect.api import PrefectApi
from dispatcher.startup.probes import probe_ledger, probe_prefect
from dispatcher.service import ProviderSet
from dispatcher.startup.preflight import read_push_pool, served_provider_kind
from dispatcher.startup.errors import StartupError, describe_exception, safe_url

#: Level names as printed, padded so the subjects line up.
OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"
_LEVELS = {"ok": OK, "warn": WARN, "fail": FAIL}


@dataclass(frozen=True)
class Finding:
    """One printed line: ``ok    prefect[analytics] http://... reachable, authorised``."""

    level: str
    text: str

    def render(self) -> str:
        return f"{self.level:<6}{self.text}"


async def run_checks(config: DispatcherConfig, timeout_s: float) -> list[Finding]:
    """Every check, in the order an operator would fix them."""
    findings: list[Finding] = []
    kinds: set[str] = set(config.providers)
    for ws in config.workspaces:
        findings += await _check_workspace(config, ws, timeout_s, kinds)
    findings.append(await _check_ledger(config.ledger_dsn, timeout_s))
    providers = ProviderSet(config.providers, config.loop)  # the providers exactly as serve builds them
    try:
        for kind in sorted(kinds):
            findings += await _check_provider(providers, kind)
    finally:
        await providers.aclose()
    return findings


def failed(findings: list[Finding]) -> bool:
    return any(finding.level == FAIL for finding in findings)


async def _check_workspace(
    config: DispatcherConfig, ws: WorkspaceConfig, timeout_s: float, kinds: set[str]
) -> list[Finding]:
    try:
        await probe_prefect(ws, timeout_s)
    except StartupError as exc:
        reason = f"not checked: prefect[{ws.name}] failed"
        return [Finding(FAIL, line) for line in exc.lines] + [
            Finding(SKIP, f"pool[{ws.name}/{pool.name}] {reason}") for pool in ws.pools
        ]
    findings = [Finding(OK, f"prefect[{ws.name}] {safe_url(ws.api_url)} reachable, authorised")]
    async with PrefectApi(ws, "dispatcher-check") as api:
        for pool in ws.pools:
            subject = f"pool[{ws.name}/{pool.name}]"
            try:
                work_pool = await read_push_pool(api, ws, pool.name)
                kind = served_provider_kind(ws, pool, work_pool, config.managed_provider)
            except StartupError as exc:
                findings += [Finding(FAIL, line) for line in exc.lines]
            except Exception as exc:  # noqa: BLE001 - reported, and the other checks still run
                findings.append(Finding(FAIL, f"{subject} cannot be read: {describe_exception(exc)}"))
            else:
                kinds.add(kind)
                findings.append(Finding(OK, f"{subject} {work_pool.type}, provider {kind}"))
    return findings


async def _check_ledger(dsn: str, timeout_s: float) -> Finding:
    try:
        return Finding(OK, await probe_ledger(dsn, timeout_s))
    except StartupError as exc:
        return Finding(FAIL, "; ".join(exc.lines))


async def _check_provider(providers: ProviderSet, kind: str) -> list[Finding]:
    subject = f"provider[{kind}]"
    try:
        results = await providers.get(kind).check_settings()
    except Exception as exc:  # noqa: BLE001 - an SDK missing, a check that broke: one line, not a traceback
        return [Finding(FAIL, f"{subject} cannot be checked: {describe_exception(exc)}")]
    if not results:
        return [Finding(OK, f"{subject} settings valid (nothing more to check without starting a run)")]
    return [Finding(_LEVELS[result.level], f"{subject} {result.message}") for result in results]
