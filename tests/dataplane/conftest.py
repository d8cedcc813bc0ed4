import os
from pathlib import Path

import pytest

# Downloads kept between runs (Kafka's jars, the Connect plugins), each verified when used.
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "data-ingestion"


def require(available: bool, what: str, hint: str) -> None:
    """Skip on a developer's machine that lacks `what`; under CI a missing dependency fails."""
    if available:
        return
    message = f"{what} is not available: {hint}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (.ci/run must install it)")
    pytest.skip(message)
