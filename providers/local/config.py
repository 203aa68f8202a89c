"""Job configuration, job variables and settings of the local provider.

Field names mirror Prefect's Process worker (``working_dir``, ``stream_output``)
so a deployment from a Process pool moves to a ``local:push`` pool unchanged;
``cpu`` and ``memory`` are the limits a Process pool cannot express.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from prefect.workers.base import BaseVariables
from pydantic import BaseModel, Field, field_validator

from providers.jobconfig import JobConfiguration
from providers.paths import STATE_HOME

DEFAULT_STATE_DIR = STATE_HOME / "local"
DEFAULT_ENVS_DIR = STATE_HOME / "local-envs"
DEFAULT_MEMORY_MIB = 2048
DEFAULT_CPU = 1.0

_STREAM_OUTPUT_DESCRIPTION = (
    "If enabled, the flow run process's output is kept in the run directory's output.log "
    "(its last lines are shown when a run crashes); otherwise it is discarded."
)
_WORKING_DIR_DESCRIPTION = (
    "If provided, flow run processes are started in this existing directory. "
    "Otherwise they start in their own run directory under the dispatcher's state directory."
)
_CPU_DESCRIPTION = (
    "vCPUs for the flow run process. Enforced by pinning the process to ceil(cpu) CPUs "
    "when the machine has more; not enforced when it has fewer."
)
# Why RLIMIT_AS: it is the only per-process memory limit Linux enforces without
# privileges (RLIMIT_RSS is ignored since Linux 2.6, cgroups need root or systemd
# delegation). It caps *virtual* address space, not resident memory: every
# reservation counts even if never touched - thread stacks (8 MiB each), glibc's
# per-thread malloc arenas (64 MiB each), mapped shared libraries and files. A Python
# process therefore hits the cap before its RSS reaches it, and then sees MemoryError
# (or a failed thread/mmap) rather than being OOM-killed. Prefect itself needs
# about 100 MiB of address space before the flow allocates anything, which is why
# the provider sets MALLOC_ARENA_MAX=2 for capped runs (unless the env sets it).
# The cap is per process: each subprocess the flow starts gets its own, not a
# share of one.
_MEMORY_DESCRIPTION = (
    "Memory limit in MiB for the flow run process, enforced as a cap on its virtual "
    "address space (RLIMIT_AS). Virtual memory exceeds resident memory, so leave headroom: "
    "allocations beyond the cap fail with MemoryError."
)


class LocalJobConfiguration(JobConfiguration):
    """A flow run executed as a local subprocess (the Process worker's fields plus limits)."""

    stream_output: bool = Field(default=True, description=_STREAM_OUTPUT_DESCRIPTION)
    working_dir: Optional[Path] = Field(default=None, description=_WORKING_DIR_DESCRIPTION)
    cpu: Optional[float] = Field(default=None, description=_CPU_DESCRIPTION)
    memory: Optional[int] = Field(default=None, description=_MEMORY_DESCRIPTION)


class LocalVariables(BaseVariables):
    """Job variables of a local:push work pool (the variables section of its base job template)."""

    stream_output: bool = Field(default=True, title="Stream Output", description=_STREAM_OUTPUT_DESCRIPTION)
    working_dir: Optional[Path] = Field(default=None, title="Working Directory", description=_WORKING_DIR_DESCRIPTION)
    cpu: Optional[float] = Field(default=DEFAULT_CPU, title="CPU", description=_CPU_DESCRIPTION, gt=0)
    memory: Optional[int] = Field(
        default=DEFAULT_MEMORY_MIB, title="Memory (MiB)", description=_MEMORY_DESCRIPTION, ge=64
    )


class LocalSettings(BaseModel):
    """Dispatcher-side settings of the local provider (not per deployment)."""

    state_dir: Path = Field(
        default=DEFAULT_STATE_DIR,
        validate_default=True,  # so the default's "~" is expanded too
        description="Where run directories (pids, exit records, output) are kept; created 0700.",
    )
    stop_grace_s: float = Field(
        default=10, ge=0, description="Seconds between SIGTERM and SIGKILL when a run is stopped."
    )
    retention_s: float = Field(
        default=86400,
        gt=0,
        description=(
            "Seconds a run directory is kept after its run ended (then deleted with its output.log). "
            "Keep it longer than the longest dispatcher outage: a run whose directory is gone cannot be metered."
        ),
    )
    envs_dir: Path = Field(
        default=DEFAULT_ENVS_DIR,
        description="Where the virtual environments of prefect:managed runs' pip_packages are kept, one per "
        "package set and Python version, reused by every run of that set (providers/local/packages.py).",
    )
    python: str = Field(
        default=sys.executable,
        description="Interpreter that runs the supervisor (standard library only; any Python 3.10+ works).",
    )

    warm_engine: bool = Field(
        default=True,
        description=(
            "Start runs whose command is Prefect's default from a warm engine: a process per dispatcher that "
            "imported Prefect once and forks each run's supervisor and engine, instead of starting "
            "`prefect flow-run execute` (seconds of imports per run). Isolation, limits, stopping and metering "
            "are the same; runs with another command or interpreter start cold. false: every run starts cold."
        ),
    )

    @field_validator("state_dir", "envs_dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()
