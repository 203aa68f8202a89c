"""Operation name → implementation, for ECS and the CloudWatch Logs subset.

Each handler takes the backend and the already model-validated request
parameters and returns the response dict (or raises ``AwsError``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .backend import Backend
from .errors import AwsError, client_error, invalid_parameter
from .util import check_tags, now, paginate, without_none

Handler = Callable[[Backend, dict[str, Any]], dict[str, Any]]


# -- task definitions -------------------------------------------------------------

def register_task_definition(b: Backend, p: dict[str, Any]) -> dict[str, Any]:
    td = b.taskdefs.register(p, now())
    response = {"taskDefinition": td.to_api()}
    if td.tags:
        response["tags"] = list(td.tags)
    return response


def describe_task_definition(b: Backend, p: dict[str, Any]) -> dict[str, Any]:
    td = b.taskdefs.lookup(p["taskDefinition"])
    if td is None:
        raise client_error("Unable to describe task definition.")
    response = {"taskDefinition": td.to_api()}
    if "TAGS" in (p.get("include") or []):
        response["tags"] = list(td.tags)
    return response


def deregister_task_definition(b: Backend, p: dict[str, Any]) -> dict[str, Any]:
    return {"taskDefinition": b.taskdefs.deregister(p["taskDefinition"], now()).to_api()}


# -- clusters -----------------------------------------------------------------------

def create_cluster(b: Backend, p: dict[str, Any]) -> dict[str, Any]:
    cluster = b.clusters.create(p)
    return {"cluster": cluster.to_api(b.task_counts(cluster), ["TAGS", "SETTINGS"])}


def list_clusters(b: Backend, p: dict[str, Any]) -> dict[str, Any]:
    page, token = paginate([c.arn for c in b.clusters.all()], p)
    return without_none({"clusterArns": page, "nextToken": token})


# -- tags -----------------------------------------------------------------------------

_RESOURCE = re.compile(r"^arn:aws:ecs:(?P<region>[^:]+):(?P<account>\d{12}):(?P<kind>[a-z-]+)/(?P<rest>.+)$")


def _tagged(b: Backend, arn: str, missing_code: str) -> list[dict]:
    """The live tag list of a cluster, task or task definition."""
    match = _RESOURCE.match(arn)
    if not match or (match["region"], match["account"]) != (b.region, b.account):
        raise invalid_parameter("The ARN provided is invalid.")
    kind, rest = match["kind"], match["rest"]
    resource = None
    if kind == "cluster":
        resource = b.clusters.find(rest)
    elif kind == "task-definition" and ":" in rest:
        resource = b.taskdefs.lookup(arn)
    elif kind == "task":
        cluster = b.clusters.find(rest.split("/")[0]) if "/" in rest else None
        resource = b.find_task(cluster, arn) if cluster else None
    if resource is None:
        raise AwsError(missing_code, "The specified resource could not be found.")
    return resource.tags


def tag_resource(b: Backend, p: dict[str, Any]) -> dict[str, Any]:
    tags = _tagged(b, p["resourceArn"], "ResourceNotFoundException")
    check_tags(p["tags"])
    merged = {t["key"]: t.get("value", "") for t in tags}
    merged.update({t["key"]: t.get("value", "") for t in p["tags"]})
    if len(merged) > 50:
        raise invalid_parameter("A resource can have at most 50 tags.")
    tags[:] = [{"key": k, "value": v} for k, v in merged.items()]
    return {}


def untag_resource(b: Backend, p: dict[str, Any]) -> dict[str, Any]:
    tags = _tagged(b, p["resourceArn"], "ResourceNotFoundException")
    tags[:] = [t for t in tags if t["key"] not in p["tagKeys"]]
    return {}


def list_tags_for_resource(b: Backend, p: dict[str, Any]) -> dict[str, Any]:
    return {"tags": list(_tagged(b, p["resourceArn"], "InvalidParameterException"))}


# -- CloudWatch Logs --------------------------------------------------------------------

def create_log_group(b: Backend, p: dict[str, Any]) -> dict[str, Any]:
    b.logs.create_group(p["logGroupName"])
    return {}


ECS_HANDLERS: dict[str, Handler] = {
    "RegisterTaskDefinition": register_task_definition,
    "DescribeTaskDefinition": describe_task_definition,
    "DeregisterTaskDefinition": deregister_task_definition,
    "ListTaskDefinitions": lambda b, p: b.taskdefs.list_arns(p),
    "ListTaskDefinitionFamilies": lambda b, p: b.taskdefs.list_families(p),
    "CreateCluster": create_cluster,
    "DescribeClusters": lambda b, p: b.clusters.describe(p, b.task_counts),
    "ListClusters": list_clusters,
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
    "RunTask": lambda b, p: b.run_task(p),
    "DescribeTasks": lambda b, p: b.describe_tasks(p),
    "StopTask": lambda b, p: b.stop_task(p),
    "ListTasks": lambda b, p: b.list_tasks(p),
}

LOGS_HANDLERS: dict[str, Handler] = {
    "GetLogEvents": lambda b, p: b.logs.get_log_events(p),
    "CreateLogGroup": create_log_group,
}
