"""What the harness needs from the machine, and how it says a piece is missing."""

import os
from pathlib import Path

# Downloads and builds kept between runs (Kafka's jars, the Connect plugins, the registry, the API
# server), each verified when used.
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "data-ingestion"


class Unavailable(Exception):
    """A dependency of the harness this machine lacks: the test suite skips on a developer's machine and
    fails under CI (tests/conftest.py); `make bench` stops with the message."""


def require(available: bool, what: str, hint: str) -> None:
    if not available:
        raise Unavailable(f"{what} is not available: {hint}")
