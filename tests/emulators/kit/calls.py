"""What the clients asked for: calls per operation, and the permissions those calls needed."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

PermissionObserver = Callable[[tuple[str, ...]], None]
_observers: list[PermissionObserver] = []


def observe_permissions(observer: PermissionObserver) -> Callable[[], None]:
    """Call ``observer(names)`` on every ``record_permission`` of every emulator, from the emulator's
    own threads, until the returned function is called. Unlike ``permissions`` this survives
    ``reset_calls()`` and the emulator's end: a test session's least-privilege check collects
    what the whole provider suite needed through it (tests/least_privilege.py)."""
    _observers.append(observer)
    return lambda: _observers.remove(observer)


class CallLog:
    """Thread-safe record of an emulator's traffic.

    ``counts`` counts every request by operation name, faulted or not (what a
    test means by "how many RunTask calls did the provider make").
    ``permissions`` counts the cloud permission each recognised operation
    needs, spelled as the cloud's IAM spells it (``ecs:RunTask``,
    ``run.jobs.run``, ``Microsoft.ContainerInstance/containerGroups/write``),
    so a least-privilege test can compare it with the role it grants.
    Both are live ``Counter`` objects: a test compares them to plain dicts.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.permissions: Counter[str] = Counter()

    def record(self, op: str) -> None:
        with self._lock:
            self.counts[op] += 1

    def record_permission(self, *names: str) -> None:
        """An operation that needs several permissions (say, tag-on-create) records each."""
        with self._lock:
            self.permissions.update(names)
        for observer in list(_observers):
            observer(names)

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self.permissions.clear()
