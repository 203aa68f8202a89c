"""``dispatcher check`` for the Cloud Run provider: can google-auth find credentials and a project?

No Cloud Run call is made. Missing credentials or project are warnings, not failures:
every ``cloud-run-v2:push`` pool may carry its own ``gcp-credentials`` block;
``prefect:managed`` pools on Cloud Run and pools without a block need the dispatcher's.
"""

from __future__ import annotations

import asyncio

from providers.base import SettingsFinding
from providers.cloud_run.clients import google_credentials
from providers.cloud_run.config import CloudRunSettings
from providers.cloud_run.credentials import GcpCredentials
from providers.errors import CredentialsError

_CONSEQUENCE = "only pools whose credentials block provides them can run"


async def check_cloud_run_settings(settings: CloudRunSettings) -> list[SettingsFinding]:
    findings = [SettingsFinding(level="ok", message=f"Cloud Run Admin API at {settings.endpoint}")]
    if settings.anonymous:
        return [*findings, SettingsFinding(level="warn", message="anonymous: no credentials are sent (emulators only)")]
    creds = settings.credentials or GcpCredentials()
    where = "providers.cloud-run.credentials" if settings.credentials else "Application Default Credentials"
    try:
        _, project = await asyncio.to_thread(google_credentials, creds)
    except CredentialsError as exc:
        return [*findings, SettingsFinding(level="warn", message=f"no usable GCP credentials from {where} "
                                                                 f"({exc.code}); {_CONSEQUENCE}")]
    project = project or settings.project
    findings.append(SettingsFinding(level="ok", message=f"GCP credentials from {where}"))
    if not project:
        findings.append(SettingsFinding(level="warn", message=f"no GCP project in {where} or providers.cloud-run."
                                                              f"project; {_CONSEQUENCE}"))
    else:
        findings.append(SettingsFinding(level="ok", message=f"project {project}"))
    return findings
