"""``AciEmulator``: serves the emulated ARM endpoint (ACI container groups, and the deployments Prefect uses)."""

from __future__ import annotations

import os
from collections.abc import Callable

from ..kit import Emulator, Realism, RunDefaults, poll_until, resolve_realism
from .backend import Backend
from .deployments import DEPLOYMENT_HANDLERS, Deployments
from .faults import AciFaultDice, Faults
from .groups import ContainerGroup
from .handlers import ACI_HANDLERS
from .lifecycle import Timings
from .networks import VirtualNetworks
from .protocol import ArmProtocol
from .realistic import ACI_PROFILE
from .rules import RegionLimits

DEFAULT_SUBSCRIPTION = "00000000-0000-4000-8000-000000000001"
DEFAULT_LOCATIONS = ("eastus", "eastus2", "westus", "westus2", "westeurope", "northeurope", "uksouth")


class AciEmulator(Emulator):
    """An ARM endpoint for the azure-mgmt SDKs: ``base_url=emu.endpoint_url`` (see ``sdk.py`` for the client).

    ``execute=True`` runs each container's command locally once it starts;
    otherwise a container runs ``default_run_s`` (or its
    ``EMULATOR_RUN_SECONDS`` env var) and exits ``default_exit_code`` (or
    ``EMULATOR_EXIT_CODE``). Knobs and introspection shared with every
    emulator (``faults``, ``calls``, ``permissions``, ``errors``,
    ``reset_calls()``, lifecycle) come from the kit's ``Emulator``.
    """

    faults: Faults
    dice: AciFaultDice

    def __init__(self, subscription_id: str = DEFAULT_SUBSCRIPTION, resource_groups: dict[str, str] | None = None,
                 execute: bool = False, faults: Faults | None = None, *, timings: Timings | None = None,
                 default_run_s: float = 0.2, default_exit_code: int = 0,
                 locations: tuple[str, ...] = DEFAULT_LOCATIONS, limits: RegionLimits | None = None,
                 list_page_size: int = 100, workdir: str | None = None, validate_responses: bool = True,
                 tick_s: float = 0.01, realistic: bool | float | Realism | None = None):
        """``realistic``: ``True``/``Realism(...)`` for ARM's buckets, ACI's create/delete and region quotas,
        subnet checks and ACI phase times scaled by the time factor (``realistic.py``; None:
        ``EMULATOR_REALISTIC`` decides). ``timings`` given explicitly win over realistic ones."""
        realism = resolve_realism(realistic)
        super().__init__(AciFaultDice(faults if faults is not None else Faults()), tick_s=tick_s,
                         realism=realism, profile=ACI_PROFILE)
        if timings is None and realism is not None:
            phase = ACI_PROFILE.phases(realism)
            timings = Timings(pending_s=phase["pending"], pull_s=phase["pull"],
                              restart_backoff_s=phase["restart_backoff"], stop_grace_s=phase["stop_grace"],
                              delete_s=phase["delete"])
        self.subscription_id = subscription_id
        self.networks = VirtualNetworks(subscription_id)
        """Virtual network subnets (checked in realistic mode): ``emu.networks.add_subnet("rg", "vnet", "aci")``."""
        self.backend = Backend(
            subscription_id, resource_groups if resource_groups is not None else {"rg": "eastus"}, locations,
            dice=self.dice, timings=timings or Timings(), defaults=RunDefaults(default_run_s, default_exit_code),
            limits=limits or RegionLimits(), execute=execute, workdir=workdir or os.getcwd(),
            list_page_size=list_page_size, networks=self.networks)
        self.deployments = Deployments(self.backend, self.call_log)
        """ARM template deployments (``Microsoft.Resources/deployments``), as Prefect's ACI worker makes them."""
        self.protocol = ArmProtocol(self.backend, self.dice, self.call_log, self.errors,
                                    {**ACI_HANDLERS, **DEPLOYMENT_HANDLERS}, validate_responses)

    def tick(self) -> None:
        self.backend.tick()

    def shutdown(self) -> None:
        self.backend.shutdown()  # stops executed container processes

    # -- ACI introspection and set-up -----------------------------------------------------------

    @property
    def timings(self) -> Timings:
        """Mutable: a test may change phase lengths or ``lro_retry_after_s`` while the emulator runs."""
        return self.backend.timings

    def add_resource_group(self, name: str, location: str = "eastus") -> None:
        with self.backend.lock:
            self.backend.resource_groups[name.lower()] = (name, location)

    @property
    def groups(self) -> dict[str, ContainerGroup]:
        """Snapshot ``{"rg/name": ContainerGroup}`` of the groups that exist now."""
        with self.backend.lock:
            return {f"{g.resource_group}/{g.name}": g for g in self.backend.groups.values()}

    @property
    def deleted_groups(self) -> list[ContainerGroup]:
        with self.backend.lock:
            return list(self.backend.deleted)

    def group(self, name: str, resource_group: str = "rg") -> ContainerGroup:
        with self.backend.lock:
            found = self.backend.find(resource_group, name)
        if found is None:
            raise KeyError(f"no container group {resource_group}/{name}")
        return found

    def wait_for(self, name: str, predicate: Callable[[ContainerGroup], bool], resource_group: str = "rg",
                 timeout: float = 10.0, what: str = "the condition") -> ContainerGroup:
        """Block until ``predicate(group)`` holds (ticking the backend meanwhile)."""
        last: list[ContainerGroup | None] = [None]

        def probe() -> ContainerGroup | None:
            self.backend.tick()
            with self.backend.lock:
                group = last[0] = self.backend.find(resource_group, name)
                return group if group is not None and predicate(group) else None

        found = poll_until(probe, timeout)
        if found is None:
            state = None if last[0] is None else (last[0].provisioning_state, last[0].state)
            raise TimeoutError(f"{resource_group}/{name} never met {what}; (provisioning, state) = {state}")
        return found

    def wait_for_state(self, name: str, state: str, resource_group: str = "rg", timeout: float = 10.0
                       ) -> ContainerGroup:
        """Block until the group's ``instanceView.state`` is ``state`` (Running, Succeeded, Failed, Stopped)."""
        return self.wait_for(name, lambda g: g.state == state, resource_group, timeout, f"state {state}")
