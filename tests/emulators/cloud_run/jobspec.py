"""The Job as Cloud Run stores it (defaults filled in) and the template an execution runs (overrides applied)."""

from __future__ import annotations

import copy
from typing import Any

from .errors import unimplemented

OUTPUT_ONLY = {"name", "uid", "generation", "createTime", "updateTime", "deleteTime", "expireTime", "creator",
               "lastModifier", "observedGeneration", "terminalCondition", "conditions", "executionCount",
               "latestCreatedExecution", "reconciling", "satisfiesPzs", "etag"}
"""Fields a client may send but the service sets itself (ignored on create, as Cloud Run does)."""
DEFAULT_LIMITS = {"cpu": "1000m", "memory": "512Mi"}


def with_defaults(job: dict[str, Any], project_number: str) -> dict[str, Any]:
    """The created Job's spec: output-only fields dropped, Cloud Run's defaults filled in."""
    if job.get("startExecutionToken") or job.get("runExecutionToken"):
        raise unimplemented("CreateJob with startExecutionToken/runExecutionToken")
    spec = {key: value for key, value in copy.deepcopy(job).items() if key not in OUTPUT_ONLY}
    spec.setdefault("launchStage", "GA")
    if spec["launchStage"] == "LAUNCH_STAGE_UNSPECIFIED":
        spec["launchStage"] = "GA"
    template = spec.setdefault("template", {})
    template["taskCount"] = template.get("taskCount") or 1
    task = template.setdefault("template", {})
    task.setdefault("maxRetries", 3)  # a oneof: absent means Cloud Run's default of 3
    task.setdefault("timeout", "600s")
    task.setdefault("serviceAccount", f"{project_number}-compute@developer.gserviceaccount.com")
    for container in task.get("containers", []):
        limits = container.setdefault("resources", {}).setdefault("limits", {})
        for key, value in DEFAULT_LIMITS.items():
            limits.setdefault(key, value)
    return spec


def missing_image(spec: dict[str, Any], missing: set[str]) -> str | None:
    images = [c.get("image", "") for c in spec["template"]["template"].get("containers", [])]
    return next((image for image in images if image in missing), None)


def apply_overrides(template: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The ExecutionTemplate a run gets: args replaced or cleared, env merged by name, taskCount, timeout."""
    effective = copy.deepcopy(template)
    if overrides.get("taskCount"):
        effective["taskCount"] = overrides["taskCount"]
    if "timeout" in overrides:
        effective["template"]["timeout"] = overrides["timeout"]
    containers = effective["template"]["containers"]
    for override in overrides.get("containerOverrides") or []:
        name = override.get("name", "")
        container = next((c for c in containers if c.get("name", "") == name), containers[0])
        _override_container(container, override)
    return effective


def _override_container(container: dict[str, Any], override: dict[str, Any]) -> None:
    if override.get("args"):
        container["args"] = list(override["args"])
    elif override.get("clearArgs"):
        container.pop("args", None)
    env = container.setdefault("env", [])
    index = {var["name"]: i for i, var in enumerate(env)}
    for var in override.get("env") or []:
        if var["name"] in index:
            env[index[var["name"]]] = var
        else:
            index[var["name"]] = len(env)
            env.append(var)
    if not env:
        container.pop("env")
