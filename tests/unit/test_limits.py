"""Limits before submission (pure)."""

from __future__ import annotations

from dispatcher.config import DispatcherConfig, Limits, PoolConfig, WorkspaceConfig
from dispatcher.policy.limits import check_resources, effective_limits, violations_message
from providers.base import ResourceRequest


def _config(ws_limits=None, pool_limits=None, global_limits=None):
    pool = PoolConfig(name="p", limits=pool_limits)
    ws = WorkspaceConfig(name="w", api_url="http://x/api", pools=[pool], limits=ws_limits)
    return DispatcherConfig(workspaces=[ws], limits=global_limits), ws, pool


def test_managed_defaults_are_prefect_managed_limits():
    config, ws, pool = _config()
    limits = effective_limits(config, ws, pool, "prefect:managed")
    assert (limits.max_vcpu, limits.max_memory_mib, limits.max_ephemeral_storage_gib, limits.max_runtime_s) == (4, 16384, 128, 86400)


def test_push_pools_have_only_the_24h_cap_by_default():
    config, ws, pool = _config()
    limits = effective_limits(config, ws, pool, "ecs:push")
    assert limits.max_runtime_s == 86400 and limits.max_vcpu is None and limits.max_memory_mib is None


def test_most_specific_level_wins():
    config, ws, pool = _config(global_limits=Limits(max_vcpu=8, max_runtime_s=100), ws_limits=Limits(max_vcpu=2),
                               pool_limits=Limits(max_runtime_s=50))
    limits = effective_limits(config, ws, pool, "prefect:managed")
    assert (limits.max_vcpu, limits.max_runtime_s, limits.max_memory_mib) == (2, 50, 16384)


def test_request_within_limits_passes():
    request = ResourceRequest(vcpu=4, memory_mib=16384, ephemeral_storage_gib=128)
    assert check_resources(request, Limits(max_vcpu=4, max_memory_mib=16384, max_ephemeral_storage_gib=128), "pool p") == []


def test_violation_names_field_value_and_limit_in_the_users_words():
    request = ResourceRequest(vcpu=8, memory_mib=32768, fields={"vcpu": "cpu", "memory_mib": "memory"})
    violations = check_resources(request, Limits(max_vcpu=4, max_memory_mib=16384), "pool 'managed'")
    assert [v.field for v in violations] == ["cpu", "memory"]
    assert violations_message(violations) == (
        "Run not started: cpu=8 vCPU exceeds the limit of 4 vCPU for pool 'managed'; "
        "memory=32768 MiB exceeds the limit of 16384 MiB for pool 'managed'."
    )


def test_unset_request_or_unset_cap_never_violates():
    assert check_resources(ResourceRequest(), Limits(max_vcpu=1), "p") == []
    assert check_resources(ResourceRequest(vcpu=64), Limits(), "p") == []


def test_fractional_values_are_printed_plainly():
    violations = check_resources(ResourceRequest(vcpu=0.5), Limits(max_vcpu=0.25), "p")
    assert "vcpu=0.5 vCPU exceeds the limit of 0.25 vCPU" in violations[0].message()
