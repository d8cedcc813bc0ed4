"""Every Kubernetes object a stack declares, applied to a real API server (tests/apiserver.py) as
Pulumi's provider applies it: server-side, in the program's order, with the namespace's Pod
Security labels enforced by the server's own admission. For the default stack, an Iceberg stack
and a stack on an existing cluster.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.apiserver import ApiServer
from tests.stackgraph import FAKE_KUBECONFIG, SECRET_SIG, run_stack

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


@pytest.fixture(scope="module", params=list(STACKS))
def applied(request, tmp_path_factory):
    """(the server, every object of the stack as applied, the server's answer to each)."""
    config = dict(STACKS[request.param])
    if config.get("cluster") == "existing":
        kubeconfig = tmp_path_factory.mktemp("kube") / "config"
        kubeconfig.write_text(FAKE_KUBECONFIG)
        config["kubeconfig"] = str(kubeconfig)
    graph = run_stack("dev", config)
    server = ApiServer().start()
    try:
        answers = []
        for resource in graph.kubernetes_objects():
            body = as_applied(resource.inputs)
            answers.append((body, server.apply(body)))
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
# new render applied over the default one: None where it takes every object, else the objects it
# refuses. A refused object is one Pulumi's provider replaces (delete, then create) instead: for a
# StatefulSet, every pod stops at once, and the new pods bind the old claims at their old size.
UPDATES: dict[str, tuple[dict[str, str], set[str] | None]] = {
    "kafkaStorage 8Gi": ({"kafkaStorage": "8Gi"}, {"StatefulSet/kafka"}),
    "postgresStorage 8Gi": ({"postgresStorage": "8Gi"}, {"StatefulSet/postgres"}),
    "connectMemory 1Gi": ({"connectMemory": "1Gi", "schemaRegistryMemory": "256Mi"}, None),
    "postgresMemory 640Mi": ({"postgresMemory": "640Mi"}, None),
    "connectWorkers 2": ({"connectWorkers": "2", "connectMemory": "768Mi", "kafkaMemory": "1472Mi"}, None),
    "capture": ({"capture": '["inventory", "sales"]'}, None),
    # Iceberg's jars need a larger plugin volume, a claim template of Connect's StatefulSet.
    "archiveFormat iceberg": ({"archiveFormat": "iceberg"}, {"StatefulSet/connect"}),
    "serialization json": ({"serialization": "json"}, None),
    "hostPortOffset 100": ({"hostPortOffset": "100"}, None),
}


# Over the default stack as applied above (which its own test shows accepted whole).
@pytest.mark.parametrize("applied", ["default"], indirect=True)
@pytest.mark.parametrize("change", list(UPDATES))
def test_each_likely_update_is_taken_in_place_or_declared_a_replacement(applied, change):
    server, answers = applied
    assert refusals(answers) == {}
    config, expected = UPDATES[change]
    bodies = [as_applied(resource.inputs) for resource in run_stack("dev", config).kubernetes_objects()]
    refused = refusals([(body, server.apply(body, dry_run=True)) for body in bodies])
    print(f"\n{change}: {refused or 'every object updated in place'}")
    assert set(refused) == (expected or set()), refused
    assert all("updates to statefulset spec for fields other than" in message for message in refused.values())
