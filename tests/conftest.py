import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from harness.needs import Unavailable  # noqa: E402
from harness.stackgraph import install_mocks  # noqa: E402


@pytest.fixture(autouse=True)
def pulumi_mocks():
    """A fresh mock runtime for every test, recording each resource the program registers."""
    return install_mocks()


def _skip_or_fail(missing: Unavailable):
    """A dependency this machine lacks: skipped on a developer's machine; under CI, a failure, for
    .ci/run must install it."""
    if os.environ.get("CI"):
        pytest.fail(f"{missing} (.ci/run must install it)")
    pytest.skip(str(missing))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    try:
        return (yield)
    except Unavailable as missing:
        _skip_or_fail(missing)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    try:
        return (yield)
    except Unavailable as missing:
        _skip_or_fail(missing)


def minutes(item: pytest.Item) -> float:
    mark = item.get_closest_marker("minutes")
    return mark.args[0] if mark else 0


# Modules whose pipeline fixture is parametrized: each parameter's pipeline is a work unit of its own.
PIPELINE_PER_PARAMETER = {"tests/dataplane/test_avro.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules first (their `minutes` mark, as measured), each module's tests together
    and in order. With `make test`'s `-n N` a worker takes the next work unit (a module) when it is
    nearly done, so the long pipelines start at once and the short modules fill in beside them."""
    items.sort(key=lambda item: -minutes(item))


def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's per-module scheduling, in collection order, with a module of
    PIPELINE_PER_PARAMETER split by its parameter so that its pipelines run side by side."""
    from xdist.scheduler import LoadScopeScheduling

    class ByPipeline(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module, _, test = nodeid.partition("::")
            if module in PIPELINE_PER_PARAMETER and "[" in test:
                return f"{module}[{test.split('[', 1)[1]}"
            return module

    return ByPipeline(config, log)


def pytest_terminal_summary(terminalreporter) -> None:
    """Every test's accounting line (committed / archived / lost / ...), together, passed or not."""
    lines = [(report.nodeid, value) for reports in terminalreporter.stats.values() for report in reports
             if getattr(report, "when", None) == "call" for name, value in getattr(report, "user_properties", ())
             if name == "tally"]
    if lines:
        terminalreporter.section("committed / archived / lost / duplicates")
        for nodeid, line in lines:
            terminalreporter.write_line(f"{nodeid.split('::')[-1]}: {line}")
