"""Moves container groups through ACI's lifecycle on wall-clock time.

provisioningState Pending --pending_s--> Creating (each container: Pulling)
--pull_s--> Pulled, Started, container Running --all started--> Succeeded,
group state Running. A container exits (its command, or after its planned
run time) into Terminated; the restart policy decides whether it runs again
(Always; OnFailure if non-zero; Never only if the platform-restart fault
fires, as the docs warn). Once every container is done the group is
Succeeded (all exit 0, or OnFailure) or Failed. A deploy (create, PUT over an
existing group, start, restart) runs the whole sequence again, counting a
restart for every container that had run. Transitions are stamped with the
time they were due, not when the ticker noticed. All methods run under the
backend lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..kit import StartFailure
from .faults import AciFaultDice
from .groups import BACKOFF, PULLING, RUNNING, STARTING, TERMINATED, Container, ContainerGroup, State, record_event

SIGTERM_EXIT = 143  # what a container stopped by docker stop's SIGTERM reports
CANNOT_RUN_EXIT = 127  # exec of a missing binary, as the container runtime reports it


@dataclass
class Timings:
    pending_s: float = 0.02
    """Pending -> Creating: node assignment before the image pull starts."""
    pull_s: float = 0.03
    """One image pull attempt (Pulling -> Pulled)."""
    pull_attempts: int = 3
    """Failed pull attempts (with BackOff events) before the deployment is Failed."""
    restart_backoff_s: float = 0.02
    """Terminated -> running again, for a container the restart policy restarts."""
    stop_grace_s: float = 2.0
    """Executed containers: SIGTERM on stop/delete/redeploy, SIGKILL after this long."""
    delete_s: float = 0.0
    """0: DELETE answers 200 and the group is gone; > 0: 202 + async operation, gone after this long."""
    lro_retry_after_s: int = 0
    """``Retry-After`` on 201/202 LRO answers and InProgress status answers (0: the client's polling_interval)."""


class Processes(Protocol):
    """Execute mode's side of the lifecycle (``executor.py``)."""

    def start(self, group: ContainerGroup, container: Container) -> None: ...
    def terminate(self, group: ContainerGroup, container: Container, grace_s: float) -> bool: ...


class Lifecycle:
    def __init__(self, timings: Timings, dice: AciFaultDice, processes: Processes | None):
        self.timings, self._dice, self._processes = timings, dice, processes

    # -- deploys and user actions --------------------------------------------------------------

    def deploy(self, group: ContainerGroup, at: float) -> None:
        """(Re)start the whole group from image pull: create, PUT over it, start, restart."""
        for container in group.containers:
            self._halt(group, container, at)
            if container.run > 0:
                container.previous = container.current
                container.restart_count += 1
            container.current, container.output = None, []
            container.stop_requested, container.pull_attempts = False, 0
            container.phase, container.phase_since = PULLING, at
        group.provisioning_state, group.state, group.phase_since = "Pending", "Pending", at

    def stop(self, group: ContainerGroup, at: float) -> None:
        """POST stop: every container ends (SIGTERM if executed), the group is Stopped and stays so."""
        group.state, group.provisioning_state = "Stopped", "Succeeded"
        for container in group.containers:
            container.stop_requested = True
            if container.phase == RUNNING:
                record_event(container.events, "Killing", f"Stopping container {container.name}", at)
                if self._processes is None or not self._processes.terminate(group, container,
                                                                            self.timings.stop_grace_s):
                    self.container_exited(group, container, container.run, SIGTERM_EXIT, at)
            elif container.phase != TERMINATED:
                container.phase = TERMINATED
                container.current = State("Terminated", finish=at, detail="Killed")

    def _halt(self, group: ContainerGroup, container: Container, at: float) -> None:
        """Kill a running process before a redeploy; its exit is then stale and ignored."""
        if container.phase == RUNNING:
            record_event(container.events, "Killing", f"Killing container {container.name} to redeploy it", at)
            if self._processes is not None:
                self._processes.terminate(group, container, 0)

    # -- driven by the ticker ------------------------------------------------------------------

    def advance(self, group: ContainerGroup, now: float) -> None:
        if group.state == "Stopped" or group.provisioning_state == "Failed":
            return
        if group.provisioning_state == "Pending":
            due = group.phase_since + self.timings.pending_s
            if now < due:
                return
            group.provisioning_state = "Creating"
            for container in group.containers:
                container.phase_since = due
                record_event(container.events, "Pulling", f'pulling image "{container.image}"', due)
        steps: dict[str, Callable[[ContainerGroup, Container, float], bool]] = {
            PULLING: self._pulling, RUNNING: self._running, BACKOFF: self._backoff}
        for container in group.containers:
            while container.phase in steps and steps[container.phase](group, container, now):
                pass
        if group.provisioning_state == "Creating" and all(c.phase in (RUNNING, BACKOFF, TERMINATED)
                                                              for c in group.containers):
            group.provisioning_state, group.state = "Succeeded", "Running"
            self._settle(group)

    def _pulling(self, group: ContainerGroup, container: Container, now: float) -> bool:
        due = container.phase_since + self.timings.pull_s
        if now < due:
            return False
        if group.pull_fails:
            self._pull_failed(group, container, due)
            return container.phase == PULLING
        record_event(container.events, "Pulled", f'Successfully pulled image "{container.image}"', due)
        self._start(group, container, due)
        return True

    def _pull_failed(self, group: ContainerGroup, container: Container, at: float) -> None:
        image = container.image
        record_event(container.events, "Failed", f'Failed to pull image "{image}": rpc error: code = NotFound desc '
                                                 f'= failed to pull and unpack image "{image}": not found', at,
                     "Warning")
        record_event(container.events, "BackOff", f'Back-off pulling image "{image}"', at)
        container.current = State("Waiting", detail="ImagePullBackOff")
        container.pull_attempts += 1
        if container.pull_attempts < self.timings.pull_attempts:
            container.phase_since = at
            record_event(container.events, "Pulling", f'pulling image "{image}"', at)
            return
        container.phase = STARTING  # parked: the deployment has failed, nothing moves it on
        group.provisioning_state, group.state = "Failed", "Failed"
        record_event(group.events, "Failed", f"Failed to pull image \"{image}\" after {container.pull_attempts} "
                                             "attempts; the container group deployment failed.", at, "Warning")

    def _start(self, group: ContainerGroup, container: Container, at: float) -> None:
        container.run += 1
        container.phase, container.phase_since = RUNNING, at
        container.current = State("Running", start=at)
        try:
            if self._processes is not None:
                self._processes.start(group, container)
        except StartFailure as exc:
            record_event(container.events, "Failed", f'Error: failed to start container "{container.name}": '
                                                     f"{exc}: unknown", at, "Warning")
            self.container_exited(group, container, container.run, CANNOT_RUN_EXIT, at)
            return
        record_event(container.events, "Started", f"Started container {container.name}", at)

    def _running(self, group: ContainerGroup, container: Container, now: float) -> bool:
        if self._processes is not None:
            return False  # the process reports its own exit
        exit_at = container.phase_since + container.plan.run_s
        if now < exit_at:
            return False
        self.container_exited(group, container, container.run, container.plan.exit_code, exit_at)
        return True

    def _backoff(self, group: ContainerGroup, container: Container, now: float) -> bool:
        due = container.phase_since + self.timings.restart_backoff_s
        if now < due:
            return False
        container.previous = container.current
        container.restart_count += 1
        self._start(group, container, due)
        return True

    # -- exits ---------------------------------------------------------------------------------

    def container_exited(self, group: ContainerGroup, container: Container, run: int, code: int, at: float) -> None:
        """A run of the container ended; ``run`` tells a stale exit (before a redeploy) from the current one."""
        if run != container.run or container.phase != RUNNING:
            return
        started = container.current.start if container.current else None
        detail = "Killed" if container.stop_requested else ("Completed" if code == 0 else "Error")
        container.current = State("Terminated", start=started, finish=at, exit_code=code, detail=detail)
        container.phase, container.phase_since = TERMINATED, at
        if not container.stop_requested and self._restarts(group, code):
            container.phase = BACKOFF
        self._settle(group)

    def _restarts(self, group: ContainerGroup, code: int) -> bool:
        policy = group.restart_policy
        if policy == "Always" or (policy == "OnFailure" and code != 0):
            return True
        return policy == "Never" and code != 0 and self._dice.platform_restart()

    @staticmethod
    def _settle(group: ContainerGroup) -> None:
        """Group state once every container is done: Succeeded or Failed (Never), Succeeded (OnFailure)."""
        if group.state == "Stopped" or group.provisioning_state != "Succeeded":
            return
        if not all(c.phase == TERMINATED for c in group.containers):
            return
        clean = all(c.current is not None and c.current.exit_code == 0 for c in group.containers)
        group.state = "Succeeded" if clean or group.restart_policy == "OnFailure" else "Failed"
