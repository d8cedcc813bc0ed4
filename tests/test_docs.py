"""The README gets a new user to data in S3 in its first screen, every key is in its table, and every
link of the README and docs/ leads somewhere."""

import re

import yaml

from tests import docs

SCREEN = 50  # lines of a terminal, or of a README's first view on GitHub


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    return {slug(words) for _, _, words in docs.headings(text)}


def test_the_quick_start_fits_a_screen_and_reaches_the_archive():
    quick_start = docs.section("README.md", "Quick start")
    assert len(quick_start.strip().splitlines()) <= SCREEN
    for step in ("make up", "make verify", "aws s3 ls", "make test"):
        assert step in quick_start
    readme = docs.read()
    assert readme.index("## Quick start") < readme.index("## Configuration")


def test_every_link_of_the_readme_and_docs_resolves_to_a_file_and_a_heading():
    pages = docs.every_page()
    broken = []
    for name, text in pages.items():
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+://", target):
                continue
            path, _, anchor = target.partition("#")
            resolved = (docs.ROOT / name).parent / path if path else docs.ROOT / name
            if not resolved.resolve().exists():
                broken.append(f"{name}: {target} (no such file)")
            elif anchor and anchor not in anchors(resolved.read_text()):
                broken.append(f"{name}: {target} (no such heading)")
    assert len(pages) >= 8 and not broken, broken


def test_every_config_key_has_a_row_in_the_readmes_table():
    declared = yaml.safe_load(docs.read("Pulumi.yaml"))["config"]
    table = docs.section("README.md", "Configuration")
    first_cells = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    listed = {key for cell in first_cells for key in re.findall(r"`([A-Za-z]+)`", cell)}
    assert set(declared) == listed
