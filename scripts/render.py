"""`make render`: everything a stack declares, as files a reviewer can read, with no secret in them.

Runs the program under Pulumi's mock runtime with the stack's `data-ingestion:` config (from
Pulumi.<stack>.yaml) and writes:
  <out>/kubernetes/<tier>/<kind>-<name>.yaml   one file per Kubernetes object
  <out>/aws.json                               the AWS resources and their inputs
  <out>/connectors.json                        the connector configs Kafka Connect will get
Secret values (Pulumi secrets) are written as <redacted>; what AWS names at `pulumi up` (the
bucket's suffix, the account) as <…> placeholders; the `owner` tag, unless the stack file sets it, as
<your-login-name>, so that two reviewers' renders of one stack are the same files. A summary per tier
(objects, images, memory) follows the files.
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

from components.quantity import Memory  # noqa: E402
from components.settings import config_from_stack_file  # noqa: E402
from components.topology import PROJECT  # noqa: E402
from harness.stackgraph import SECRET_SIG, Graph, PlaceholderMocks, Registered, run_stack  # noqa: E402

REDACTED = "<redacted>"
OWNER_PLACEHOLDER = "<your-login-name>"
# The stack `make up` creates when none is named: rendered from the defaults before it has a file.
DEFAULT_STACK = "dev"


def redact(value: Any) -> Any:
    """The inputs with every Pulumi secret replaced (map keys kept, so the shape stays readable), and
    numbers as the integers the program wrote (Pulumi's wire format carries every number as a float)."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            inner = value.get("value")
            return {key: REDACTED for key in inner} if isinstance(inner, dict) else REDACTED
        return {key: redact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
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


def summary(graph: Graph) -> list[str]:
    """A line per tier: its objects, the images its pods run, the memory their containers may use
    (limits times replicas; init containers run before the others and are not added)."""
    tiers: dict[str, dict[str, Any]] = {}
    for resource in graph.kubernetes_objects():
        body = kubernetes_object(resource)
        tier = tiers.setdefault(tier_of(graph, resource), {"objects": 0, "images": set(), "memory": 0})
        tier["objects"] += 1
        pod = body.get("spec", {}).get("template", {}).get("spec")
        if pod is None:
            continue
        tier["images"] |= {container["image"] for container in pod.get("initContainers", []) + pod["containers"]}
        replicas = body["spec"].get("replicas", 1)
        tier["memory"] += replicas * sum(Memory.parse(container["resources"]["limits"]["memory"]).bytes
                                         for container in pod["containers"])
    width = max(len(name) for name in tiers)
    lines = []
    for name, tier in tiers.items():
        memory = f"{tier['memory'] // 2**20} MiB" if tier["memory"] else "no pods"
        images = ", ".join(sorted(image.split("@")[0] for image in tier["images"])) or "-"
        lines.append(f"  {name:<{width}}  {tier['objects']:>3} objects  {memory:>9}  {images}")
    total = sum(tier["memory"] for tier in tiers.values()) // 2**20
    lines.append(f"  {'all':<{width}}  {sum(t['objects'] for t in tiers.values()):>3} objects  {total:>5} MiB")
    return lines


def stack_config(stack: str) -> dict[str, Any]:
    """The stack file's keys, the owner tag made the same for every reviewer; a stack with no file is
    refused (a misspelt name would otherwise render the defaults), but for the one `make up` creates."""
    if not (ROOT / f"Pulumi.{stack}.yaml").exists() and stack != DEFAULT_STACK:
        known = sorted(path.name.removeprefix("Pulumi.").removesuffix(".yaml") for path in ROOT.glob("Pulumi.*.yaml"))
        raise SystemExit(f"render: there is no stack '{stack}' here (no Pulumi.{stack}.yaml); stacks with a file: "
                         f"{', '.join(known) or 'none'}. Create it with `pulumi stack init {stack}`, or render "
                         f"'{DEFAULT_STACK}' (the defaults, before `make up` creates its file).")
    config = config_from_stack_file(PROJECT, stack)
    return {"owner": OWNER_PLACEHOLDER, **config}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--out", help="directory to write (default: render/<stack>)")
    args = parser.parse_args()
    out = Path(args.out) if args.out else ROOT / "render" / args.stack
    graph = run_stack(args.stack, stack_config(args.stack), mocks=PlaceholderMocks())
    files = render(graph, out)
    print(f"rendered {len(files)} files for stack {args.stack} into {os.path.relpath(out)}")
    print("\n".join(summary(graph)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
