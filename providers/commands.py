"""The flow run's command, shared by every provider."""

from __future__ import annotations

import shlex

from prefect.workers.base import BaseJobConfiguration

from providers.errors import InvalidJobConfiguration


def command_argv(configuration: BaseJobConfiguration) -> list[str]:
    """The command as an argv list. Prefect keeps it as one string; split it like a shell would.

    No command means the worker default (``prefect flow-run execute``), as in Prefect.
    """
    command = configuration.command or BaseJobConfiguration._base_flow_run_command()
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise InvalidJobConfiguration("command", command, f"a shell-style command line ({exc})") from None
    if not argv:
        raise InvalidJobConfiguration("command", command, "a non-empty command")
    return argv
