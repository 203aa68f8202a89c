"""The job configurations watched runs keep: only what watching reads, one object per distinct configuration.

A resolved job configuration is about 10 KiB of Python objects (the task definition, network
settings, credentials, the run's environment...), and at 10,000 runs in flight one each was
most of the dispatcher's memory. Watching reads a configuration only through the provider's
``status_many``, ``stop``, ``last_log_lines``, ``release`` and ``start_timeout_s`` (credentials,
cluster or location, container name, log settings), never the per-run parts: the environment,
the labels and the flow run's name, which are used to build the submission. Without them,
the runs of one deployment have equal configurations, and share one object.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from collections.abc import Callable, Iterable

from prefect.workers.base import BaseJobConfiguration

log = logging.getLogger(__name__)
#: Fields of every job configuration that only the submission reads (see the module docstring).
PER_RUN_FIELDS = {"env": {}, "labels": {}, "name": None}


def for_watching(configuration: BaseJobConfiguration) -> BaseJobConfiguration:
    """Pure: the configuration without its per-run fields."""
    return configuration.model_copy(update=PER_RUN_FIELDS)


class SharedConfigurations:
    """Equal watching configurations, as one object; forgotten once no watched run holds it.

    ``in_use`` returns the configurations watched runs hold now; it is asked each time the
    number kept has doubled since the last time, so forgetting costs O(1) per run, amortised.
    """

    def __init__(self, in_use: Callable[[], Iterable[BaseJobConfiguration]]) -> None:
        self._in_use = in_use
        self._by_content: dict[bytes, BaseJobConfiguration] = {}
        self._prune_at = 64

    def shared(self, configuration: BaseJobConfiguration) -> BaseJobConfiguration:
        slim = for_watching(configuration)
        try:
            # Secret values included (a dump keeps SecretStr objects, which pickle with their value):
            # two credential sets must never share one object.
            key = hashlib.sha256(pickle.dumps((type(slim), slim.model_dump()))).digest()
        except Exception:  # noqa: BLE001 - something unpicklable: kept unshared, still slim
            log.debug("a %s cannot be shared", type(slim).__name__, exc_info=True)
            return slim
        found = self._by_content.setdefault(key, slim)
        if len(self._by_content) >= self._prune_at:
            self._prune()
        return found

    def __len__(self) -> int:
        return len(self._by_content)

    def _prune(self) -> None:
        held = {id(configuration) for configuration in self._in_use()}
        self._by_content = {key: cfg for key, cfg in self._by_content.items() if id(cfg) in held}
        self._prune_at = max(64, 2 * len(self._by_content))
