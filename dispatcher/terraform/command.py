"""``dispatcher pool from-terraform``: read outputs, recognise the module, write block and pool, report.

Every failure an operator can cause or meet ends in one line and an exit code; a
server's error message is scrubbed of the outputs' secret strings (it may echo what
it was sent).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
from prefect.client.orchestration import PrefectClient
from prefect.exceptions import PrefectHTTPStatusError
from pydantic import BaseModel, Field, SecretStr

from dispatcher.startup.errors import EXIT_CONFIG, EXIT_DEPENDENCY, EXIT_USAGE, safe_url
from dispatcher.terraform.blocktypes import BlockTypeMissing
from dispatcher.terraform.modules import TerraformModule, module_named, recognise
from dispatcher.terraform.outputs import TerraformInputError, TerraformOutputs
from dispatcher.terraform.sync import Change, PoolTarget, PoolTypeMismatch, default_block_name, sync_pool


class PrefectConnection(BaseModel):
    """The Prefect API the command writes to (the settings ``pool create`` uses)."""

    api_url: str = Field(description="Prefect API URL.")
    api_key: SecretStr | None = Field(default=None, description="Prefect Cloud API key.")
    auth_string: SecretStr | None = Field(default=None, description="Self-hosted basic auth 'user:password'.")

    def client(self) -> PrefectClient:
        return PrefectClient(api=self.api_url, api_key=_reveal(self.api_key), auth_string=_reveal(self.auth_string))


class FromTerraform(BaseModel):
    """One invocation of the command."""

    source: str = Field(description="File with `terraform output -json`, or '-' for stdin.")
    pool: str = Field(description="Work pool to create or update.")
    module: str | None = Field(default=None, description="Module name; recognised from the outputs when None.")
    block_name: str | None = Field(default=None, description="Credentials block name (default: from the pool's).")
    ambient_identity: bool = Field(
        default=False, description="The dispatcher runs as the module's identity: no key or role in the block."
    )


class CommandFailed(Exception):
    """The command cannot finish: one line for the operator (no value of the outputs) and the exit code."""

    def __init__(self, line: str, exit_code: int) -> None:
        super().__init__(line)
        self.exit_code = exit_code


def read_outputs(source: str) -> str:
    try:
        return sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise CommandFailed(f"cannot read {source}: {exc.strerror}", EXIT_USAGE) from None
    except UnicodeDecodeError:
        raise CommandFailed(f"{source} is not text: give `terraform output -json` of the module", EXIT_CONFIG) from None


def chosen_module(request: FromTerraform, text: str) -> tuple[TerraformModule, TerraformOutputs]:
    names = set(TerraformOutputs.parse(text).values)
    module = module_named(request.module) if request.module else recognise(names)
    if not names & (module.outputs | module.optional_outputs):
        raise TerraformInputError(f"outputs are not from {module.name} (none of its output names)")
    return module, TerraformOutputs.parse(text, known_sensitive=module.sensitive)


async def from_terraform(request: FromTerraform, connection: PrefectConnection) -> list[str]:
    """The report lines; raises CommandFailed with one scrubbed line."""
    text = read_outputs(request.source)
    try:
        module, outputs = chosen_module(request, text)
        settings = module.settings_from(outputs, ambient_identity=request.ambient_identity)
    except TerraformInputError as exc:
        raise CommandFailed(str(exc), EXIT_CONFIG) from None
    block_name = request.block_name or default_block_name(request.pool)
    if not re.fullmatch(r"[a-z0-9-]+", block_name):
        raise CommandFailed(f"--block-name {block_name!r}: Prefect takes lowercase letters, digits and dashes",
                            EXIT_USAGE)
    target = PoolTarget(pool=request.pool, block_name=block_name)
    try:
        async with connection.client() as client:
            unhealthy = await client.api_healthcheck()
            if unhealthy is not None:
                raise CommandFailed(f"Prefect API {safe_url(connection.api_url)} unreachable or refusing: "
                                    f"{_one_line(unhealthy)}", EXIT_DEPENDENCY)
            changes = await sync_pool(client, module, settings, target)
    except PoolTypeMismatch as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from None
    except BlockTypeMissing as exc:
        raise CommandFailed(str(exc), EXIT_DEPENDENCY) from None
    except PrefectHTTPStatusError as exc:
        # Scrubbed before it is cut short, so no part of a secret the server echoed survives.
        raise CommandFailed(f"Prefect API refused a request: {_one_line(outputs.scrub(str(exc)))}",
                            EXIT_DEPENDENCY) from None
    except httpx.HTTPError as exc:
        raise CommandFailed(f"Prefect API {safe_url(connection.api_url)} unreachable: {_one_line(exc)}",
                            EXIT_DEPENDENCY) from None
    # Lines hold names, block ids and values of non-sensitive outputs only (Terraform refuses a
    # sensitive value in a non-sensitive output), so they are not scrubbed: that would mangle names.
    header = f"module {module.name} -> work pool {request.pool!r} ({module.pool_type})"
    return [header, *(c.render() for c in changes), _summary(changes)]


def _summary(changes: list[Change]) -> str:
    changed = [c for c in changes if c.action in ("created", "updated", "registered")]
    return "no changes" if not changed else f"{len(changed)} change(s)"


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def _one_line(error: BaseException | str) -> str:
    text = str(error) or type(error).__name__
    return " ".join(text.split())[:300]
