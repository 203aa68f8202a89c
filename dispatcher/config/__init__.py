"""The configuration file: its model (``model``), reading it (``file``), and one line per problem (``problems``)."""

from dispatcher.config.file import ConfigError
from dispatcher.config.model import (
    MANAGED_LIMITS,
    PUSH_LIMITS,
    DispatcherConfig,
    Limits,
    LoopConfig,
    PoolConfig,
    ServiceConfig,
    WorkspaceConfig,
    default_ledger_dsn,
    load_config,
)

__all__ = [
    "MANAGED_LIMITS", "PUSH_LIMITS", "ConfigError", "DispatcherConfig", "Limits", "LoopConfig", "PoolConfig",
    "ServiceConfig", "WorkspaceConfig", "default_ledger_dsn", "load_config",
]
