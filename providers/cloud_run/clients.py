"""An async client of the Cloud Run Admin API v2 over aiohttp, one per credential set, reused by every run.

google-cloud-run 0.16 has no async REST transport (``JobsAsyncClient(transport="rest")``
silently builds the sync transport and blocks the event loop), so the calls are plain
HTTP/JSON to the documented REST paths, with google-run's ``run_v2`` messages for bodies
(parsed with unknown fields ignored, so new API fields never break a watch) and
google-auth for tokens. A token refresh may do network I/O (a metadata server, an
OAuth endpoint) or sign a JWT: it runs in a thread, single-flight per credential set.
Service-account keys use self-signed JWTs (no token round trip), as Google's own
clients do. Nothing here retries: the dispatcher does (see ``dispatcher/loops/calls.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Optional

import aiohttp
import google.auth
import google.auth.transport.requests
from google.auth import credentials as ga_credentials
from google.auth.exceptions import GoogleAuthError
from google.cloud import run_v2
from google.oauth2 import service_account
from google.protobuf import json_format

from providers.cloud_run.config import CloudRunSettings
from providers.cloud_run.credentials import GcpCredentials
from providers.cloud_run.errors import transport_error, translate
from providers.errors import CredentialsError, InvalidJobConfiguration, TransientProviderError

logger = logging.getLogger(__name__)

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
USER_AGENT = "prefect-push-dispatcher"
#: What the watch reads of an execution. Sent as Google's ``fields`` system parameter (a partial
#: response: less to transfer) and applied here too, because parsing an execution's template (its
#: env) is most of the CPU of a 1,000-execution page and the watch does not need it.
STATUS_FIELDS = ("name", "createTime", "startTime", "completionTime", "conditions", "retriedCount", "runningCount",
                 "logUri")
STATUS_FIELDS_PARAM = f"nextPageToken,executions({','.join(STATUS_FIELDS)})"
LARGE_PAGE_BYTES = 256 * 1024


def effective_credentials(creds: GcpCredentials, settings: CloudRunSettings) -> GcpCredentials:
    """The pool's credentials block, or the operator's when the block is empty."""
    if creds.is_empty() and settings.credentials is not None:
        return settings.credentials
    return creds


def google_credentials(creds: GcpCredentials) -> tuple[ga_credentials.Credentials, Optional[str]]:
    """google-auth credentials and the project they name. ADC may block (metadata server): call off-loop."""
    try:
        if creds.service_account_info:
            made = service_account.Credentials.from_service_account_info(creds.service_account_info, scopes=SCOPES)
            return made.with_always_use_jwt_access(True), creds.project_id()
        if creds.service_account_file:
            made = service_account.Credentials.from_service_account_file(str(creds.service_account_file), scopes=SCOPES)
            return made.with_always_use_jwt_access(True), creds.project or made.project_id
        found, project = google.auth.default(scopes=SCOPES)
        return found, creds.project or project
    except (GoogleAuthError, ValueError, KeyError, OSError) as exc:
        # The message of a bad key names the problem (missing field, file not found), never the key.
        raise CredentialsError(f"GCP credentials unusable: {type(exc).__name__}: {str(exc)[:200]}",
                               code=type(exc).__name__) from None


class CloudRunClient:
    """Admin API v2 calls for one credential set; safe to use concurrently from one event loop."""

    def __init__(self, settings: CloudRunSettings, credentials: Optional[ga_credentials.Credentials],
                 project: Optional[str], secrets: tuple[str, ...] = ()) -> None:
        self.settings = settings
        self.credentials = credentials
        self.project = project
        self._secrets = secrets
        self._refresh_lock = asyncio.Lock()
        self._base = settings.endpoint.rstrip("/")
        self._session: Optional[aiohttp.ClientSession] = None

    def _http(self) -> aiohttp.ClientSession:
        """The connection pool, made on first use (aiohttp wants it made inside the running loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.http_timeout_s),
                connector=aiohttp.TCPConnector(limit=self.settings.max_connections),
                headers={"User-Agent": USER_AGENT, "Content-Type": "application/json"})
        return self._session

    async def _auth_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        creds = self.credentials
        if creds is None:
            return headers
        if not creds.valid:
            async with self._refresh_lock:
                if not creds.valid:
                    try:
                        await asyncio.to_thread(creds.refresh, google.auth.transport.requests.Request())
                    except GoogleAuthError as exc:
                        raise CredentialsError(f"GCP token refresh failed: {type(exc).__name__}",
                                               code=type(exc).__name__) from None
        creds.apply(headers)
        return headers

    async def call(self, operation: str, method: str, path: str, *, body: Optional[str] = None,
                   params: Optional[dict[str, Any]] = None, secrets: tuple[str, ...] = ()) -> bytes:
        """One request; the raw JSON answer, or a provider error."""
        headers = await self._auth_headers()
        query = {key: str(value) for key, value in (params or {}).items()}
        try:
            async with self._http().request(method, f"{self._base}/v2/{path}", data=body, params=query,
                                            headers=headers) as answer:
                status, content, answer_headers = answer.status, await answer.read(), answer.headers
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise transport_error(operation, exc) from None
        if status >= 300:
            raise translate(operation, status, content, answer_headers, secrets=(*secrets, *self._secrets))
        return content

    # -- jobs ----------------------------------------------------------------------------------

    async def create_job(self, parent: str, job_id: str, body: str) -> None:
        await self.call("CreateJob", "POST", f"{parent}/jobs", body=body, params={"jobId": job_id})

    async def get_job(self, name: str) -> run_v2.Job:
        raw = await self.call("GetJob", "GET", name)
        return run_v2.Job.from_json(raw, ignore_unknown_fields=True)

    async def list_jobs(self, parent: str, page_token: str = "") -> run_v2.ListJobsResponse:
        params = {"pageSize": 100, **({"pageToken": page_token} if page_token else {})}
        raw = await self.call("ListJobs", "GET", f"{parent}/jobs", params=params)
        return run_v2.ListJobsResponse.from_json(raw, ignore_unknown_fields=True)

    async def delete_job(self, name: str) -> None:
        await self.call("DeleteJob", "DELETE", name)

    async def run_job(self, name: str, body: str, secrets: tuple[str, ...]) -> run_v2.Execution:
        """``:run``; the new Execution is in the Operation's metadata at once (never wait for the operation:
        it is done only when the execution is)."""
        raw = await self.call("RunJob", "POST", f"{name}:run", body=body, secrets=secrets)
        try:  # only the execution's identity is needed: parsing its whole template (via Any) is costly
            metadata = json.loads(raw)["metadata"]
            ours = {key: metadata[key] for key in ("name", "createTime") if key in metadata}
            execution = json_format.ParseDict(ours, run_v2.Execution.pb()(), ignore_unknown_fields=True)
        except (ValueError, KeyError, TypeError, json_format.ParseError):
            raise TransientProviderError("Cloud Run RunJob answered without an execution in its operation",
                                         code="BAD_OPERATION") from None
        if not execution.name:
            raise TransientProviderError("Cloud Run RunJob answered an execution without a name", code="BAD_OPERATION")
        return run_v2.Execution.wrap(execution)

    # -- executions --------------------------------------------------------------------------

    async def list_executions(self, parent: str, page_size: int, page_token: str = "", *, status_only: bool = False
                              ) -> run_v2.ListExecutionsResponse:
        """``parent`` is a job, or ``…/jobs/-`` for every job of the location (newest first).

        ``status_only``: the executions carry only ``STATUS_FIELDS`` (no template)."""
        params = {"pageSize": page_size, **({"pageToken": page_token} if page_token else {})}
        if status_only:
            params["fields"] = STATUS_FIELDS_PARAM
        raw = await self.call("ListExecutions", "GET", f"{parent}/executions", params=params)
        parse = _status_page if status_only else _full_page
        if len(raw) > LARGE_PAGE_BYTES:  # a full page takes ~0.1 s to parse: not on the event loop
            return await asyncio.to_thread(parse, raw)
        return parse(raw)

    async def cancel_execution(self, name: str) -> None:
        await self.call("CancelExecution", "POST", f"{name}:cancel", body="{}")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _full_page(raw: bytes) -> run_v2.ListExecutionsResponse:
    return run_v2.ListExecutionsResponse.from_json(raw, ignore_unknown_fields=True)


def _status_page(raw: bytes) -> run_v2.ListExecutionsResponse:
    page = json.loads(raw or b"{}")
    trimmed = [{k: ex[k] for k in STATUS_FIELDS if k in ex} for ex in page.get("executions") or []]
    answer = json_format.ParseDict({"executions": trimmed, "nextPageToken": page.get("nextPageToken", "")},
                                   run_v2.ListExecutionsResponse.pb()(), ignore_unknown_fields=True)
    return run_v2.ListExecutionsResponse.wrap(answer)


class CloudRunClients:
    """One ``CloudRunClient`` per credential set (its fingerprint), created on first use."""

    def __init__(self, settings: CloudRunSettings) -> None:
        self.settings = settings
        self._clients: dict[str, CloudRunClient] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.created = 0

    def resolve(self, creds: GcpCredentials) -> tuple[str, GcpCredentials]:
        effective = effective_credentials(creds, self.settings)
        return effective.fingerprint(), effective

    async def client(self, creds: GcpCredentials) -> CloudRunClient:
        key, effective = self.resolve(creds)
        found = self._clients.get(key)
        if found is not None:
            return found
        async with self._locks.setdefault(key, asyncio.Lock()):
            if key not in self._clients:
                if self.settings.anonymous:
                    google, project = None, effective.project_id()
                else:
                    google, project = await asyncio.to_thread(google_credentials, effective)
                self._clients[key] = CloudRunClient(self.settings, google, project or self.settings.project,
                                                    effective.secret_values())
                self.created += 1
                logger.info("created Cloud Run client for credential set %s (project %s)", key, project)
        return self._clients[key]

    def project_of(self, client: CloudRunClient) -> str:
        if not client.project:
            raise InvalidJobConfiguration(
                "credentials.project", None,
                "a GCP project: set project in the gcp-credentials block, or providers.cloud-run.project")
        return client.project

    def all(self) -> list[CloudRunClient]:
        return list(self._clients.values())

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        self._locks.clear()
