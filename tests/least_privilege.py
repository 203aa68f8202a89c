"""pytest plugin: what cloud permissions the provider suites needed, session-wide, for the least-privilege tests.

Every emulator's call log reports each permission it records (``kit.observe_permissions``,
past ``reset_calls()`` and the emulator's end); this plugin files them under the test that
was running then (setup, call or teardown). Tests marked ``least_privilege`` run last in the
session and read the record through the ``provider_permissions`` fixture, which also tells
whether a cloud's provider suite ran completely and passed (else the comparison would prove
nothing, and the test skips saying so).

Not counted: ``tests/emulators_tests/`` (they call emulator operations directly), the tests of
this mechanism (``tests/terraform/``), Prefect's
own workers on the emulators (``tests/e2e/test_prefect_*_worker_on_emulator.py``), and calls a
provider test makes itself inside ``with calls_not_by_the_provider():`` (say, creating a second
cluster): they are not the dispatcher's.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.emulators.kit import observe_permissions

MARK = "least_privilege"
SETUP = "<the test itself> "
NOT_THE_PROVIDER = ("tests/emulators_tests/", "tests/e2e/test_prefect_", "tests/terraform/", SETUP)


@dataclass(frozen=True)
class ProviderSuite:
    """The tests that, together, drive every path of one cloud's provider."""

    kind: str
    files: tuple[str, ...]

    def contains(self, nodeid: str) -> bool:
        path, _, rest = nodeid.partition("::")
        if path == "tests/providers/test_contract.py":  # parametrized per provider kind
            return re.search(rf"\[(.*-)?{re.escape(self.kind)}(-.*)?\]$", rest) is not None
        return path in self.files


SUITES = {
    "ecs": ProviderSuite("ecs", ("tests/providers/test_ecs_specific.py", "tests/e2e/test_ecs_end_to_end.py")),
    "cloud-run": ProviderSuite("cloud-run", ("tests/providers/test_cloud_run_specific.py",
                                             "tests/providers/test_cloud_run_terraform.py",
                                             "tests/e2e/test_cloud_run_end_to_end.py")),
    "aci": ProviderSuite("aci", ("tests/providers/test_aci_specific.py", "tests/providers/test_aci_terraform.py",
                                 "tests/e2e/test_aci_end_to_end.py")),
}
SUITE_FILES = {file for suite in SUITES.values() for file in suite.files} | {"tests/providers/test_contract.py"}


def kind_of(permission: str) -> str:
    """Which cloud a permission belongs to, from how each cloud spells them."""
    if permission.startswith("Microsoft."):
        return "aci"  # ARM: Microsoft.ContainerInstance/containerGroups/write
    if ":" in permission:
        return "ecs"  # IAM: ecs:RunTask, ec2:DescribeSubnets, logs:GetLogEvents, iam:PassRole
    return "cloud-run"  # Google IAM: run.jobs.run, iam.serviceAccounts.actAs


@dataclass
class PermissionRecord:
    """Permissions per test, and which provider-suite tests were collected and passed."""

    by_test: dict[str, Counter[str]] = field(default_factory=dict)
    collected: set[str] = field(default_factory=set)
    passed: set[str] = field(default_factory=set)
    partial_files: set[str] = field(default_factory=set)
    current: str = "<outside any test>"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, names: tuple[str, ...]) -> None:
        with self.lock:
            self.by_test.setdefault(self.current, Counter()).update(names)

    def called(self, kind: str) -> set[str]:
        """Every permission of that cloud recorded while a test of the dispatcher's own code ran."""
        with self.lock:
            return {name for test, counts in self.by_test.items() if not test.startswith(NOT_THE_PROVIDER)
                    for name in counts if kind_of(name) == kind}

    def incomplete(self, kind: str) -> str | None:
        """Why the session's record cannot prove least privilege for this cloud, or None if it can."""
        suite = SUITES[kind]
        partial = sorted(f for f in self.partial_files if f in suite.files or f.endswith("test_contract.py"))
        if partial:
            return f"only part of {', '.join(partial)} was selected, so the {kind} provider suite did not run whole"
        ran = {nodeid.partition("::")[0] for nodeid in self.collected if suite.contains(nodeid)}
        absent = sorted(set(suite.files) - ran)
        if "tests/providers/test_contract.py" not in ran:
            absent.append(f"tests/providers/test_contract.py ([{kind}] cases)")
        if absent:
            return (f"the {kind} provider suite did not run in this session (missing: {', '.join(absent)}); "
                    f"run e.g. `pytest {' '.join(suite.files)} tests/providers/test_contract.py <this test>`")
        failed = sorted(n for n in self.collected if suite.contains(n) and n not in self.passed)
        if failed:
            return f"{len(failed)} test(s) of the {kind} provider suite did not pass, e.g. {failed[0]}"
        return None


_record = PermissionRecord()
_stop_key = pytest.StashKey[object]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARK}: compares granted with used cloud permissions; runs last")
    config.stash[_stop_key] = observe_permissions(_record.add)


def pytest_unconfigure(config: pytest.Config) -> None:
    stop = config.stash.get(_stop_key, None)
    if callable(stop):
        stop()


def pytest_deselected(items: list[pytest.Item]) -> None:
    _record.partial_files.update(i.nodeid.partition("::")[0] for i in items
                                 if i.nodeid.partition("::")[0] in SUITE_FILES)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """The least-privilege tests go last: they read what every other test needed."""
    items.sort(key=lambda item: item.get_closest_marker(MARK) is not None)  # stable: the rest keep their order
    for arg in config.args:
        path, sep, _ = arg.partition("::")
        if sep and any(path.endswith(f) for f in SUITE_FILES):  # one test of a suite file named
            _record.partial_files.add(next(f for f in SUITE_FILES if path.endswith(f)))


def pytest_collection_finish(session: pytest.Session) -> None:
    _record.collected = {item.nodeid for item in session.items}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    _record.current = item.nodeid
    try:
        return (yield)
    finally:
        _record.current = "<between tests>"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed:
        _record.passed.add(report.nodeid)
    elif report.failed or report.skipped:
        _record.passed.discard(report.nodeid)  # a failed teardown undoes a passed call


@contextlib.contextmanager
def calls_not_by_the_provider() -> Iterator[None]:
    """Permissions recorded inside the block are the test's own set-up, not the provider's: not counted.
    The provider must not be working concurrently (its calls would be discounted too)."""
    previous = _record.current
    _record.current = SETUP + previous
    try:
        yield
    finally:
        _record.current = previous


@pytest.fixture
def provider_permissions() -> PermissionRecord:
    return _record
