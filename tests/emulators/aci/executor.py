"""Execute mode: each container's command runs as a local process (the kit's ``ProcessRunner``).

The image is ignored. The container's environment is its
``environmentVariables`` (``value`` or ``secureValue``) over a minimal host
base, plus the ``HOSTNAME`` ACI sets; nothing else of the test process leaks
in. Output lines become the container's logs, with the time they were read.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..kit import ProcessRunner, StartFailure, container_environment
from .groups import Container, ContainerGroup

ExitHandler = Callable[[ContainerGroup, Container, int, int, float], None]


class Executor:
    def __init__(self, workdir: str, on_exit: ExitHandler, lock):
        self._runner = ProcessRunner(workdir, self._line, self._exit)
        self._on_exit, self._lock = on_exit, lock
        self._runs: dict[str, tuple[ContainerGroup, Container, int]] = {}

    @staticmethod
    def _key(group: ContainerGroup, container: Container, run: int) -> str:
        return f"{group.id}/containers/{container.name}#{run}"

    def start(self, group: ContainerGroup, container: Container) -> None:
        if not container.command:
            raise StartFailure("the emulator cannot run an image's default command: give the container a command")
        key = self._key(group, container, container.run)
        self._runs[key] = (group, container, container.run)
        env = container_environment({"HOSTNAME": f"{group.name}-{container.name}"}, container.env)
        self._runner.start(key, container.command, env)

    def terminate(self, group: ContainerGroup, container: Container, grace_s: float) -> bool:
        return self._runner.terminate(self._key(group, container, container.run), grace_s)

    def _line(self, key: str, line: str) -> None:
        with self._lock:
            group, container, run = self._runs[key]
            if run == container.run:
                container.output.append((time.time(), line))

    def _exit(self, key: str, exit_code: int, at: float) -> None:
        with self._lock:
            group, container, run = self._runs.pop(key)
            self._on_exit(group, container, run, exit_code, at)

    def shutdown(self) -> None:
        self._runner.shutdown()
