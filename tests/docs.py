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
    """The text under `heading` (its words, at any level) up to the next heading of its level or above."""
    text = read(name)
    match = re.search(rf"^(#+) {re.escape(heading)}\n", text, re.M)
    assert match, f"{name} has no heading '{heading}'"
    rest = text[match.end():]
    end = re.search(rf"^#{{1,{len(match.group(1))}}} ", rest, re.M)
    return rest[:end.start()] if end else rest
