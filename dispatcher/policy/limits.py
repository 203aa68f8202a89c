"""Per-run caps, decided before anything is started (pure)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from dispatcher.config import MANAGED_LIMITS, PUSH_LIMITS, DispatcherConfig, Limits, PoolConfig, WorkspaceConfig
from providers.base import ResourceRequest
from providers.managed import ManagedAllocation

MANAGED_POOL_TYPE = "prefect:managed"


class EffectiveLimits(Limits):
    """The caps that apply to a pool's runs; a runtime cap always applies (24 h at most, by default)."""

    max_runtime_s: int = Field(description="Wall-clock seconds before a run is stopped (TimedOut).")


class LimitViolation(BaseModel):
    """One request over one cap."""

    field: str = Field(description="The job variable the user set (cpu, memory, ...).")
    value: float = Field(description="What the run asked for, in the unit of `unit`.")
    limit: float = Field(description="The cap, same unit.")
    unit: str = Field(description="vCPU, MiB or GiB.")
    scope: str = Field(description="Where the cap comes from, e.g. 'pool managed-pool'.")

    def message(self) -> str:
        return (
            f"{self.field}={_num(self.value)} {self.unit} exceeds the limit of "
            f"{_num(self.limit)} {self.unit} for {self.scope}"
        )


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def effective_limits(
    config: DispatcherConfig, workspace: WorkspaceConfig, pool: PoolConfig, pool_type: str
) -> EffectiveLimits:
    """Pool type defaults, then dispatcher, workspace and pool overrides (most specific wins).

    Both defaults carry a runtime cap and an override can only replace it, so one always applies.
    """
    base = MANAGED_LIMITS if pool_type == MANAGED_POOL_TYPE else PUSH_LIMITS
    merged = base.overlay(config.limits).overlay(workspace.limits).overlay(pool.limits)
    return EffectiveLimits.model_validate(merged.model_dump())


def check_resources(request: ResourceRequest, limits: Limits, scope: str) -> list[LimitViolation]:
    """Every cap the request exceeds; an empty list means the run may start."""
    checks = (
        ("vcpu", request.vcpu, limits.max_vcpu, "vCPU"),
        ("memory_mib", request.memory_mib, limits.max_memory_mib, "MiB"),
        ("ephemeral_storage_gib", request.ephemeral_storage_gib, limits.max_ephemeral_storage_gib, "GiB"),
    )
    violations = []
    for key, asked, cap, unit in checks:
        if asked is not None and cap is not None and asked > cap:
            field = request.fields.get(key, key)
            violations.append(LimitViolation(field=field, value=asked, limit=cap, unit=unit, scope=scope))
    return violations


def violations_message(violations: list[LimitViolation]) -> str:
    """One state message for all violations of a run."""
    return "Run not started: " + "; ".join(v.message() for v in violations) + "."


def managed_allocation(limits: Limits) -> ManagedAllocation:
    """What every run of a prefect:managed pool gets: 4 vCPU / 16 GiB / 128 GiB, or less where the
    operator's caps are lower. The pool's variables have no cpu or memory: users cannot ask for more."""
    return ManagedAllocation.within(limits.max_vcpu, limits.max_memory_mib, limits.max_ephemeral_storage_gib)
