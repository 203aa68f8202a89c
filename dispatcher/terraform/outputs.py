"""Reading ``terraform output -json``, and knowing which of its values are secret.

Two shapes are read: a root module's whole output map (``terraform output -json``:
``{name: {"sensitive": bool, "type": ..., "value": ...}}``), and one output that
holds a child module's outputs (``terraform output -json dispatcher`` for
``output "dispatcher" { value = module.dispatcher }``: ``{name: value}``). Terraform
leaves null top-level outputs out of both, so an absent output means null.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from providers.redaction import redact_text

_ENVELOPE = {"sensitive", "type", "value"}


class TerraformInputError(Exception):
    """The outputs cannot be used; the message is one line for an operator and carries no value."""


class TerraformOutputs(BaseModel):
    """A module's outputs by name, and the names whose values must never be shown."""

    model_config = ConfigDict(frozen=True)

    values: dict[str, Any] = Field(description="Output values by output name; null outputs are absent.")
    sensitive: frozenset[str] = Field(
        default=frozenset(), description="Outputs Terraform marked sensitive (their values are never shown)."
    )

    @classmethod
    def parse(cls, text: str, known_sensitive: frozenset[str] = frozenset()) -> TerraformOutputs:
        """Either shape (see the module docstring); ``known_sensitive`` adds names whose marks were lost."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            # The position only: the text may be a secret.
            raise TerraformInputError(f"not JSON (line {exc.lineno}, column {exc.colno}): "
                                      "give `terraform output -json` of the module") from None
        if not isinstance(data, dict) or not data:
            raise TerraformInputError("expected a JSON object of outputs, as `terraform output -json` prints")
        if all(isinstance(v, dict) and set(v) == _ENVELOPE for v in data.values()):
            values = {k: v["value"] for k, v in data.items() if v["value"] is not None}
            marked = {k for k, v in data.items() if v["sensitive"]}
        else:
            values = {k: v for k, v in data.items() if v is not None}
            marked = set()
        return cls(values=values, sensitive=frozenset(marked | (known_sensitive & set(values))))

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def secret_strings(self) -> list[str]:
        """Every string inside a sensitive output that no other output shows (a sensitive object may hold
        the region or a role ARN that are outputs of their own): what is scrubbed from any text shown."""
        public = {s for name, value in self.values.items() if name not in self.sensitive for s in _strings(value)}
        return [s for name in self.sensitive for s in _strings(self.values.get(name)) if s not in public]

    def scrub(self, text: str) -> str:
        return redact_text(text, self.secret_strings())


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        # A JSON key may sit in an object as a string: its lines and its own fields count too.
        inner = _json_strings(value)
        return [value, *inner]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _json_strings(value: str) -> list[str]:
    if not value.lstrip().startswith("{"):
        return []
    try:
        return _strings(json.loads(value))
    except json.JSONDecodeError:
        return []
