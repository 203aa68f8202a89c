"""Small helpers shared by the ECS emulator modules: ids, ARNs, paging, time."""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
import uuid
from collections.abc import Sequence
from typing import Any

from .errors import invalid_parameter


def now() -> float:
    return time.time()


def epoch(t: float | None) -> float | None:
    """JSON-protocol timestamps are epoch seconds; ECS sends millisecond precision."""
    return None if t is None else round(t, 3)


def new_task_id() -> str:
    return uuid.uuid4().hex  # 32 lowercase hex digits, like real Fargate task ids


def new_uuid() -> str:
    return str(uuid.uuid4())


def random_hex(n: int, rng: random.Random | None = None) -> str:
    rng = rng or random
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def without_none(d: dict[str, Any]) -> dict[str, Any]:
    """AWS omits absent members instead of sending null."""
    return {k: v for k, v in d.items() if v is not None}


def env_list_to_dict(entries: list[dict] | None) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in entries or [] if "name" in e}


def _encode_token(offset: int) -> str:
    raw = json.dumps({"offset": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_token(token: str) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise invalid_parameter("Invalid nextToken provided.") from None
    if not isinstance(offset, int) or offset < 0:
        raise invalid_parameter("Invalid nextToken provided.")
    return offset


def paginate(items: Sequence[Any], params: dict[str, Any], limit: int = 100) -> tuple[list[Any], str | None]:
    """Slice ``items`` per ``maxResults``/``nextToken`` (ECS allows 1..100, default 100)."""
    max_results = params.get("maxResults")
    if max_results is None:
        max_results = limit
    elif not 1 <= max_results <= limit:
        raise invalid_parameter(f"maxResults must be between 1 and {limit}.")
    start = _decode_token(params["nextToken"]) if params.get("nextToken") else 0
    page = list(items[start : start + max_results])
    more = start + max_results < len(items)
    return page, (_encode_token(start + max_results) if more else None)


def check_tags(tags: list[dict] | None) -> None:
    """What ECS enforces on tags beyond the model's length limits."""
    keys = [t.get("key") for t in tags or []]
    if None in keys:
        raise invalid_parameter("Tag keys must not be null.")
    if len(set(keys)) != len(keys):
        raise invalid_parameter("Tag keys must be unique.")
    if any(k.lower().startswith("aws:") for k in keys):
        raise invalid_parameter("Tag keys with the prefix 'aws:' are reserved for AWS use.")


def mutates(op: str) -> bool:
    """Whether an AWS operation changes state (what accept-then-fail faults target)."""
    return not op.startswith(("Describe", "List", "Get"))
