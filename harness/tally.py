"""A run's accounting lines (committed / archived / lost / wrong / duplicates): printed, and handed to
whoever listens (the test suite lists them all at its end, passed or not)."""

from collections.abc import Callable

listeners: list[Callable[[str], None]] = []


def tally(line: str) -> None:
    print(f"\n{line}")
    for listener in listeners:
        listener(line)
