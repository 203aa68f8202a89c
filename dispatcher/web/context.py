"""What the usage API and page read from: the configuration, the ledger, the tokens, a clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from fastapi import HTTPException

from dispatcher.clock import utcnow
from dispatcher.config import DispatcherConfig, WorkspaceConfig
from dispatcher.ledger import Ledger, usage_month
from dispatcher.web.auth import TokenBook

MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
DAY_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"


@dataclass
class UsageContext:
    config: DispatcherConfig
    ledger: Ledger
    clock: Callable[[], datetime] = utcnow
    tokens: TokenBook = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = TokenBook(self.config.api)

    def workspace(self, name: str) -> WorkspaceConfig:
        """The configured workspace (called after the token was checked: a 404 tells only a reader it is absent)."""
        for workspace in self.config.workspaces:
            if workspace.name == name:
                return workspace
        raise HTTPException(404, "no such workspace")

    def month(self, month: str | None) -> str:
        return month or usage_month(self.clock())
