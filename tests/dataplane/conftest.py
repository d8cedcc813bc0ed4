import os
from pathlib import Path

import pytest

# Downloads kept between runs (Kafka's jars, the Connect plugins), each verified when used.
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "data-ingestion"

_running: list[pytest.Item] = []  # the test now running in this process


@pytest.fixture(autouse=True)
def _tally_target(request):
    _running.append(request.node)
    yield
    _running.pop()


def tally(line: str) -> None:
    """Print a test's accounting (committed / archived / lost / wrong / duplicates) and keep it for the
    run's closing summary, which lists every such line whether the test passed or not."""
    print(f"\n{line}")
    if _running:
        _running[-1].user_properties.append(("tally", line))


def require(available: bool, what: str, hint: str) -> None:
    """Skip on a developer's machine that lacks `what`; under CI a missing dependency fails."""
    if available:
        return
    message = f"{what} is not available: {hint}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (.ci/run must install it)")
    pytest.skip(message)
