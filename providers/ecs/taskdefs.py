"""Which task definition revision a run uses: reuse by content, register only what is new.

Prefect's ECS worker registers a revision per run (#16485). Here a revision is
identified by the content hash of its RegisterTaskDefinition request, stored on
it as the tag ``prefect.io/task-definition-hash``:

1. in-process cache (credential set, hash) -> ARN: the steady state, no AWS call;
2. on a miss, the newest few ACTIVE revisions of the family are checked for the
   tag (ListTaskDefinitions + DescribeTaskDefinition each), so a restarted or
   second dispatcher reuses what an earlier one registered;
3. only if none matches, one RegisterTaskDefinition with the tag.

Concurrent submissions of the same content share one lookup/registration.
A given ``task_definition_arn`` is described once per process (for its network
mode, flow container and log destination) and passed to RunTask as given.
Nothing is ever deregistered (``auto_deregister_task_definition`` is ignored):
revisions are shared by all runs with the same content.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from providers.ecs import naming
from providers.ecs.errors import aws_errors
from providers.ecs.requests import TaskDefinitionInfo, TaskDefinitionSpec, describe_info, info_of
from providers.ecs.singleflight import SingleFlight
from providers.errors import SubmissionRejected

logger = logging.getLogger(__name__)


class TaskDefinitions:
    """Task definition ARNs by (credential set, content hash), and described existing definitions."""

    def __init__(self, search_depth: int = 5) -> None:
        self.search_depth = search_depth
        self._by_hash: SingleFlight[str] = SingleFlight()
        self._described: SingleFlight[TaskDefinitionInfo] = SingleFlight()
        self.registered = 0  # RegisterTaskDefinition calls made (tests, logs)

    async def for_spec(self, ecs: Any, key: str, spec: TaskDefinitionSpec) -> TaskDefinitionInfo:
        arn = await self._by_hash.get((key, spec.content_hash), lambda: self._find_or_register(ecs, spec))
        return info_of(spec, arn)

    def is_cached(self, key: str, spec: TaskDefinitionSpec) -> bool:
        return self._by_hash.peek((key, spec.content_hash)) is not None

    def forget(self, key: str, spec: TaskDefinitionSpec) -> None:
        """Drop a cached ARN that ECS no longer accepts (deregistered by someone else)."""
        self._by_hash.forget((key, spec.content_hash))

    async def existing(self, ecs: Any, key: str, reference: str, container: Optional[str]) -> TaskDefinitionInfo:
        """A user-supplied task definition (ARN, family:revision or family), described once per process."""

        async def describe() -> TaskDefinitionInfo:
            with aws_errors("DescribeTaskDefinition", permanent=SubmissionRejected):
                answer = await ecs.describe_task_definition(taskDefinition=reference)
            return describe_info(answer["taskDefinition"], container, reference)

        return await self._described.get((key, reference, container), describe)

    async def _find_or_register(self, ecs: Any, spec: TaskDefinitionSpec) -> str:
        arn = await self._find(ecs, spec)
        if arn is not None:
            logger.info("reusing task definition %s (content %s)", arn, spec.content_hash[:12])
            return arn
        with aws_errors("RegisterTaskDefinition", permanent=SubmissionRejected):
            answer = await ecs.register_task_definition(**spec.request)
        self.registered += 1
        arn = answer["taskDefinition"]["taskDefinitionArn"]
        logger.info("registered task definition %s (content %s)", arn, spec.content_hash[:12])
        return arn

    async def _find(self, ecs: Any, spec: TaskDefinitionSpec) -> Optional[str]:
        """The newest ACTIVE revision of the family that carries our hash tag, if any."""
        with aws_errors("ListTaskDefinitions", permanent=SubmissionRejected):
            listed = await ecs.list_task_definitions(
                familyPrefix=spec.family, status="ACTIVE", sort="DESC", maxResults=self.search_depth
            )
        for arn in listed.get("taskDefinitionArns") or []:
            with aws_errors("DescribeTaskDefinition", permanent=SubmissionRejected):
                answer = await ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
            tags = {tag.get("key"): tag.get("value") for tag in answer.get("tags") or []}
            if tags.get(naming.HASH_TAG) == spec.content_hash:
                return arn
        return None
