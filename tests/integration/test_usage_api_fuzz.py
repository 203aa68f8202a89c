"""The usage API fuzzed from its own OpenAPI document (schemathesis): whatever the input and
whichever token, no 5xx, and no secret (tokens, the workspace's Prefect API key) in any answer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.usage_data import ADMIN_TOKEN, METRICS_TOKEN, OTHER_TOKEN, PREFECT_KEY, READ_TOKEN
from tests.usage_server import serving_usage

SECRETS = (READ_TOKEN, ADMIN_TOKEN, METRICS_TOKEN, OTHER_TOKEN, PREFECT_KEY)
CALLERS = {"admin": ADMIN_TOKEN, "reader": READ_TOKEN, "other workspace": OTHER_TOKEN, "unknown": "x" * 20, "none": None}


@pytest.fixture(scope="module")
def usage_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving_usage(tmp_path_factory.mktemp("usage-fuzz")) as url:
        yield url


def test_no_input_gets_a_server_error_or_a_secret(usage_url: str) -> None:
    """Cases from every operation (valid and invalid ones), each sent by every kind of caller.

    Driven through hypothesis directly: schemathesis' pytest plugin does not run under pytest 9."""
    schema = schemathesis.openapi.from_url(f"{usage_url}/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 6
    cases = st.one_of([operation.as_strategy() for operation in operations])

    @settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=cases)
    def each(case: schemathesis.Case) -> None:
        for caller, token in CALLERS.items():
            if "workspace" in (case.path_parameters or {}) and caller in ("admin", "reader"):
                case.path_parameters["workspace"] = "acme"  # random names stop at 403/404: also go past them
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = case.call(base_url=usage_url, headers=headers)
            where = (caller, case.method, case.formatted_path, response.status_code)
            assert response.status_code < 500, (*where, response.text[:300])
            assert not any(secret in response.text for secret in SECRETS), where
            assert not any(secret in str(response.headers) for secret in SECRETS), where
            if token is None or caller == "unknown":
                assert response.status_code == 401, where

    each()
