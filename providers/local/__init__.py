"""The local provider: flow runs as supervised subprocesses on the dispatcher's host.

Exports are loaded lazily: ``python -m providers.local.supervisor`` imports this
package, and the supervisor must start without importing Prefect.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from providers.local.config import LocalJobConfiguration, LocalSettings, LocalVariables
    from providers.local.provider import LocalProvider

__all__ = ["LocalJobConfiguration", "LocalProvider", "LocalSettings", "LocalVariables"]

_MODULE_OF = {
    "LocalJobConfiguration": "providers.local.config",
    "LocalSettings": "providers.local.config",
    "LocalVariables": "providers.local.config",
    "LocalProvider": "providers.local.provider",
}


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_MODULE_OF[name]), name)
