"""Run the real `__main__.py` under Pulumi's mock runtime and record the graph it declares.

Every RegisterResource request is kept as the engine would see it: type, name, parent, provider,
options, the inputs, and the wire form of the inputs (where secrets are still marked).
"""

from __future__ import annotations

import json
import os
import runpy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(ROOT, "__main__.py")
PROJECT = "data-ingestion"
SECRET_SIG = rpc._special_sig_key
SECRET_MARK = rpc._special_secret_sig

# A kubeconfig as `kind get kubeconfig` prints it; the token stands in for the client key.
FAKE_KUBECONFIG = "apiVersion: v1\nkind: Config\nusers:\n- name: kind\n  user:\n    token: kubeconfig-credential-1234\n"

FAKE_BUCKET_SUFFIX = "20261125120000000000000001"
FAKE_AUTONAME_SUFFIX = "a1b2c3d"
FAKE_ACCOUNT = "123456789012"
FAKE_ACCESS_KEY_ID = "AKIAFAKEARCHIVESINK01"
FAKE_SECRET_ACCESS_KEY = "FakeSecretAccessKeyOfTheArchiveSink0123456"
FAKE_KMS_KEY_ID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def fake_password(name: str) -> str:
    """What the mocked RandomPassword named `name` generates; tests look for it in plain text."""
    return f"Generated{name.title().replace('-', '')}Value42"


@dataclass
class Registered:
    urn: str
    type: str
    name: str
    parent: str
    provider: str
    custom: bool
    inputs: dict[str, Any]
    wire: dict[str, Any]
    protect: bool
    delete_before_replace: bool
    retain_on_delete: bool
    additional_secret_outputs: list[str]
    dependencies: list[str]
    replace_on_changes: list[str]
    ignore_changes: list[str]
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.inputs.get("kind", "")

    @property
    def metadata(self) -> dict[str, Any]:
        return self.inputs.get("metadata", {})


@dataclass
class Graph:
    stack: str
    resources: list[Registered] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    outputs_wire: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str | None = None) -> Registered:
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {type_} {name or ''}, found {[r.name for r in found]}"
        return found[0]

    def by_urn(self, urn: str) -> Registered:
        return next(r for r in self.resources if r.urn == urn)

    def kubernetes_objects(self) -> list[Registered]:
        return [r for r in self.resources if r.type.startswith("kubernetes:") and r.custom and
                r.type != "pulumi:providers:kubernetes"]

    def component_of(self, resource: Registered) -> Registered | None:
        parent = resource.parent
        while parent:
            owner = self.by_urn(parent)
            if not owner.custom:
                return owner
            parent = owner.parent
        return None


class EchoMocks(pulumi.runtime.Mocks):
    """Outputs are the inputs, plus what a real provider would add that the program reads."""

    bucket_suffix = FAKE_BUCKET_SUFFIX
    autoname_suffix = FAKE_AUTONAME_SUFFIX
    account = FAKE_ACCOUNT
    access_key_id = FAKE_ACCESS_KEY_ID
    kms_key_id = FAKE_KMS_KEY_ID

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        outputs = dict(args.inputs)
        if args.typ == "command:local:Command":
            outputs["stdout"] = FAKE_KUBECONFIG
        if args.typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = fake_password(args.name)
        if args.typ == "aws:s3/bucket:Bucket":
            outputs["bucket"] = args.inputs.get("bucket") or args.inputs["bucketPrefix"] + self.bucket_suffix
            outputs["arn"] = f"arn:aws:s3:::{outputs['bucket']}"
            return outputs["bucket"], outputs
        if args.typ == "aws:iam/user:User":
            outputs["name"] = f"{args.name}-{self.autoname_suffix}"
            outputs["arn"] = f"arn:aws:iam::{self.account}:user{args.inputs['path']}{outputs['name']}"
        if args.typ == "aws:iam/accessKey:AccessKey":
            outputs["secret"] = FAKE_SECRET_ACCESS_KEY
            return self.access_key_id, outputs
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == "aws:kms/getKey:getKey":
            return {"arn": f"arn:aws:kms:us-east-1:{self.account}:key/{self.kms_key_id}", "keyId": args.args["keyId"]}
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": self.account, "arn": f"arn:aws:iam::{self.account}:user/operator", "userId": "AIDAOPERATOR"}
        return {}


class PlaceholderMocks(EchoMocks):
    """What AWS names at `pulumi up` (a bucket's suffix, the account, an access key's id) written as
    placeholders that say so, for a render a reviewer reads."""

    bucket_suffix = "<suffix-chosen-at-up>"
    autoname_suffix = "<suffix-chosen-at-up>"
    account = "<account-id>"
    access_key_id = "<access-key-id>"
    kms_key_id = "<key-id>"


class FreshStackMocks(EchoMocks):
    """The preview of a stack that has nothing yet: ids and every output a provider computes are
    unknown; only what the program gave as inputs is known."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        return "", dict(args.inputs)


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks, graph: Graph):
        super().__init__(mocks)
        self.graph = graph

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.graph.resources.append(
                Registered(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent,
                    provider=request.provider,
                    custom=request.custom,
                    inputs=rpc.deserialize_properties(request.object),
                    wire=json_format.MessageToDict(request.object),
                    protect=request.protect,
                    delete_before_replace=request.deleteBeforeReplace,
                    retain_on_delete=request.retainOnDelete,
                    additional_secret_outputs=list(request.additionalSecretOutputs),
                    dependencies=list(request.dependencies),
                    replace_on_changes=list(request.replaceOnChanges),
                    ignore_changes=list(request.ignoreChanges),
                    property_dependencies={
                        key: list(value.urns) for key, value in request.propertyDependencies.items()
                    },
                )
            )
        return response


def install_mocks(stack: str = "dev", preview: bool = False, fresh: bool = False,
                  mocks: EchoMocks | None = None) -> Graph:
    """`fresh`: the preview of a new stack (implies `preview`), every computed output unknown."""
    graph = Graph(stack=stack)
    preview = preview or fresh
    mocks = mocks or (FreshStackMocks() if fresh else EchoMocks())
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        mocks, project=PROJECT, stack=stack, preview=preview, monitor=RecordingMonitor(mocks, graph)
    )
    pulumi.runtime.set_all_config({}, [])
    return graph


def run_stack(
    stack: str = "dev", config: Mapping[str, Any] | None = None, preview: bool = False, fresh: bool = False,
    mocks: EchoMocks | None = None,
) -> Graph:
    """Run the program for `stack` with these `data-ingestion:` keys; return what it declared."""
    graph = install_mocks(stack, preview, fresh, mocks)
    run_program(graph, config)
    return graph


def run_program(graph: Graph, config: Mapping[str, Any] | None = None) -> None:
    """Run `__main__.py` on mocks installed by install_mocks, recording into `graph`."""
    # Pulumi.yaml's defaults are applied by the CLI, not by the mock runtime: tests give only
    # what a stack file would.
    pulumi.runtime.set_all_config({f"{PROJECT}:{key}": value for key, value in (config or {}).items()}, [])

    @pulumi.runtime.test
    def program():
        runpy.run_path(MAIN, run_name="__main__")
        exported = dict(pulumi_settings.get_root_resource().outputs)

        async def collect():
            wire = await rpc.serialize_properties(exported, {})
            graph.outputs_wire = json_format.MessageToDict(wire)
            graph.outputs = rpc.deserialize_properties(wire)

        return collect()

    program()


def walk(value: Any) -> Iterator[Any]:
    """Every scalar inside a nested structure."""
    if isinstance(value, Mapping):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from walk(item)
    else:
        yield value


def plain(wire: Any) -> Any:
    """The wire form with every secret-marked value cut out: what would be stored in plain text."""
    if isinstance(wire, Mapping):
        if wire.get(SECRET_SIG) == SECRET_MARK:
            return "[secret]"
        return {key: plain(value) for key, value in wire.items()}
    if isinstance(wire, list):
        return [plain(item) for item in wire]
    return wire


def contains_secret_marker(wire: Any) -> bool:
    return SECRET_MARK in json.dumps(wire)
