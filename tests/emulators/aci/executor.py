"""Execute mode: each container's command runs as a local process (the kit's ``ProcessRunner``).

The image is ignored, except that an official Prefect image's entrypoint
(``/opt/prefect/entrypoint.sh``, which installs EXTRA_PIP_PACKAGES and execs its
arguments) is stood in for by running its arguments (nothing is installed). The container's environment is its
``environmentVariables`` (``value`` or ``secureValue``) over a minimal host
base, plus the ``HOSTNAME`` ACI sets; nothing else of the test process leaks
in. Output lines become the container's logs, with the time they were read.
Each run of a container (a restart starts a new one) is its own process: a
late line of an earlier run never reaches the current run's log.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from ..kit import ProcessRunner, StartFailure, container_environment
from .groups import Container, ContainerGroup

ExitHandler = Callable[[ContainerGroup, Container, int, int, float], None]
"""``on_exit(group, container, run, exit_code, exited_at)``, called under the backend lock."""
OFFICIAL_PREFECT_IMAGE = re.compile(r"^(docker\.io/)?prefecthq/prefect(-client)?:")
PREFECT_ENTRYPOINT = "/opt/prefect/entrypoint.sh"


class Executor:
    def __init__(self, workdir: str, on_exit: ExitHandler, lock):
        self._runner = ProcessRunner(workdir)
        self._on_exit, self._lock = on_exit, lock

    @staticmethod
    def _key(group: ContainerGroup, container: Container, run: int) -> str:
        return f"{group.id}/containers/{container.name}#{run}"

    def start(self, group: ContainerGroup, container: Container) -> None:
        """Start the container's current run; ``StartFailure`` (the runtime's words) if it cannot."""
        if not container.command:
            raise StartFailure("the emulator cannot run an image's default command: give the container a command")
        run = container.run
        env = container_environment({"HOSTNAME": f"{group.name}-{container.name}"}, container.env)
        command = container.command
        if command[0] == PREFECT_ENTRYPOINT and OFFICIAL_PREFECT_IMAGE.match(container.image) and command[1:]:
            command = command[1:]  # the entrypoint's `exec "$@"`
        self._runner.start(self._key(group, container, run), command, env,
                           on_line=lambda line: self._line(container, run, line),
                           on_exit=lambda code, at: self._exit(group, container, run, code, at))

    def terminate(self, group: ContainerGroup, container: Container, grace_s: float) -> bool:
        return self._runner.terminate(self._key(group, container, container.run), grace_s)

    def _line(self, container: Container, run: int, line: str) -> None:
        with self._lock:
            if run == container.run:
                container.output.append((time.time(), line))

    def _exit(self, group: ContainerGroup, container: Container, run: int, exit_code: int, at: float) -> None:
        with self._lock:
            self._on_exit(group, container, run, exit_code, at)

    def shutdown(self) -> None:
        self._runner.shutdown()
