"""Cloud Run realistic mode, as data: Admin API quotas, the job-run quota, execution phase times.

Switched on by ``CloudRunEmulator(realistic=True)`` (see ``kit/realism.py``). Quotas are per project and
region and refill evenly over the minute (a bucket of a minute's worth); they are not scaled by the time
factor. Over a quota the call is 429 ``RESOURCE_EXHAUSTED`` "Quota exceeded for quota metric ..." with the
quota's ``ErrorInfo``, as Google answers it.
"""

from __future__ import annotations

from ..kit import Profile, per_minute

# -- Admin API quotas ----------------------------------------------------------------------------------------
# The quota names are Cloud Run's ("Read requests per minute per region", "Write requests per minute per
# region", "Job run requests per minute per region"; https://cloud.google.com/run/quotas lists the API quotas
# only by reference to the console). Google does NOT publish their defaults: the numbers below are NOT
# confirmed. 180 job runs/min comes from third-party code comments; another project reports 60/min, so a
# bench should also try 60. Reads 1000/min and writes 180/min are estimates.
READ_REQUESTS = "Read requests"
WRITE_REQUESTS = "Write requests"
RUN_REQUESTS_PER_MINUTE = 180

CLOUD_RUN_API_RATES = {READ_REQUESTS: per_minute(1000), WRITE_REQUESTS: per_minute(180)}
CLOUD_RUN_API_GROUPS = {
    **{op: READ_REQUESTS for op in ("GetJob", "ListJobs", "GetExecution", "ListExecutions", "GetTask", "ListTasks",
                                    "GetOperation", "WaitOperation", "ListOperations")},
    **{op: WRITE_REQUESTS for op in ("CreateJob", "DeleteJob", "UpdateJob", "CancelExecution", "DeleteExecution",
                                     "DeleteOperation")},
}
"""RunJob counts against "Job run requests" only (``Faults.run_requests_per_minute``)."""
QUOTA_LIMITS = {READ_REQUESTS: "Read requests per minute per region",
                WRITE_REQUESTS: "Write requests per minute per region"}

# -- phase times (real seconds; scaled by Realism.time_factor) ------------------------------------------------
# Job creation -> Ready: a few seconds. Execution created -> started (instance provisioned, image imported):
# ~10-20 s for a small image. Cancel -> CANCELLED: a few seconds. SIGTERM -> SIGKILL grace: 10 s (Cloud Run's
# container runtime contract). Retry delay of a failed task: ~10 s. Typical observations, not guarantees.
PHASE_S = {"job_ready": 2.0, "pending": 15.0, "retry_delay": 10.0, "cancel": 5.0, "stop_grace": 10.0}

CLOUD_RUN_PROFILE = Profile(
    api_rates=CLOUD_RUN_API_RATES,
    api_groups=CLOUD_RUN_API_GROUPS,
    phase_s=PHASE_S,
    launch_knobs={"run_requests_per_minute": RUN_REQUESTS_PER_MINUTE},
    network_knobs={"validate_network": True},
)
