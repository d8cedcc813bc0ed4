import os

import pytest


def require(available: bool, what: str, hint: str) -> None:
    """Skip on a developer's machine that lacks `what`; under CI a missing dependency fails."""
    if available:
        return
    message = f"{what} is not available: {hint}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (.ci/run must install it)")
    pytest.skip(message)
