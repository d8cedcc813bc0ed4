"""The README and docs/ as the tests read them: the commands and quotes they keep true."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def read(name: str = "README.md") -> str:
    return (ROOT / name).read_text()


def every_page() -> dict[str, str]:
    """README.md and each page under docs/, by path."""
    return {name: read(name) for name in ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]}


def section(name: str, heading: str) -> str:
    """The text under `heading` (its words, at any level) up to the next heading of its level or above;
    a `#` line inside a code block is a shell comment, not a heading."""
    lines = read(name).splitlines(keepends=True)
    level, found, fenced = 0, [], False
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        match = None if fenced else re.match(r"(#+) (.*)\n?$", line)
        if level and match and len(match.group(1)) <= level:
            break
        if level:
            found.append(line)
        elif match and match.group(2) == heading:
            level = len(match.group(1))
    assert level, f"{name} has no heading '{heading}'"
    return "".join(found)
