"""``dispatcher check`` for the ACI provider: which credentials and endpoint would be used (no Azure call)."""

from __future__ import annotations

from providers.aci.config import AciSettings
from providers.base import SettingsFinding


def check_aci_settings(settings: AciSettings) -> list[SettingsFinding]:
    findings = []
    creds = settings.credentials
    if creds is not None and (creds.client_id or creds.tenant_id or creds.client_secret):
        if not (creds.client_id and creds.tenant_id and creds.client_secret):
            findings.append(SettingsFinding(level="fail", message="providers.aci.credentials needs client_id, "
                                            "tenant_id and client_secret together"))
        else:
            findings.append(SettingsFinding(level="ok", message=f"service principal {creds.client_id} from "
                                            "providers.aci.credentials"))
    else:
        findings.append(SettingsFinding(level="ok", message="DefaultAzureCredential (managed identity, environment) "
                                        "unless a pool's aci_credentials block names a service principal"))
    if settings.arm_endpoint.startswith("http://") and not settings.allow_http:
        findings.append(SettingsFinding(level="fail", message=f"arm_endpoint {settings.arm_endpoint} is http: set "
                                        "allow_http (emulators only) or use https"))
    elif settings.static_bearer_token is not None and not settings.allow_http:
        findings.append(SettingsFinding(level="fail", message="static_bearer_token is for emulators: it needs "
                                        "allow_http"))
    else:
        findings.append(SettingsFinding(level="ok", message=f"ARM endpoint {settings.arm_endpoint}"))
    return findings
