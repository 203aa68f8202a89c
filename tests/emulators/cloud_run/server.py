"""``CloudRunEmulator``: serves the emulated Cloud Run Admin API v2 on 127.0.0.1."""

from __future__ import annotations

import os

from ..kit import Emulator, Realism, RunDefaults, poll_until, resolve_realism
from .auth import Auth, TokenEndpoint
from .backend import Backend, Limits
from .faults import CloudRunFaultDice, Faults
from .lifecycle import Timings
from .networks import Networks
from .protocol import RestProtocol
from .realistic import CLOUD_RUN_PROFILE
from .resources import DONE, Execution, Job


class CloudRunEmulator(Emulator):
    """A Cloud Run Admin API v2 endpoint: ``ClientOptions(api_endpoint=emu.endpoint_url)``.

    ``execute=True`` runs each task attempt's ``command + args`` locally with
    the merged env; otherwise an attempt runs ``default_run_s`` (or its
    ``EMULATOR_RUN_SECONDS`` env var) and exits ``default_exit_code`` (or
    ``EMULATOR_EXIT_CODE``). Knobs and introspection shared with every
    emulator (``faults``, ``calls``, ``permissions``, ``errors``,
    ``reset_calls()``, lifecycle) come from the kit's ``Emulator``.
    """

    faults: Faults
    dice: CloudRunFaultDice

    def __init__(self, project: str = "emulated-project", region: str = "us-central1", execute: bool = False,
                 faults: Faults | None = None, *, project_number: str = "123456789012",
                 job_ready_s: float | None = None, pending_s: float | None = None, default_run_s: float = 0.1,
                 default_exit_code: int = 0, retry_delay_s: float | None = None, cancel_s: float | None = None,
                 stop_grace_s: float | None = None, max_jobs: int = 1000, retained_executions: int = 1000,
                 auth: Auth | None = None, workdir: str | None = None, validate_responses: bool = True,
                 tick_s: float = 0.01, realistic: bool | float | Realism | None = None):
        """``realistic``: ``True``/``Realism(...)`` for the Admin API quotas, the job-run quota, VPC checks and
        Cloud Run phase times scaled by the time factor (``realistic.py``; None: ``EMULATOR_REALISTIC``
        decides). Phase times given explicitly win over realistic ones."""
        realism = resolve_realism(realistic)
        super().__init__(CloudRunFaultDice(faults if faults is not None else Faults()), tick_s=tick_s,
                         realism=realism, profile=CLOUD_RUN_PROFILE)
        phases = CLOUD_RUN_PROFILE.phases(realism) if realism else {}

        def phase(given: float | None, name: str, default: float) -> float:
            return given if given is not None else phases.get(name, default)

        timings = Timings(phase(job_ready_s, "job_ready", 0.0), phase(pending_s, "pending", 0.03),
                          phase(retry_delay_s, "retry_delay", 0.01), phase(cancel_s, "cancel", 0.02),
                          phase(stop_grace_s, "stop_grace", 2.0))
        self.project, self.region, self.project_number, self.execute = project, region, project_number, execute
        self.auth = auth or Auth()
        """Who may call: ``emu.auth.required = True``, ``emu.auth.denied_permissions.add("run.jobs.run")``."""
        self.tokens = TokenEndpoint()
        self.networks = Networks(project, region)
        """VPC networks, subnetworks, connectors (checked in realistic mode): ``emu.networks.add_connector(...)``."""
        self.backend = Backend(
            project_number=project_number, dice=self.dice, timings=timings,
            defaults=RunDefaults(default_run_s, default_exit_code), limits=Limits(max_jobs, retained_executions),
            execute=execute, workdir=workdir or os.getcwd(), networks=self.networks)
        self.protocol = RestProtocol(self.backend, self.dice, self.call_log, self.errors, self.auth, self.tokens,
                                     validate_responses)

    def tick(self) -> None:
        self.backend.tick()

    def shutdown(self) -> None:
        self.backend.shutdown()  # kills executed task processes

    # -- Cloud Run introspection ------------------------------------------------------------------

    @property
    def parent(self) -> str:
        """``projects/{project}/locations/{region}``: the parent of jobs and operations."""
        return f"projects/{self.project}/locations/{self.region}"

    @property
    def token_uri(self) -> str:
        """Where a service-account key's ``token_uri`` should point to get tokens from the emulator."""
        return self.endpoint_url + "/token"

    @property
    def jobs(self) -> dict[str, Job]:
        """Snapshot ``{job name: Job}`` of the jobs that exist."""
        with self.backend.lock:
            return dict(self.backend.jobs)

    @property
    def executions(self) -> dict[str, Execution]:
        """Snapshot ``{execution name: Execution}`` of the executions that exist (not deleted or pruned)."""
        with self.backend.lock:
            return dict(self.backend.executions)

    def wait_for_execution(self, name: str, timeout: float = 10.0) -> Execution:
        """Block until the execution is done (succeeded, failed or cancelled); returns it."""
        def probe() -> Execution | None:
            with self.backend.lock:
                self.backend.tick()
                ex = self.backend.executions.get(name)
                if ex is None:
                    raise KeyError(f"{name} does not exist (deleted?)")
                return ex if ex.phase == DONE else None

        done = poll_until(probe, timeout)
        if done is None:
            raise TimeoutError(f"{name} is still {self.executions[name].phase}")
        return done
