"""Which values of a resolved job configuration are secrets: the template before resolution says.

Prefect does not say which values came from block or variable references, so
:func:`applied_template` repeats its first steps (merge, ``apply_values``) and stops
before resolution: where that template holds a reference, the resolved configuration
holds a secret (:func:`providers.secrets.run_secrets`). A test compares it with
Prefect's own ``from_template_and_values``.
"""

from __future__ import annotations

import copy
from typing import Any

from prefect.utilities.collections import deep_merge, set_in_dict
from prefect.utilities.templating import apply_values
from prefect.workers.base import BaseJobConfiguration

from dispatcher.prefect.api import PrefectApi
from providers.secrets import RunSecrets, run_secrets


def applied_template(base_job_template: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The job configuration template with ``values`` applied, references not yet resolved.

    The same steps as ``BaseJobConfiguration.from_template_and_values`` up to its
    ``apply_values`` (variable defaults, ``env`` merges, dot-delimited keys).
    """
    base_config = copy.deepcopy(base_job_template["job_configuration"])
    variables = BaseJobConfiguration._get_base_config_defaults(base_job_template["variables"].get("properties", {}))
    if variables.get("env"):
        is_dict = isinstance(base_config.get("env"), dict)
        base_config["env"] = base_config["env"] | variables["env"] if is_dict else variables["env"]
    nested: dict[str, Any] = {}
    for key, value in values.items():
        if "." in key:
            set_in_dict(nested, key, value)
    for key, value in values.items():
        if "." not in key:
            both_dicts = isinstance(nested.get(key), dict) and isinstance(value, dict)
            nested[key] = deep_merge(nested[key], value) if both_dicts else value
    variables.update(nested)
    if isinstance(base_config.get("env"), dict) and variables.get("env"):
        base_config["env"] = base_config["env"] | variables["env"]
    return apply_values(template=base_config, values=variables)


def secrets_of(prefect: PrefectApi, configuration: BaseJobConfiguration, applied: dict[str, Any]) -> RunSecrets:
    return run_secrets(configuration, applied, extra=_workspace_secrets(prefect))


def _workspace_secrets(prefect: PrefectApi) -> list[str]:
    """The workspace's API key or auth string, and the password part of a ``user:password`` auth string."""
    config = prefect.config
    found = [secret.get_secret_value() for secret in (config.api_key, config.auth_string) if secret is not None]
    if config.auth_string is not None:
        found.append(config.auth_string.get_secret_value().partition(":")[2])
    return found
