"""`make render`: everything a stack declares, as files a reviewer can read, with no secret in them.

Runs the program under Pulumi's mock runtime with the stack's `data-ingestion:` config (from
Pulumi.<stack>.yaml) and writes:
  <out>/kubernetes/<tier>/<kind>-<name>.yaml   one file per Kubernetes object
  <out>/aws.json                               the AWS resources and their inputs
  <out>/connectors.json                        the connector configs Kafka Connect will get
Secret values (Pulumi secrets) are written as <redacted>.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from components.settings import config_from_stack_file  # noqa: E402
from components.topology import PROJECT  # noqa: E402
from tests.stackgraph import SECRET_SIG, Graph, Registered, run_stack  # noqa: E402

REDACTED = "<redacted>"


def redact(value: Any) -> Any:
    """The inputs with every Pulumi secret replaced (map keys kept, so the shape stays readable)."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            inner = value.get("value")
            return {key: REDACTED for key in inner} if isinstance(inner, dict) else REDACTED
        return {key: redact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def kubernetes_object(resource: Registered) -> dict[str, Any]:
    return {key: value for key, value in redact(resource.inputs).items() if not key.startswith("__")}


def tier_of(graph: Graph, resource: Registered) -> str:
    component = graph.component_of(resource)
    return component.name if component else "stack"


def render(graph: Graph, out: Path) -> list[Path]:
    """Write the graph's objects under `out`; return the files written, in order."""
    if out.exists():
        shutil.rmtree(out)
    written: list[Path] = []
    for resource in graph.kubernetes_objects():
        body = kubernetes_object(resource)
        path = out / "kubernetes" / tier_of(graph, resource) / f"{body['kind'].lower()}-{body['metadata']['name']}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(body, sort_keys=True, width=120))
        written.append(path)
    aws = [
        {"type": r.type, "name": r.name, "retainOnDelete": r.retain_on_delete, "inputs": redact(r.inputs)}
        # Registration order varies from run to run; the file must not.
        for r in sorted(graph.resources, key=lambda r: (r.type, r.name))
        if r.type.startswith("aws:") or r.type == "pulumi:providers:aws"
    ]
    dynamic = graph.of_type("pulumi-python:dynamic:Resource")
    connectors = {
        r.name: {"connectUrl": r.inputs["connectUrl"], "config": redact(r.inputs["config"])}
        for r in dynamic if "connectUrl" in r.inputs
    }
    documents = [("aws.json", json.dumps(aws, indent=2, sort_keys=True) + "\n"),
                 ("connectors.json", json.dumps(connectors, indent=2, sort_keys=True) + "\n")]
    # The capture step's SQL: what `pulumi up` runs in the database when `capture` changes.
    documents += [("postgres/capture.sql", r.inputs["sql"]) for r in dynamic if "sql" in r.inputs]
    for name, text in documents:
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--out", help="directory to write (default: render/<stack>)")
    args = parser.parse_args()
    out = Path(args.out) if args.out else ROOT / "render" / args.stack
    graph = run_stack(args.stack, config_from_stack_file(PROJECT, args.stack))
    files = render(graph, out)
    print(f"rendered {len(files)} files for stack {args.stack} into {os.path.relpath(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
