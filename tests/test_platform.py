import pytest

from components.topology import CONNECT, KAFKA, POSTGRES, SCHEMA_REGISTRY, WORKLOADS
from harness.stackgraph import run_stack

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
HOST = {"ip": "172.18.0.1"}  # a NodePort connection from the laptop, as kube-proxy delivers it
INTERNET = {"ip": "52.219.0.10"}  # an S3 endpoint


@pytest.fixture(scope="module")
def graph():
    return run_stack("dev")


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def peer_matches(peer, endpoint):
    if "ipBlock" in peer:
        return "ip" in endpoint and peer["ipBlock"]["cidr"] == "0.0.0.0/0"
    if "ip" in endpoint:
        return False
    # A peer with only a podSelector names pods of the policy's own namespace.
    if endpoint.get("namespace", "data-ingestion") != "data-ingestion":
        return False
    return "namespaceSelector" not in peer and selects(peer.get("podSelector", {}), endpoint["labels"])


def rule_allows(rule, peer_key, endpoint, port):
    ports_ok = "ports" not in rule or any(p["port"] == port and p["protocol"] == "TCP" for p in rule["ports"])
    peers = rule.get(peer_key)
    return ports_ok and (peers is None or any(peer_matches(peer, endpoint) for peer in peers))


def allowed(policies, source, destination, port):
    """NetworkPolicy semantics: a pod selected by any policy of a direction is isolated in it."""

    def direction_allows(pod, direction, peer_key, other):
        chosen = [p for p in policies if "labels" in pod and selects(p["podSelector"], pod["labels"])
                  and direction in p["policyTypes"]]
        if not chosen:
            return True
        return any(rule_allows(rule, peer_key, other, port)
                   for p in chosen for rule in p.get(direction.lower(), []))

    return direction_allows(source, "Egress", "to", destination) and direction_allows(
        destination, "Ingress", "from", source
    )


def pod(workload):
    return {"labels": workload.selector}


def specs(graph):
    return [r.inputs["spec"] for r in graph.of_type(NETWORK_POLICY)]


def test_the_namespace_enforces_the_restricted_pod_security_standard(graph):
    labels = graph.one("kubernetes:core/v1:Namespace").metadata["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


def test_each_workload_has_its_own_service_account_without_a_token(graph):
    accounts = {r.metadata["name"]: r for r in graph.of_type("kubernetes:core/v1:ServiceAccount")}
    for workload in WORKLOADS:
        assert accounts[workload.service_account].inputs["automountServiceAccountToken"] is False
        assert accounts[workload.service_account].metadata["namespace"] == "data-ingestion"


def test_every_workload_is_labelled_as_kubernetes_tools_group_them_and_its_claims_keep_their_labels(graph):
    workloads = {workload.name: workload for workload in WORKLOADS}
    templates = [*graph.of_type("kubernetes:apps/v1:StatefulSet"), *graph.of_type("kubernetes:apps/v1:Deployment")]
    assert {r.metadata["labels"]["app.kubernetes.io/name"] for r in templates} == set(workloads)
    for resource in templates:
        workload = workloads[resource.metadata["labels"]["app.kubernetes.io/name"]]
        expected = {**workload.selector, "app.kubernetes.io/managed-by": "pulumi",
                    "app.kubernetes.io/instance": "data-ingestion-dev",
                    "app.kubernetes.io/component": workload.component, "app.kubernetes.io/version": workload.version}
        assert resource.metadata["labels"] == expected
        assert resource.inputs["spec"]["template"]["metadata"]["labels"] == expected
        # A claim template cannot change on a live StatefulSet: its labels are the first release's.
        for claim in resource.inputs["spec"].get("volumeClaimTemplates", []):
            assert claim["metadata"]["labels"] == {**workload.selector, "app.kubernetes.io/managed-by": "pulumi"}
    assert KAFKA.version == CONNECT.version and POSTGRES.version.startswith("15.")
    owned = [r for r in graph.kubernetes_objects() if not r.type.endswith("Patch")]  # a patch names another's object
    for resource in owned:
        if resource.metadata.get("namespace") == "data-ingestion" or resource.kind == "Namespace":
            assert resource.metadata["labels"]["app.kubernetes.io/instance"] == "data-ingestion-dev", resource.metadata


def test_rbac_grants_only_read_access_and_never_secrets(graph):
    [role] = graph.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role")
    for rule in role.inputs["rules"]:
        assert set(rule["verbs"]) <= {"get", "list", "watch"}
        assert "secrets" not in rule["resources"] and "*" not in rule["resources"]
    [binding] = graph.of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
    assert binding.inputs["roleRef"]["name"] == role.metadata["name"]
    bound = {subject["name"] for subject in binding.inputs["subjects"]}
    assert bound.isdisjoint(w.service_account for w in WORKLOADS)
    assert not graph.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")


@pytest.mark.parametrize(
    "source, destination, port",
    [
        (CONNECT, POSTGRES, 5432),
        (CONNECT, KAFKA, 9092),
        (SCHEMA_REGISTRY, KAFKA, 9092),
        (KAFKA, KAFKA, 9092),
        (KAFKA, KAFKA, 9093),
        (CONNECT, SCHEMA_REGISTRY, 8081),
        (CONNECT, CONNECT, 8083),
    ],
)
def test_each_flow_of_the_diagram_is_allowed(graph, source, destination, port):
    assert allowed(specs(graph), pod(source), pod(destination), port)


@pytest.mark.parametrize(
    "source, destination, port",
    [
        (SCHEMA_REGISTRY, POSTGRES, 5432),
        (KAFKA, POSTGRES, 5432),
        (POSTGRES, KAFKA, 9092),
        (CONNECT, KAFKA, 9093),  # only brokers speak to the controller quorum
        (SCHEMA_REGISTRY, CONNECT, 8083),
        (KAFKA, SCHEMA_REGISTRY, 8081),
    ],
)
def test_anything_else_inside_the_namespace_is_denied(graph, source, destination, port):
    assert not allowed(specs(graph), pod(source), pod(destination), port)


@pytest.mark.parametrize(
    "destination, port", [(POSTGRES, 5432), (KAFKA, 9094), (SCHEMA_REGISTRY, 8081), (CONNECT, 8083)]
)
def test_the_host_reaches_each_published_port(graph, destination, port):
    assert allowed(specs(graph), HOST, pod(destination), port)


def test_the_host_reaches_nothing_unpublished(graph):
    assert not allowed(specs(graph), HOST, pod(KAFKA), 9092)
    assert not allowed(specs(graph), HOST, pod(KAFKA), 9093)


def test_only_connect_reaches_outside_the_cluster(graph):
    assert allowed(specs(graph), pod(CONNECT), INTERNET, 443)
    for workload in (POSTGRES, KAFKA, SCHEMA_REGISTRY):
        assert not allowed(specs(graph), pod(workload), INTERNET, 443)


def test_connect_reaches_a_plugin_mirror_on_its_own_port_and_s3_still():
    mirrored = specs(run_stack("dev", {"pluginRepository": "http://nexus.corp.example:8081/repository/maven-central"}))
    assert allowed(mirrored, pod(CONNECT), INTERNET, 8081)
    assert allowed(mirrored, pod(CONNECT), INTERNET, 443)
    assert not allowed(mirrored, pod(CONNECT), INTERNET, 80)


def test_every_pod_may_resolve_names(graph):
    [dns] = [s for s in specs(graph) if s["podSelector"] == {} and "egress" in s]
    assert {(p["port"], p["protocol"]) for p in dns["egress"][0]["ports"]} == {(53, "UDP"), (53, "TCP")}


def test_storage_classes_retain_data_and_bind_where_the_pod_runs(graph):
    classes = {r.metadata["name"]: r.inputs for r in graph.of_type("kubernetes:storage.k8s.io/v1:StorageClass")}
    assert set(classes) == {"data-ingestion-database", "data-ingestion-streaming", "data-ingestion-cache"}
    for name, spec in classes.items():
        # Data is kept when its claim goes; a cache of downloads is not.
        assert spec["reclaimPolicy"] == ("Delete" if name.endswith("-cache") else "Retain")
        assert spec["volumeBindingMode"] == "WaitForFirstConsumer"
        assert spec["provisioner"] == "rancher.io/local-path"
    assert graph.outputs["storageClasses"] == {
        "database": "data-ingestion-database", "streaming": "data-ingestion-streaming", "cache": "data-ingestion-cache"
    }


def test_a_second_namespace_on_a_shared_cluster_gets_its_own_storage_classes():
    graph = run_stack("dev-bob", {"namespace": "ingest-bob"})
    names = {r.metadata["name"] for r in graph.of_type("kubernetes:storage.k8s.io/v1:StorageClass")}
    assert names == {"ingest-bob-database", "ingest-bob-streaming", "ingest-bob-cache"}
    assert {r.metadata["namespace"] for r in graph.of_type(NETWORK_POLICY)} == {"ingest-bob"}


OTHER_TEAM = {"labels": {"app": "their-app"}, "namespace": "team-b"}  # a pod of another namespace


@pytest.fixture(scope="module")
def shared():
    """A stack on an existing, shared cluster."""
    return run_stack("dev", {"cluster": "existing"})


@pytest.mark.parametrize(
    "destination, port", [(POSTGRES, 5432), (KAFKA, 9094), (KAFKA, 9092), (SCHEMA_REGISTRY, 8081), (CONNECT, 8083)]
)
def test_on_a_shared_cluster_no_other_namespace_and_no_node_port_reaches_a_tier(shared, destination, port):
    # The laptop uses `kubectl port-forward` there, which no NetworkPolicy sees.
    assert not allowed(specs(shared), OTHER_TEAM, pod(destination), port)
    assert not allowed(specs(shared), HOST, pod(destination), port)


def test_on_a_shared_cluster_the_flows_of_the_diagram_still_hold(shared):
    for source, destination, port in ((CONNECT, POSTGRES, 5432), (CONNECT, CONNECT, 8083),
                                      (CONNECT, SCHEMA_REGISTRY, 8081), (SCHEMA_REGISTRY, KAFKA, 9092)):
        assert allowed(specs(shared), pod(source), pod(destination), port)
