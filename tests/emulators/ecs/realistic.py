"""ECS realistic mode, as data: the account's default API and launch rates, Fargate's phase times.

Switched on by ``EcsEmulator(realistic=True)`` (see ``kit/realism.py``).
Every bucket is per account and Region, as on AWS; none is scaled by the
time factor (they are real-time limits). Where a number is not confirmed by
an AWS page, the comment says where it comes from.
"""

from __future__ import annotations

from ..kit import Profile, RateLimit

# -- API request throttling ------------------------------------------------------------------------------
# "Request throttling for the Amazon ECS API"
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html): token buckets per
# account and Region, "bucket maximum capacity" = burst, "refill rate" = sustained; over it: 400
# ThrottlingException "Rate exceeded". The page's worked example gives cluster read actions (DescribeClusters)
# a bucket of 50. I could not retrieve the page's per-action table, so every other number below is NOT
# confirmed by AWS; they are third-party figures or estimates, flagged per line.
CLUSTER_READ = RateLimit(per_s=20, burst=50)  # burst 50: the page's example; refill 20/s: unconfirmed
TASK_READ = RateLimit(per_s=20, burst=100)
"""DescribeTasks / ListTasks: unconfirmed. ~20 TPS shared with DescribeContainerInstances is a third-party
observation (aws-solutions/workload-discovery-on-aws#355); the burst of 100 is an estimate."""
TASK_WRITE = RateLimit(per_s=20, burst=100)  # StopTask: unconfirmed estimate, same as task reads
TASKDEF_WRITE = RateLimit(per_s=1, burst=20)
"""RegisterTaskDefinition / DeregisterTaskDefinition: 20 burst, 1/s sustained, a third-party figure
(aws-actions/amazon-ecs-deploy-task-definition#502); unconfirmed by AWS."""
TASKDEF_READ = RateLimit(per_s=20, burst=50)  # DescribeTaskDefinition & co: unconfirmed estimate
RUN_TASK = RateLimit(per_s=20, burst=20)
"""RunTask on Fargate: "20 calls per second (burst and sustained)", up to 10 tasks per call. Confirmed:
"AWS Fargate throttling quotas" (https://docs.aws.amazon.com/AmazonECS/latest/userguide/throttling.html)."""
GET_LOG_EVENTS = RateLimit(per_s=25, burst=25)
"""CloudWatch Logs GetLogEvents: 25 TPS per account and Region (CloudWatch Logs quotas page, from memory;
not re-checked)."""
EC2_DESCRIBE = RateLimit(per_s=20, burst=100)
"""EC2 non-mutating (Describe*) actions: bucket 100, refill 20/s ("Request throttling for the Amazon EC2 API",
from memory; not re-checked). Answered 503 RequestLimitExceeded."""

ECS_API_RATES: dict[str, RateLimit] = {
    "RunTask": RUN_TASK,
    "StopTask": TASK_WRITE,
    "DescribeTasks": TASK_READ,
    "ListTasks": TASK_READ,
    "DescribeClusters": CLUSTER_READ,
    "ListClusters": CLUSTER_READ,
    "RegisterTaskDefinition": TASKDEF_WRITE,
    "DeregisterTaskDefinition": TASKDEF_WRITE,
    "DescribeTaskDefinition": TASKDEF_READ,
    "ListTaskDefinitions": TASKDEF_READ,
    "ListTaskDefinitionFamilies": TASKDEF_READ,
    "GetLogEvents": GET_LOG_EVENTS,
    "DescribeVpcs": EC2_DESCRIBE,
    "DescribeSubnets": EC2_DESCRIBE,
    "DescribeSecurityGroups": EC2_DESCRIBE,
}

# -- Fargate task launch rate ----------------------------------------------------------------------------
# "AWS Fargate throttling quotas" (https://docs.aws.amazon.com/AmazonECS/latest/userguide/throttling.html):
# "Fargate Resource rate quota" for On-Demand tasks 100 burst / 20 per s sustained, and a separate bucket of
# the same size for Spot. One token per task launched (a RunTask of count 10 takes 10). Over it, AWS answers
# the RunTask itself 400 ThrottlingException "Rate exceeded" (reported by Fargate users: cisagov/crossfeed#247,
# AllenInstitute/neuron_morphology#151), not a ``failures`` entry; so does the emulator, launching nothing.
FARGATE_LAUNCH = {"FARGATE": RateLimit(per_s=20, burst=100), "FARGATE_SPOT": RateLimit(per_s=20, burst=100)}

# -- capacity ---------------------------------------------------------------------------------------------
# RunTask answers HTTP 200 with a ``failures`` entry (no task) when Fargate has no capacity in the AZs of the
# given subnets; the reason as AWS words it (dagster-io/dagster#33439 retries on exactly this text).
CAPACITY_REASON = ("Capacity is unavailable at this time. Please try again later or in a different "
                   "availability zone")

# -- phase times (real seconds; scaled by Realism.time_factor) ---------------------------------------------
# Fargate: PROVISIONING (ENI attach) ~15-30 s, PENDING (image pull, log stream) ~10-40 s by image size,
# DEPROVISIONING (ENI detach) ~30 s; StopTask's SIGTERM grace is the container's stopTimeout, 30 s by default
# ("stopTimeout" in the task definition reference). Typical figures, not documented guarantees.
PHASE_S = {"provisioning": 20.0, "pending": 25.0, "deprovisioning": 30.0, "stop_timeout": 30.0}

ECS_PROFILE = Profile(
    api_rates=ECS_API_RATES,
    phase_s=PHASE_S,
    launch_knobs={"launch_limits": FARGATE_LAUNCH},
    network_knobs={"validate_network": True},
    always_knobs={"capacity_failure_reason": CAPACITY_REASON},
)
