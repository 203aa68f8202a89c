"""The local provider: flow runs as supervised subprocesses on the dispatcher's host.

Exports are loaded lazily: ``python -m providers.local.supervisor`` imports this
package, and the supervisor must start without importing Prefect.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from providers.lazy import lazy_exports

if TYPE_CHECKING:
    from providers.local.config import (
        LocalJobConfiguration,
        LocalSettings,
        LocalVariables,
    )
    from providers.local.provider import LocalProvider

__all__ = ["LocalJobConfiguration", "LocalProvider", "LocalSettings", "LocalVariables"]

_MODULE_OF = {
    "LocalJobConfiguration": "providers.local.config",
    "LocalSettings": "providers.local.config",
    "LocalVariables": "providers.local.config",
    "LocalProvider": "providers.local.provider",
}


__getattr__ = lazy_exports(__name__, _MODULE_OF)
