"""Names, tags and infrastructure ids of the container groups (pure).

One container group per attempt, named from the attempt id, so that every replica and
every re-drive derives the same name: ``prefect-<attempt id hex>`` (40 characters of
``[a-z0-9-]``, within ACI's 63 and its DNS-label rule). The infrastructure id recorded
in Prefect is prefect-azure's own format, ``<flow run id>:<group name>``; the
subscription (a secret in prefect-azure) and resource group come from the run's
configuration, so they never appear in Prefect's records.
"""

from __future__ import annotations

from uuid import UUID

CONTAINER_NAME = "prefect-flow-run"
#: Tag keys (ARM tag names may not contain < > % & \ ? /).
TAG_MANAGED = "prefect-push-dispatcher"
TAG_FLOW_RUN = "prefect-flow-run-id"
TAG_ATTEMPT = "prefect-attempt-id"
TAG_WORKSPACE = "prefect-workspace"
TAG_POOL = "prefect-pool"
TAG_KEEP = "prefect-keep-container-group"
TAG_VALUE_MAX = 256


def group_name(attempt_id: UUID) -> str:
    return f"prefect-{attempt_id.hex}"


def infrastructure_id(flow_run_id: UUID, name: str) -> str:
    return f"{flow_run_id}:{name}"


def parse_infrastructure_id(infrastructure_id: str) -> tuple[str, str]:
    """(flow run id, group name); ValueError if it is not one of ours."""
    flow_run_id, sep, name = infrastructure_id.partition(":")
    UUID(flow_run_id)
    if not sep or not name.startswith("prefect-"):
        raise ValueError(f"not an ACI infrastructure id: {infrastructure_id!r}")
    return flow_run_id, name


def tags(flow_run_id: UUID, attempt_id: UUID, workspace: str, pool: str, keep: bool) -> dict[str, str]:
    return {
        TAG_MANAGED: "1",
        TAG_FLOW_RUN: str(flow_run_id),
        TAG_ATTEMPT: str(attempt_id),
        TAG_WORKSPACE: workspace[:TAG_VALUE_MAX],
        TAG_POOL: pool[:TAG_VALUE_MAX],
        TAG_KEEP: "true" if keep else "false",
    }


def infrastructure_id_text(flow_run_id: str, name: str) -> str:
    """``infrastructure_id`` from a tag value (a group found by listing, not by its run)."""
    return f"{flow_run_id}:{name}"
