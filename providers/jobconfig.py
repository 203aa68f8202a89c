"""The base of every provider's job configuration: Prefect's, with its settings environment computed once.

Prefect's ``BaseJobConfiguration.prepare_for_flow_run`` starts each run's environment from
``get_current_settings().to_environment_variables()``, which serialises every Prefect setting:
measured at 30 ms to 280 ms of CPU per run on a busy 2-core machine, the largest single cost of
a dispatch. The dispatcher runs each workspace under one long-lived settings object, so the
result is kept per settings object (the object itself is kept alive with it, so its id cannot
be reused) and copied for each run.
"""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock
from typing import Any

from prefect.settings import get_current_settings
from prefect.workers.base import BaseJobConfiguration

_MAX_SETTINGS_KEPT = 32  # workspaces times a few: settings objects in use at once
_environments: OrderedDict[int, tuple[Any, dict[str, str]]] = OrderedDict()
_lock = Lock()


def settings_environment(settings: Any) -> dict[str, str]:
    """``settings.to_environment_variables(exclude_unset=True)``, computed once per settings object."""
    key = id(settings)
    with _lock:
        found = _environments.get(key)
        if found is not None and found[0] is settings:
            _environments.move_to_end(key)
            return dict(found[1])
    environment = settings.to_environment_variables(exclude_unset=True)
    with _lock:
        _environments[key] = (settings, environment)
        while len(_environments) > _MAX_SETTINGS_KEPT:
            _environments.popitem(last=False)
    return dict(environment)


class JobConfiguration(BaseJobConfiguration):
    """What every provider's job configuration derives from (instead of Prefect's class directly)."""

    @classmethod
    def _base_environment(cls) -> dict[str, str]:
        return settings_environment(get_current_settings())
