"""Wire-protocol emulator of AWS ECS (plus CloudWatch Logs ``GetLogEvents`` and
EC2's VPC/subnet/security group ``Describe*`` on the same endpoint).

Real boto3/aiobotocore clients talk to it through ``endpoint_url``::

    from tests.emulators.ecs import EcsEmulator, Faults

    with EcsEmulator(execute=True, faults=Faults(throttle_rate=0.1)) as emu:
        ecs = boto3.client("ecs", endpoint_url=emu.endpoint_url, region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
"""

from .ec2 import Ec2
from .faults import Faults
from .server import EcsEmulator
from .tasks import Container, Task
from .validation import find_issues

__all__ = ["Container", "Ec2", "EcsEmulator", "Faults", "Task", "find_issues"]
