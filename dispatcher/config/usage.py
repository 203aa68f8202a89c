"""Configuration of usage reading: budgets and their policy, API tokens, compute prices.

Kept apart from ``model.py`` (the dispatch configuration) so each stays short; ``model.py``
puts these sections in their places (``workspaces[].budget``, ``api``, ``prices``).
"""

from __future__ import annotations

import enum
import hashlib
import re

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
#: Shorter bearer tokens can be guessed; 16 characters of a random token is 80+ bits.
MIN_TOKEN_LENGTH = 16


class BudgetMode(str, enum.Enum):
    """What happens to a new run once its budget is used up."""

    REJECT = "reject"  # Failed, named ComputeLimitReached
    HOLD = "hold"  # stays Scheduled (AwaitingComputeBudget) and starts by itself once there is budget


class RunningRuns(str, enum.Enum):
    """What happens to runs already running when their budget is used up."""

    FINISH = "finish"  # they run to their end and are metered (the month may end a little over budget)
    STOP = "stop"  # they are stopped and marked Failed, named ComputeLimitReached


class BudgetPolicy(BaseModel):
    """How a workspace's monthly budgets (its own and its pools') are enforced and alerted on."""

    model_config = ConfigDict(extra="forbid")

    mode: BudgetMode = Field(default=BudgetMode.REJECT, description="reject: new runs fail; hold: they wait Scheduled.")
    running_runs: RunningRuns = Field(
        default=RunningRuns.FINISH, description="finish: running runs end on their own; stop: they are stopped."
    )
    alert_thresholds_pct: list[int] = Field(
        default_factory=lambda: [80, 100],
        description="Percentages of a budget whose crossing emits a Prefect event, once per month each.",
    )

    @field_validator("alert_thresholds_pct")
    @classmethod
    def _sensible_thresholds(cls, thresholds: list[int]) -> list[int]:
        if any(not 1 <= pct <= 1000 for pct in thresholds):
            raise ValueError("each threshold must be a percentage from 1 to 1000")
        if len(set(thresholds)) != len(thresholds):
            raise ValueError("thresholds must not repeat")
        return sorted(thresholds)


class ApiRole(str, enum.Enum):
    READ = "read"  # every GET of its workspaces: usage, runs, budget, CSV, the page
    ADMIN = "admin"  # read, and changing a month's budget


class ApiToken(BaseModel):
    """One bearer token of the usage API: a name for logs, the secret (or its hash), what it may read."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="Shown in logs instead of the token (who is calling).")
    token: SecretStr | None = Field(default=None, description="The token, as a ${VAR} reference.")
    sha256: str | None = Field(default=None, description="Or the hex sha256 of the token (no secret in the file).")
    workspaces: list[str] = Field(min_length=1, description="Workspace names it may read; ['*'] for all.")
    role: ApiRole = Field(default=ApiRole.READ, description="read, or admin (read and change budgets).")

    @field_validator("token")
    @classmethod
    def _long_enough(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and len(token.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(f"must be at least {MIN_TOKEN_LENGTH} characters (e.g. `openssl rand -hex 32`)")
        return token

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, digest: str | None) -> str | None:
        if digest is not None and not _SHA256.match(digest.lower()):
            raise ValueError("must be 64 hex characters: the output of `printf %s \"$TOKEN\" | sha256sum`")
        return None if digest is None else digest.lower()

    @model_validator(mode="after")
    def _one_secret(self) -> ApiToken:
        if (self.token is None) == (self.sha256 is None):
            raise ValueError("set token (a ${VAR} reference) or sha256, exactly one")
        return self

    def digest(self) -> bytes:
        """The sha256 the presented token is compared with (constant time, see web/auth.py)."""
        if self.token is not None:
            return hashlib.sha256(self.token.get_secret_value().encode()).digest()
        return bytes.fromhex(self.sha256 or "")

    def allows(self, workspace: str) -> bool:
        return "*" in self.workspaces or workspace in self.workspaces


class ApiConfig(BaseModel):
    """Who may read usage over HTTP, and whether /metrics needs a token."""

    model_config = ConfigDict(extra="forbid")

    tokens: list[ApiToken] = Field(default_factory=list, description="Bearer tokens of the usage API and page.")
    metrics_token: SecretStr | None = Field(
        default=None, description="If set, /metrics answers only `Authorization: Bearer <this>` (a ${VAR} reference)."
    )

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, token: object) -> object:
        """``${METRICS_TOKEN:-}`` left empty: /metrics stays open."""
        return None if token == "" else token

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token_long_enough(cls, token: SecretStr | None) -> SecretStr | None:
        return ApiToken._long_enough(token)


class ProviderPrice(BaseModel):
    """On-demand list price of one provider's compute, per hour of one vCPU and of one GiB of memory."""

    model_config = ConfigDict(extra="forbid")

    vcpu_hour: float = Field(ge=0, description="Price of one vCPU for one hour.")
    memory_gib_hour: float = Field(ge=0, description="Price of one GiB of memory for one hour.")
    source: str = Field(default="configuration", description="Where the figures come from (shown in reports).")


#: Published on-demand list prices (Linux/x86, no free tier, no discounts), from the pages named in
#: ``source`` on the date given there; regions differ by up to ~30 %: override them in ``prices.providers``.
DEFAULT_PRICES: dict[str, ProviderPrice] = {
    "ecs": ProviderPrice(vcpu_hour=0.04048, memory_gib_hour=0.004445,
                         source="AWS Fargate, us-east-1, Linux/x86 (aws.amazon.com/fargate/pricing), 2026-11-30"),
    "cloud-run": ProviderPrice(vcpu_hour=0.0648, memory_gib_hour=0.0072,
                               source="Cloud Run jobs, Tier 1 (cloud.google.com/run/pricing), 2026-11-30"),
    "aci": ProviderPrice(vcpu_hour=0.04068, memory_gib_hour=0.00432,
                         source="Azure Container Instances, East US, Linux, $0.0000113/vCPU-s and $0.0000012/GB-s "
                                "(azure.microsoft.com/pricing/details/container-instances), last verified 2024"),
    "local": ProviderPrice(vcpu_hour=0.0, memory_gib_hour=0.0, source="the dispatcher's own host: not priced"),
}


class PriceTable(BaseModel):
    """Prices used to estimate what metered compute costs; defaults from ``DEFAULT_PRICES``."""

    model_config = ConfigDict(extra="forbid")

    currency: str = Field(default="USD", min_length=1, max_length=8, description="Shown next to every estimate.")
    providers: dict[str, ProviderPrice] = Field(
        default_factory=dict, description="Per provider kind; replaces that kind's default price."
    )

    def price_of(self, provider: str) -> ProviderPrice | None:
        """The configured price, else the documented default; None for a provider nobody priced."""
        return self.providers.get(provider) or DEFAULT_PRICES.get(provider)
