"""AWS credentials as Prefect's ``aws-credentials`` block stores them (prefect-aws ``AwsCredentials``).

Prefect resolves a job variable ``{"$ref": {"block_document_id": ...}}`` into the
block's data dict (secrets included) before the job configuration is built; these
models read that dict, so a deployment that points at an ``aws-credentials`` block
works unchanged, without prefect-aws installed (see :mod:`providers.blocks`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from providers.blocks import block_schema


class AwsClientParameters(BaseModel):
    """Extra parameters for the SDK clients (prefect-aws ``AwsClientParameters``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    api_version: Optional[str] = Field(default=None, title="API Version", description="The API version to use.")
    use_ssl: bool = Field(default=True, title="Use SSL", description="Whether or not to use SSL.")
    verify: Union[bool, str, None] = Field(
        default=None, description="Whether or not to verify SSL certificates, or a CA bundle path."
    )
    verify_cert_path: Optional[str] = Field(
        default=None, title="Certificate Authority Bundle File Path", description="Path to the CA cert bundle to use."
    )
    endpoint_url: Optional[str] = Field(
        default=None, title="Endpoint URL", description="The complete URL to use for every client (ECS, Logs, EC2, STS)."
    )
    config: Optional[dict[str, Any]] = Field(
        default=None,
        title="Botocore Config",
        description=(
            "Advanced botocore Config options (timeouts, proxies...). The dispatcher's own "
            "`retries` and `max_pool_connections` settings take precedence."
        ),
    )

    def verify_value(self) -> Union[bool, str, None]:
        """What botocore's ``verify`` argument gets: a CA bundle path wins over a flag."""
        return self.verify_cert_path or self.verify


class AssumeRoleParameters(BaseModel):
    """Parameters of STS AssumeRole besides the role ARN (prefect-aws ``AssumeRoleParameters``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    RoleSessionName: Optional[str] = Field(default=None, description="Session name (default: prefect-push-dispatcher).")
    DurationSeconds: Optional[int] = Field(default=None, description="Session duration in seconds.")
    Policy: Optional[str] = Field(default=None, description="Inline session policy (JSON).")
    PolicyArns: Optional[list[dict[str, str]]] = Field(default=None, description="Managed session policy ARNs.")
    Tags: Optional[list[dict[str, str]]] = Field(default=None, description="Session tags ({Key, Value}).")
    TransitiveTagKeys: Optional[list[str]] = Field(default=None, description="Session tag keys that are transitive.")
    ExternalId: Optional[str] = Field(default=None, description="External id required by the role's trust policy.")
    SerialNumber: Optional[str] = Field(default=None, description="MFA device serial number.")
    TokenCode: Optional[str] = Field(default=None, description="MFA token code.")
    SourceIdentity: Optional[str] = Field(default=None, description="Source identity of the session.")


class AwsCredentials(BaseModel):
    """The fields of prefect-aws's ``AwsCredentials`` block; all empty means "not given"."""

    model_config = block_schema("aws-credentials", "aws_secret_access_key", "aws_session_token",
                                extra="ignore", frozen=True)  # fmt: skip

    aws_access_key_id: Optional[str] = Field(
        default=None, title="AWS Access Key ID", description="A specific AWS access key ID."
    )
    aws_secret_access_key: Optional[SecretStr] = Field(
        default=None, title="AWS Access Key Secret", description="A specific AWS secret access key."
    )
    aws_session_token: Optional[SecretStr] = Field(
        default=None,
        title="AWS Session Token",
        description="The session key for your AWS account, only needed with temporary credentials.",
    )
    profile_name: Optional[str] = Field(default=None, description="The profile to use when creating your session.")
    region_name: Optional[str] = Field(
        default=None, description="The AWS Region where you want to create new connections."
    )
    aws_client_parameters: AwsClientParameters = Field(
        default_factory=AwsClientParameters,
        title="AWS Client Parameters",
        description="Extra parameters to initialize the clients.",
    )
    assume_role_arn: Optional[str] = Field(
        default=None, title="Assume Role ARN", description="The ARN of the IAM role to assume (STS AssumeRole)."
    )
    assume_role_kwargs: AssumeRoleParameters = Field(
        default_factory=AssumeRoleParameters,
        title="Assume Role Parameters",
        description="Additional parameters for the assume_role call.",
    )

    def is_empty(self) -> bool:
        """No key, profile or role: the pool did not choose credentials."""
        return not (self.aws_access_key_id or self.aws_secret_access_key or self.profile_name or self.assume_role_arn)

    def fingerprint(self) -> str:
        """Stable id of this credential set (a hash: never the secret itself, safe to log)."""
        data = self.model_dump(mode="json")
        data["aws_secret_access_key"] = _reveal(self.aws_secret_access_key)
        data["aws_session_token"] = _reveal(self.aws_session_token)
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def secret_values(self) -> list[str]:
        """Every secret string, so error messages can be checked and scrubbed."""
        return [v for v in (_reveal(self.aws_secret_access_key), _reveal(self.aws_session_token)) if v]


def _reveal(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
