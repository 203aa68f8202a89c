"""Watched runs keep a slim configuration, one object per distinct one (dispatcher/loops/configs.py)."""

from __future__ import annotations

from pydantic import SecretStr

from dispatcher.loops.configs import SharedConfigurations, for_watching
from providers.ecs import EcsJobConfiguration


def _configuration(secret: str = "s3cret", run: str = "run-1") -> EcsJobConfiguration:
    return EcsJobConfiguration(
        name=f"flow-{run}", labels={"prefect.io/flow-run-id": run}, env={"PREFECT__FLOW_RUN_ID": run},
        command="prefect flow-run execute", cluster="prod",
        aws_credentials={"aws_access_key_id": "AKIAX", "aws_secret_access_key": SecretStr(secret), "region_name": "eu-west-1"},
    )


def test_the_per_run_parts_are_dropped_and_the_rest_kept() -> None:
    slim = for_watching(_configuration())
    assert (slim.env, slim.labels, slim.name) == ({}, {}, None)
    assert slim.cluster == "prod" and slim.command == "prefect flow-run execute"
    assert slim.aws_credentials.aws_secret_access_key.get_secret_value() == "s3cret"


def test_runs_alike_share_one_object_and_other_credentials_do_not() -> None:
    shared = SharedConfigurations(lambda: [])
    one, two = shared.shared(_configuration(run="1")), shared.shared(_configuration(run="2"))
    assert one is two
    other = shared.shared(_configuration(secret="another", run="3"))
    assert other is not one  # equal but for the secret: never shared
    assert other.aws_credentials.aws_secret_access_key.get_secret_value() == "another"


def test_configurations_no_run_holds_are_forgotten_the_held_ones_kept() -> None:
    held: list = []
    shared = SharedConfigurations(lambda: held)
    held += [shared.shared(_configuration(secret=f"held-{n}")) for n in range(10)]
    sizes = []
    for n in range(200):
        shared.shared(_configuration(secret=f"gone-{n}"))  # no run keeps these
        sizes.append(len(shared))
    assert max(sizes) <= 64 and min(sizes[60:]) >= 10  # forgotten as they pile up
    assert all(shared.shared(_configuration(secret=f"held-{n}")) is held[n] for n in range(10))
