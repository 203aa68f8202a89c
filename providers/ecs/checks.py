"""``dispatcher check`` for the ECS provider: can botocore find credentials and a region?

No AWS call is made (an assumed role is not assumed): the check reports what
botocore resolves from ``providers.ecs`` and the environment. Missing
credentials or region are warnings, not failures, because every ``ecs:push``
pool may carry its own ``aws_credentials`` block; ``prefect:managed`` pools on
ECS and pools without a block need the dispatcher's own.
"""

from __future__ import annotations

from aiobotocore.session import AioSession
from botocore.exceptions import BotoCoreError

from providers.base import SettingsFinding
from providers.ecs.config import EcsSettings
from providers.ecs.credentials import AwsCredentials

_WHERE = "providers.ecs or the environment"
_CONSEQUENCE = "only pools whose aws_credentials block provides them can run"


async def check_ecs_settings(settings: EcsSettings) -> list[SettingsFinding]:
    creds = settings.credentials or AwsCredentials()
    session = AioSession(profile=creds.profile_name) if creds.profile_name else AioSession()
    try:
        return [await _credentials(creds, session), _region(creds, settings, session)]
    except BotoCoreError as exc:  # a named profile that does not exist, a malformed config file...
        return [SettingsFinding(level="fail", message=f"AWS configuration unusable: {type(exc).__name__}: {exc}")]


async def _credentials(creds: AwsCredentials, session: AioSession) -> SettingsFinding:
    if creds.aws_access_key_id:
        if creds.aws_secret_access_key is None:
            return SettingsFinding(level="fail", message="providers.ecs.credentials has aws_access_key_id "
                                                         "but no aws_secret_access_key")
        found = "access key from providers.ecs.credentials"
    else:
        resolved = await session.get_credentials()
        if resolved is None:
            return SettingsFinding(level="warn", message=f"no AWS credentials in {_WHERE}; {_CONSEQUENCE}")
        found = f"credentials from {resolved.method}"
    if creds.assume_role_arn:
        found += f", then role {creds.assume_role_arn} (not assumed by check)"
    return SettingsFinding(level="ok", message=found)


def _region(creds: AwsCredentials, settings: EcsSettings, session: AioSession) -> SettingsFinding:
    region = creds.region_name or settings.region_name or session.get_config_variable("region")
    if not region:
        return SettingsFinding(level="warn", message=f"no AWS region in {_WHERE}; {_CONSEQUENCE}")
    return SettingsFinding(level="ok", message=f"region {region}")
