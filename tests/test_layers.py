"""The house's layers point one way: settings and the tiers at the bottom, the connectors tier on
them, operations (make verify/status) on top, the harness beside the tests; no import circle, and
no product code that imports the harness or the tests. Read from the code's own imports, including
those made inside functions and for type checking only."""

from __future__ import annotations

import ast
from collections import defaultdict
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from harness.stackgraph import ROOT

PACKAGES = ("components", "connectors", "operations", "harness", "scripts", "bench", "policy", "tests")
# What each may import of ours (besides itself).
MAY_IMPORT = {
    "components": set(),
    "connectors": {"components"},
    "operations": {"components", "connectors"},
    "__main__": {"components", "connectors"},
    "policy": {"components"},
    "harness": {"components", "connectors", "operations"},
    "scripts": {"components", "connectors", "operations", "harness"},
    "bench": {"components", "connectors", "operations", "harness"},
    "tests": {"components", "connectors", "operations", "harness", "scripts", "policy", "bench"},
}


def modules() -> dict[str, Path]:
    found = {"__main__": Path(ROOT) / "__main__.py"}
    for package in PACKAGES:
        for path in sorted((Path(ROOT) / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports() -> dict[str, set[str]]:
    """Module → the modules of ours it imports."""
    known = modules()
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            else:
                continue
            edges[name] |= {target for target in targets if target in known and target != name}
    return edges


def test_each_package_imports_only_the_layers_below_it():
    wrong = sorted(f"{module} imports {target}" for module, targets in imports().items() for target in targets
                   if (top := target.split(".")[0]) != (own := module.split(".")[0]) and top not in MAY_IMPORT[own])
    assert not wrong


def test_no_module_imports_itself_through_others():
    try:
        TopologicalSorter(imports()).prepare()
    except CycleError as circle:
        pytest.fail(f"an import circle: {' → '.join(circle.args[1])}")


CHOICES = {"jsonl", "iceberg", "avro", "json"}


def test_a_format_or_serialization_is_asked_of_its_object_never_compared_by_name():
    """Outside components/formats.py (and the tests), no comparison with a choice's name and no
    table keyed by one: every module asks the ArchiveFormat or Serialization object."""
    def named(node: ast.AST) -> bool:
        return isinstance(node, ast.Constant) and node.value in CHOICES

    found = []
    for module, path in modules().items():
        if module.split(".")[0] == "tests" or module == "components.formats":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            compared = isinstance(node, ast.Compare) and any(
                named(side) or isinstance(side, (ast.Tuple, ast.List, ast.Set)) and any(map(named, side.elts))
                for side in (node.left, *node.comparators))
            keyed = isinstance(node, ast.Dict) and any(key is not None and named(key) for key in node.keys)
            if compared or keyed:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found
