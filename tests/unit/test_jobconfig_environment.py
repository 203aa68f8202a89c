"""The settings environment every run starts from is Prefect's own, computed once per settings object."""

from __future__ import annotations

from prefect.settings import Settings, get_current_settings
from prefect.settings.context import temporary_settings
from prefect.settings import PREFECT_API_URL

from providers.jobconfig import JobConfiguration, settings_environment
from providers.local.config import LocalJobConfiguration


def test_the_environment_is_prefects_and_reflects_the_current_settings() -> None:
    with temporary_settings({PREFECT_API_URL: "http://one.example/api"}):
        first = LocalJobConfiguration._base_environment()
        assert first == get_current_settings().to_environment_variables(exclude_unset=True)
        assert first["PREFECT_API_URL"] == "http://one.example/api"
    with temporary_settings({PREFECT_API_URL: "http://two.example/api"}):
        assert LocalJobConfiguration._base_environment()["PREFECT_API_URL"] == "http://two.example/api"


def test_one_serialisation_per_settings_object_and_callers_get_copies() -> None:
    calls = []

    class Counting(Settings):
        def to_environment_variables(self, *args, **kwargs):
            calls.append(1)
            return super().to_environment_variables(*args, **kwargs)

    settings = Counting()
    first = settings_environment(settings)
    first["MUTATED"] = "x"
    second = settings_environment(settings)
    assert len(calls) == 1 and "MUTATED" not in second
    assert issubclass(LocalJobConfiguration, JobConfiguration)
