"""The SDK's own dynamic-provider host, started and driven over gRPC the way the Pulumi engine does.

The engine runs `python -m pulumi.dynamic` with the project's interpreter, the project root as its
working directory and PULUMI_PROJECT / PULUMI_CONFIG in its environment; reads the port it prints;
calls Configure; then Check, Diff, Create, Read, Update and Delete with each resource's properties
in their wire form. Unknowns travel as the wire's sentinel (the host turns them into
`pulumi.output.Unknown`), and secrets are sent unwrapped, because the host does not accept them.

The properties come from a run of `__main__.py` under mocks (harness/stackgraph.py): what the program
really registers for each connector, the pickled provider (`__provider`) included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from harness.stackgraph import PROJECT, ROOT, SECRET_MARK, SECRET_SIG, Graph, run_stack

CONNECTOR_TYPE = "pulumi-python:dynamic:Resource"
PROVIDER_KEY = "__provider"


def engine_form(wire: Any) -> Any:
    """The wire form as the engine sends it to a provider that does not accept secrets."""
    if isinstance(wire, Mapping):
        if wire.get(SECRET_SIG) == SECRET_MARK:
            return engine_form(wire["value"])
        return {key: engine_form(value) for key, value in wire.items()}
    if isinstance(wire, list):
        return [engine_form(item) for item in wire]
    return wire


def recorded_connectors(fresh_preview: bool, config: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Each connector's properties as the program registers them, by connector name: on the preview
    of a fresh stack (`fresh_preview`: computed outputs unknown) or on an `up` (all known)."""
    return connectors_of(run_stack("dev", config, fresh=fresh_preview))


def connectors_of(graph: Graph) -> dict[str, dict[str, Any]]:
    return {resource.name: engine_form(resource.wire) for resource in graph.of_type(CONNECTOR_TYPE)}


def urn(name: str) -> str:
    return f"urn:pulumi:dev::{PROJECT}::data-ingestion:connectors:Connectors${CONNECTOR_TYPE}::{name}"


def _struct(properties: Mapping[str, Any]) -> struct_pb2.Struct:
    return json_format.ParseDict(dict(properties), struct_pb2.Struct())


def _dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(struct)


@dataclass
class Checked:
    inputs: dict[str, Any]
    failures: list[tuple[str, str]]


class ProviderHost:
    """`python -m pulumi.dynamic` in the project root; stop() ends it."""

    def __init__(self, config: Mapping[str, str] | None = None):
        env = {
            **os.environ,
            "PULUMI_PROJECT": PROJECT,
            "PULUMI_CONFIG": json.dumps({f"{PROJECT}:{key}": value for key, value in (config or {}).items()}),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pulumi.dynamic"], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        line = self.process.stdout.readline().strip()
        if not line.isdigit():
            self.process.kill()
            raise RuntimeError(f"the provider host did not start: {line!r} {self.process.stderr.read().decode()[-2000:]}")
        self.channel = grpc.insecure_channel(f"127.0.0.1:{int(line)}")
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)
        response = self.stub.Configure(
            provider_pb2.ConfigureRequest(args=struct_pb2.Struct(), acceptSecrets=True, acceptResources=True)
        )
        self.accepts_secrets = response.acceptSecrets

    def check(self, name: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> Checked:
        response = self.stub.Check(provider_pb2.CheckRequest(urn=urn(name), olds=_struct(olds), news=_struct(news)))
        return Checked(_dict(response.inputs), [(f.property, f.reason) for f in response.failures])

    def diff(self, name: str, id_: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> provider_pb2.DiffResponse:
        return self.stub.Diff(
            provider_pb2.DiffRequest(urn=urn(name), id=id_, olds=_struct(olds), news=_struct(news))
        )

    def create(self, name: str, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        response = self.stub.Create(provider_pb2.CreateRequest(urn=urn(name), properties=_struct(inputs)))
        return response.id, _dict(response.properties)

    def read(self, name: str, id_: str, outputs: Mapping[str, Any], inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        response = self.stub.Read(
            provider_pb2.ReadRequest(urn=urn(name), id=id_, properties=_struct(outputs), inputs=_struct(inputs))
        )
        return response.id, _dict(response.properties)

    def update(self, name: str, id_: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> dict[str, Any]:
        response = self.stub.Update(
            provider_pb2.UpdateRequest(urn=urn(name), id=id_, olds=_struct(olds), news=_struct(news))
        )
        return _dict(response.properties)

    def delete(self, name: str, id_: str, outputs: Mapping[str, Any]) -> None:
        self.stub.Delete(provider_pb2.DeleteRequest(urn=urn(name), id=id_, properties=_struct(outputs)))

    def up(self, name: str, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """What `pulumi up` does for a connector the stack does not have yet: Check, then Create."""
        checked = self.check(name, {}, inputs)
        if checked.failures:
            raise AssertionError(f"Check of {name} failed: {checked.failures}")
        return self.create(name, checked.inputs)

    def stop(self) -> None:
        self.channel.close()
        self.process.kill()
        self.process.wait(timeout=30)

    def __enter__(self) -> ProviderHost:
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()
