"""Every Kubernetes object a stack declares, applied to a real API server (tests/apiserver.py) as
Pulumi's provider applies it: server-side, in the program's order, with the namespace's Pod
Security labels enforced by the server's own admission. For the default stack, an Iceberg stack
and a stack on an existing cluster.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.render import render
from harness.apiserver import ApiServer
from harness.stackgraph import FAKE_KUBECONFIG, SECRET_SIG, run_stack

pytestmark = pytest.mark.minutes(1)

WORKLOADS = {"StatefulSet", "Deployment", "DaemonSet", "Job"}
STACKS = {
    "default": {},
    "iceberg": {"archiveFormat": "iceberg"},
    "existing cluster": {"cluster": "existing", "kubeContext": "eks-dev"},
}


def as_applied(value: Any) -> Any:
    """An object's inputs as the provider sends them: secrets as their values, numbers as the
    integers they were (the mock runtime hands them over as floats), Pulumi's own keys left out."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return as_applied(value.get("value"))
        return {key: as_applied(item) for key, item in value.items() if not key.startswith("__")}
    if isinstance(value, list):
        return [as_applied(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def stack_config(name: str, directory: Path) -> dict[str, Any]:
    """STACKS[name], with a kubeconfig file in `directory` for a stack on an existing cluster."""
    config = dict(STACKS[name])
    if config.get("cluster") == "existing":
        kubeconfig = directory / "config"
        kubeconfig.write_text(FAKE_KUBECONFIG)
        config["kubeconfig"] = str(kubeconfig)
    return config


@pytest.fixture(scope="module", params=list(STACKS))
def applied(request, tmp_path_factory):
    """(the server, every object of the stack as applied, the server's answer to each)."""
    graph = run_stack("dev", stack_config(request.param, tmp_path_factory.mktemp("kube")))
    server = ApiServer().start()
    try:
        answers = []
        for resource in graph.kubernetes_objects():
            body = as_applied(resource.inputs)
            answers.append((body, server.apply(body)))
            if body["kind"] == "StatefulSet" and answers[-1][1].ok:
                server.claim_volumes(body)
        yield server, answers
    finally:
        server.stop()


def pod_of(workload: dict[str, Any]) -> dict[str, Any]:
    """The first Pod its controller would make of a workload: for a StatefulSet, with a volume per
    claim template bound to that ordinal's claim."""
    template, name = copy.deepcopy(workload["spec"]["template"]), workload["metadata"]["name"]
    spec = template["spec"]
    for claim in workload["spec"].get("volumeClaimTemplates", []):
        claim_name = claim["metadata"]["name"]
        spec.setdefault("volumes", []).append(
            {"name": claim_name, "persistentVolumeClaim": {"claimName": f"{claim_name}-{name}-0"}})
    return {"apiVersion": "v1", "kind": "Pod", "spec": spec,
            "metadata": {**template.get("metadata", {}), "name": f"{name}-0", "namespace": workload["metadata"]["namespace"]}}


def refusals(answers: list[tuple[dict[str, Any], Any]]) -> dict[str, str]:
    """`Kind/name` → the server's message, of each object it did not take."""
    return {f"{body['kind']}/{body['metadata']['name']}": answer.json().get("message", answer.text)
            for body, answer in answers if answer.status_code not in (200, 201)}


def test_every_object_is_accepted_by_server_side_apply(applied):
    _, answers = applied
    refused = refusals(answers)
    print(f"\n{len(answers)} objects applied; refused: {refused or 'none'}")
    assert answers and refused == {}


def test_each_workloads_pod_passes_the_namespaces_pod_security_admission(applied):
    server, answers = applied
    namespaces = {body["metadata"]["name"]: body["metadata"].get("labels", {}) for body, _ in answers
                  if body["kind"] == "Namespace"}
    assert namespaces and all(labels.get("pod-security.kubernetes.io/enforce") == "restricted"
                              for labels in namespaces.values()), namespaces
    for namespace in namespaces:  # what the controller manager would have made
        server.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": namespace}})
    workloads = [body for body, _ in answers if body["kind"] in WORKLOADS]
    assert workloads
    for workload in workloads:
        pod = pod_of(workload)
        answer = server.create(pod, dry_run=True)
        assert answer.status_code == 201, f"{workload['kind']}/{workload['metadata']['name']}: {answer.json()['message']}"
        # The admission is the server's, and it is enforced: the same pod on the node's network is refused.
        refusal = server.create({**pod, "spec": {**pod["spec"], "hostNetwork": True}}, dry_run=True)
        assert refusal.status_code == 403 and "violates PodSecurity" in refusal.json()["message"], refusal.text


# What a user is likely to change between two `pulumi up`s, and what the API server does with the
# new render applied over the default one, as Pulumi's provider applies it (fields a resource
# ignores changes to keep their old values): None where it takes every object, else the objects it
# refuses. A refused object is one the provider would replace (delete, then create) instead.
UPDATES: dict[str, tuple[dict[str, str], set[str] | None]] = {
    # A claim template cannot change: each StatefulSet ignores them, and the claims grow instead.
    "kafkaStorage 8Gi": ({"kafkaStorage": "8Gi"}, None),
    "postgresStorage 8Gi": ({"postgresStorage": "8Gi"}, None),
    "kafkaStorage 3Gi": ({"kafkaStorage": "3Gi"}, {f"PersistentVolumeClaim/data-kafka-{n}" for n in range(3)}),
    "connectMemory 1Gi": ({"connectMemory": "1Gi", "schemaRegistryMemory": "256Mi"}, None),
    "postgresMemory 640Mi": ({"postgresMemory": "640Mi"}, None),
    "kafkaBrokers 1": ({"kafkaBrokers": "1"}, None),
    "connectWorkers 2": ({"connectWorkers": "2", "connectMemory": "768Mi", "kafkaMemory": "1472Mi"}, None),
    "capture": ({"capture": '["inventory", "sales"]'}, None),
    # The plugin cache's claim is sized for Iceberg's jars from the first `up`.
    "archiveFormat iceberg": ({"archiveFormat": "iceberg"}, None),
    "serialization json": ({"serialization": "json"}, None),
    "hostPortOffset 100": ({"hostPortOffset": "100"}, None),
}
# A new image of each tier: what an upgrade of the project changes (the constants below).
IMAGES = {"kafka": "components.kafka_config.IMAGE", "postgres": "components.postgres.IMAGE",
          "connect": "components.connect_config.IMAGE", "schema-registry": "components.connect_config.SCHEMA_REGISTRY_IMAGE"}


def at(body: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """(the object holding it, its key) of a dotted path in a body."""
    *parents, key = path.split(".")
    for parent in parents:
        body = body[parent]
    return body, key


def over(old_answers: list[tuple[dict[str, Any], Any]], graph) -> list[dict[str, Any]]:
    """A stack's objects as Pulumi's provider applies them over the ones applied before: a field a
    resource ignores changes to keeps the value it had."""
    before = {(body["kind"], body["metadata"]["name"]): body for body, _ in old_answers}
    bodies = []
    for resource in graph.kubernetes_objects():
        body = as_applied(resource.inputs)
        old = before.get((body["kind"], body["metadata"]["name"]))
        for path in resource.ignore_changes:
            if old is not None:
                holder, key = at(body, path)
                holder[key] = copy.deepcopy(at(old, path)[0][key])
        bodies.append(body)
    return bodies


# Over the default stack as applied above (which its own test shows accepted whole).
@pytest.mark.parametrize("applied", ["default"], indirect=True)
@pytest.mark.parametrize("change", list(UPDATES))
def test_each_likely_update_is_taken_in_place_or_refused_by_the_server(applied, change):
    server, answers = applied
    assert refusals(answers) == {}
    config, expected = UPDATES[change]
    refused = refusals([(body, server.apply(body, dry_run=True)) for body in over(answers, run_stack("dev", config))])
    print(f"\n{change}: {refused or 'every object updated in place'}")
    assert set(refused) == (expected or set()), refused
    # A smaller volume: the server's own refusal of each claim (the storage tier's VolumeSizes refuses
    # it first, at preview: tests/test_provider_host.py).
    assert all("field can not be less than" in message for message in refused.values()), refused


@pytest.mark.parametrize("applied", ["default"], indirect=True)
@pytest.mark.parametrize("tier", list(IMAGES))
def test_a_new_image_of_each_tier_is_a_rolling_update_in_place(applied, tier, monkeypatch):
    server, answers = applied
    monkeypatch.setattr(IMAGES[tier], "example.invalid/upgraded:1.0")
    bodies = over(answers, run_stack("dev", {}))
    changed = [body for body in bodies if "example.invalid/upgraded:1.0" in str(body)]
    assert changed, f"no object of {tier} takes its image from {IMAGES[tier]}"
    refused = refusals([(body, server.apply(body, dry_run=True)) for body in changed])
    assert refused == {}, refused


@pytest.mark.parametrize("applied", ["default"], indirect=True)
def test_a_raised_volume_size_grows_every_claim_and_keeps_the_stateful_set(applied):
    """Applied, not a dry run: the last test over the default stack's server."""
    server, answers = applied
    uid = {body["metadata"]["name"]: server.get(body)["metadata"]["uid"] for body, _ in answers
           if body["kind"] == "StatefulSet"}
    bodies = over(answers, run_stack("dev", {"kafkaStorage": "8Gi", "postgresStorage": "6Gi"}))
    assert refusals([(body, server.apply(body)) for body in bodies]) == {}
    namespace = next(body["metadata"]["namespace"] for body in bodies if body["kind"] == "StatefulSet")
    claims = {f"data-kafka-{n}": "8Gi" for n in range(3)} | {"data-postgres-0": "6Gi"}
    for claim, size in claims.items():
        held = server.get({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                           "metadata": {"name": claim, "namespace": namespace}})
        assert held["spec"]["resources"]["requests"]["storage"] == size, held
    # The same StatefulSets, never replaced: their claim templates keep the first size.
    for body in bodies:
        if body["kind"] == "StatefulSet":
            held = server.get(body)
            assert held["metadata"]["uid"] == uid[body["metadata"]["name"]]


def off_schema_numbers(value: Any, schema: dict[str, Any], definitions: dict[str, Any], path: str) -> list[str]:
    """Where `value` holds a float that the OpenAPI schema types as an integer, with its path."""
    while "$ref" in schema:
        schema = definitions[schema["$ref"].rsplit("/", 1)[1]]
    if schema.get("type") == "integer":
        return [] if isinstance(value, int) and not isinstance(value, bool) else [f"{path}: {value!r}"]
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            inner = schema.get("properties", {}).get(key) or schema.get("additionalProperties")
            if isinstance(inner, dict):
                found += off_schema_numbers(item, inner, definitions, f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            found += off_schema_numbers(item, schema["items"], definitions, f"{path}[{index}]")
    return found


def test_make_render_writes_integers_where_the_servers_schema_says_integer(applied, request, tmp_path):
    """The files `make render` writes, as YAML, walked against the server's own OpenAPI schema."""
    server, answers = applied
    definitions = server._get("/openapi/v2").json()["definitions"]
    by_kind = {(kind["group"], kind["version"], kind["kind"]): name for name, definition in definitions.items()
               for kind in definition.get("x-kubernetes-group-version-kind", [])}
    render(run_stack("dev", stack_config(request.node.callspec.params["applied"], tmp_path)), tmp_path)
    files = sorted((tmp_path / "kubernetes").rglob("*.yaml"))
    assert len(files) == len(answers)
    found = []
    for path in files:
        body = yaml.safe_load(path.read_text())
        group, _, version = body["apiVersion"].rpartition("/")
        found += off_schema_numbers(body, definitions[by_kind[(group, version, body["kind"])]], definitions, path.name)
    assert not found
