"""ECS names and identifiers: families, tags, startedBy, infrastructure ids (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from uuid import UUID

from providers.errors import InvalidJobConfiguration

FAMILY_MAX = 255
TAG_KEY_MAX, TAG_VALUE_MAX, TAGS_MAX = 128, 256, 50
STARTED_BY_MAX = 36
CLIENT_TOKEN_MAX = 64
#: Tag carrying the content hash of a task definition we registered.
HASH_TAG = "prefect.io/task-definition-hash"
MANAGED_BY_TAG = ("prefect.io/managed-by", "prefect-push-dispatcher")

_FAMILY_BAD = re.compile(r"[^A-Za-z0-9_-]+")
_TAG_PUNCTUATION = set(" _.:/=+-@")


def sanitize_family(name: str) -> str:
    """ECS family rules: letters, digits, '-' and '_', at most 255 characters."""
    cleaned = _FAMILY_BAD.sub("-", name).strip("-") or "prefect"
    return cleaned[:FAMILY_MAX]


def default_family(pool: str, labels: Mapping[str, str]) -> str:
    """``prefect_{pool}_{deployment name or flow name}``, like Prefect's worker but readable."""
    owner = labels.get("prefect.io/deployment-name") or labels.get("prefect.io/flow-name") or "flow"
    return sanitize_family(f"prefect_{pool}_{owner}")


def sanitize_tag_text(text: str, limit: int) -> str:
    """Keep what ECS tags allow (letters, digits, spaces and ``_.:/=+-@``); replace the rest with '_'."""
    return "".join(ch if ch.isalnum() or ch in _TAG_PUNCTUATION else "_" for ch in str(text))[:limit]


def ecs_tags(ours: Mapping[str, str], labels: Mapping[str, str]) -> list[dict[str, str]]:
    """Our tags first, then labels, sanitised; aws:-prefixed and empty keys dropped; at most 50."""
    merged: dict[str, str] = {}
    for key, value in [*ours.items(), *labels.items()]:
        tag_key = sanitize_tag_text(key, TAG_KEY_MAX)
        if not tag_key or tag_key.lower().startswith("aws:") or tag_key in merged:
            continue
        merged[tag_key] = sanitize_tag_text(value if value is not None else "", TAG_VALUE_MAX)
    return [{"key": k, "value": v} for k, v in list(merged.items())[:TAGS_MAX]]


def started_by(attempt_id: UUID) -> str:
    """``startedBy`` of an attempt's task: the attempt id (36 characters, ECS allows 36), so
    ListTasks(startedBy=...) finds this attempt's task and never an earlier attempt's."""
    return str(attempt_id)[:STARTED_BY_MAX]


def client_token(idempotency_key: str) -> str:
    """RunTask's clientToken: up to 64 ASCII characters in 33-126."""
    if not 1 <= len(idempotency_key) <= CLIENT_TOKEN_MAX or any(not 33 <= ord(c) <= 126 for c in idempotency_key):
        raise InvalidJobConfiguration(
            "idempotency_key", idempotency_key, "1 to 64 printable ASCII characters (ECS clientToken)"
        )
    return idempotency_key


def infrastructure_id(cluster: str, task_arn: str) -> str:
    """Prefect's ECS format: ``{cluster}::{task_arn}``."""
    return f"{cluster}::{task_arn}"


def parse_infrastructure_id(value: str) -> tuple[str, str]:
    """(cluster, task ARN) of an id made by :func:`infrastructure_id`; ValueError if it is not one."""
    cluster, sep, task_arn = value.partition("::")
    if not sep or not cluster or not task_arn:
        raise ValueError(f"not an ECS infrastructure id (cluster::task_arn): {value!r}")
    return cluster, task_arn


def cluster_of_task(task_arn: str, fallback: str) -> str:
    """The cluster ARN a (new-format) task ARN belongs to: ``...:task/<cluster>/<id>`` -> ``...:cluster/<cluster>``."""
    head, sep, rest = task_arn.partition(":task/")
    cluster, slash, _ = rest.rpartition("/")
    return f"{head}:cluster/{cluster}" if sep and slash and cluster else fallback


def task_id(task_arn: str) -> str:
    """The id at the end of a task ARN (``.../task/<cluster>/<id>`` or the old ``.../task/<id>``)."""
    return task_arn.rsplit("/", 1)[-1]


def chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
