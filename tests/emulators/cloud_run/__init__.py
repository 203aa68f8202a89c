"""Wire-protocol emulator of the Cloud Run Admin API v2 (jobs, executions, tasks, operations).

The official clients talk to it through the endpoint URL::

    from tests.emulators.cloud_run import CloudRunEmulator, Faults

    with CloudRunEmulator(execute=True, faults=Faults(throttle_rate=0.1)) as emu:
        jobs = run_v2.JobsClient(credentials=AnonymousCredentials(), transport="rest",
                                 client_options=ClientOptions(api_endpoint=emu.endpoint_url))
"""

from .auth import Auth
from .faults import Faults
from .resources import AttemptResult, Execution, Job, Task
from .server import CloudRunEmulator

__all__ = ["AttemptResult", "Auth", "CloudRunEmulator", "Execution", "Faults", "Job", "Task"]
