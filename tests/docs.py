"""The README and docs/ as the tests read them: the commands and quotes they keep true."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def read(name: str = "README.md") -> str:
    return (ROOT / name).read_text()


def every_page() -> dict[str, str]:
    """README.md and each page under docs/, by path."""
    return {name: read(name) for name in ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]}


def headings(text: str) -> Iterator[tuple[int, int, str]]:
    """(line number, level, words) of each heading; a `#` line inside a code block is a shell
    comment, not a heading."""
    fenced = False
    for number, line in enumerate(text.splitlines()):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"(#{1,6}) (.*)$", line)):
            yield number, len(match.group(1)), match.group(2)


def section(name: str, heading: str) -> str:
    """The text under `heading` (its words, at any level) up to the next heading of its level or above."""
    text = read(name)
    found = list(headings(text))
    starts = [(number, level) for number, level, words in found if words == heading]
    assert starts, f"{name} has no heading '{heading}'"
    start, level = starts[0]
    end = next((number for number, other, _ in found if number > start and other <= level), None)
    return "".join(text.splitlines(keepends=True)[start + 1:end])
