"""A cloud module whose SDK is not installed (named by a registry line of tests/unit/test_registry.py)."""

import fake_cloud_sdk_not_installed  # noqa: F401 - the point: this import fails
