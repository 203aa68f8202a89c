"""Long-running operations: the ``Azure-AsyncOperation`` status resources the SDK poller follows.

Each create, update, start, restart or (slow) delete gets an operation id.
Its status is read off the group when asked: a deploy is Succeeded once the
group's provisioningState is, Failed with the group, Canceled if the group
was deleted meanwhile; a delete is Succeeded once the group is gone. The
status body follows the ARM RPC guidance (``id``, ``name``, ``status``,
``startTime``, ``endTime``, ``error``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from .groups import ContainerGroup, iso

IN_PROGRESS, SUCCEEDED, FAILED, CANCELED = "InProgress", "Succeeded", "Failed", "Canceled"
DEPLOY, DELETE = "deploy", "delete"


@dataclass
class Operation:
    id: str
    kind: str
    subscription: str
    location: str
    group: ContainerGroup
    started: float
    status: str = IN_PROGRESS
    ended: float | None = None
    error: dict[str, str] | None = None

    @property
    def path(self) -> str:
        return (f"/subscriptions/{self.subscription}/providers/Microsoft.ContainerInstance/locations/"
                f"{self.location}/operations/{self.id}")

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.path, "name": self.id, "status": self.status,
                               "startTime": iso(self.started)}
        if self.ended is not None:
            out["endTime"] = iso(self.ended)
        if self.error is not None:
            out["error"] = self.error
        return out


class Operations:
    def __init__(self) -> None:
        self._by_id: dict[str, Operation] = {}

    def begin(self, kind: str, group: ContainerGroup, at: float) -> Operation:
        op = Operation(str(uuid.uuid4()), kind, group.subscription, group.location, group, at)
        self._by_id[op.id] = op
        return op

    def get(self, op_id: str) -> Operation | None:
        return self._by_id.get(op_id)

    def refresh(self, op: Operation, group_exists: bool, now: float) -> Operation:
        """Settle the operation from the group's state (terminal statuses never change again)."""
        if op.status != IN_PROGRESS:
            return op
        if op.kind == DELETE:
            if not group_exists:
                op.status, op.ended = SUCCEEDED, now
        elif not group_exists:
            op.status, op.ended = CANCELED, now
        elif op.group.provisioning_state == "Succeeded":
            op.status, op.ended = SUCCEEDED, now
        elif op.group.provisioning_state == "Failed":
            op.status, op.ended = FAILED, now
            op.error = {"code": "InaccessibleImage", "message": _failure_message(op.group)}
        return op


def _failure_message(group: ContainerGroup) -> str:
    image = next((c.image for c in group.containers if c.pull_attempts), group.containers[0].image)
    return (f"The image '{image}' in container group '{group.name}' is not accessible. Please check the image and "
            "registry credential.")
