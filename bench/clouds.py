"""One place that knows, per cloud, how a bench reaches its emulator through the real dispatcher.

Each ``BenchCloud`` gives: the emulator class and its arguments (containers that keep
"running" for ``run_s``, never executing anything), the pool type, the dispatcher's
provider settings for that emulator, and the job variables a deployment needs. The
emulator runs in its own process (``bench.remote``), so figures of the dispatcher are its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.remote import RemoteEmulator

CLOUD_RUN_PROJECT, CLOUD_RUN_REGION = "bench-project", "us-central1"


@dataclass
class BenchCloud:
    kind: str  # the provider kind (dispatcher.yaml providers.<kind>)
    pool_type: str
    factory: Callable[..., Any]
    emulator_kwargs: Callable[[float], dict[str, Any]]  # run_s -> keyword arguments of ``factory``
    settings: Callable[[RemoteEmulator], dict[str, Any]]  # provider settings for the dispatcher
    variables: Callable[[RemoteEmulator, float], dict[str, Any]]  # job variables of the deployment
    extra_settings: dict[str, Any] = field(default_factory=dict)

    def emulator(self, run_s: float, **overrides: Any) -> RemoteEmulator:
        return RemoteEmulator(self.factory, **{**self.emulator_kwargs(run_s), **overrides})

    def provider_settings(self, emu: RemoteEmulator, **overrides: Any) -> dict[str, Any]:
        return {**self.settings(emu), **self.extra_settings, **overrides}


def _ecs() -> BenchCloud:
    from tests.emulators.ecs import EcsEmulator

    def variables(emu: RemoteEmulator, run_s: float) -> dict[str, Any]:
        credentials = {"aws_access_key_id": "AKIABENCH", "aws_secret_access_key": "bench-secret",
                       "region_name": "us-east-1", "aws_client_parameters": {"endpoint_url": emu.endpoint_url}}
        return {"aws_credentials": credentials, "image": "prefecthq/prefect:3-latest",
                "network_configuration": {"subnets": ["subnet-0defaulta"]}, "env": {"EMULATOR_RUN_SECONDS": str(run_s)}}

    return BenchCloud("ecs", "ecs:push", EcsEmulator, lambda run_s: {"default_run_s": run_s},
                      lambda emu: {"retry_mode": "adaptive"}, variables)


def _cloud_run() -> BenchCloud:
    from tests.e2e.test_prefect_cloud_run_worker_on_emulator import service_account_info
    from tests.emulators.cloud_run import CloudRunEmulator

    def settings(emu: RemoteEmulator) -> dict[str, Any]:
        token_uri = emu.endpoint_url.rstrip("/") + "/token"
        return {"endpoint": emu.endpoint_url, "project": CLOUD_RUN_PROJECT,
                "credentials": {"service_account_info": service_account_info(token_uri)}}

    def variables(emu: RemoteEmulator, run_s: float) -> dict[str, Any]:
        return {"region": CLOUD_RUN_REGION, "env": {"EMULATOR_RUN_SECONDS": str(run_s)}}

    return BenchCloud("cloud-run", "cloud-run-v2:push", CloudRunEmulator,
                      lambda run_s: {"project": CLOUD_RUN_PROJECT, "region": CLOUD_RUN_REGION, "default_run_s": run_s},
                      settings, variables)


def _aci() -> BenchCloud:
    from tests.emulators.aci import AciEmulator
    from tests.emulators.aci.server import DEFAULT_SUBSCRIPTION

    def variables(emu: RemoteEmulator, run_s: float) -> dict[str, Any]:
        return {"resource_group_name": "rg", "subscription_id": DEFAULT_SUBSCRIPTION, "entrypoint": None,
                "env": {"EMULATOR_RUN_SECONDS": str(run_s)}}

    return BenchCloud("aci", "azure-container-instance:push", AciEmulator, lambda run_s: {"default_run_s": run_s},
                      lambda emu: {"arm_endpoint": emu.endpoint_url, "allow_http": True,
                                   "static_bearer_token": "bench-token"}, variables)


CLOUDS: dict[str, Callable[[], BenchCloud]] = {"ecs": _ecs, "cloud-run": _cloud_run, "aci": _aci}


def bench_cloud(kind: str) -> BenchCloud:
    return CLOUDS[kind]()
