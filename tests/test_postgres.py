import json

import pytest

from components.settings import SettingsError

from components.stack import parse_settings
from harness.stackgraph import fake_password, install_mocks, plain, run_program, run_stack

STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
SERVICE = "kubernetes:core/v1:Service"


@pytest.fixture(scope="module")
def graph():
    return run_stack("dev")


def postgres_pod(graph):
    return graph.one(STATEFUL_SET, "postgres").inputs["spec"]["template"]["spec"]


def test_one_pinned_postgres_on_a_database_volume(graph):
    spec = graph.one(STATEFUL_SET, "postgres").inputs["spec"]
    assert spec["replicas"] == 1 and spec["serviceName"] == "postgres"
    [container] = spec["template"]["spec"]["containers"]
    assert container["image"].startswith("postgres:15.") and "latest" not in container["image"]
    [claim] = spec["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == "data-ingestion-database"
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"


def test_postgres_stays_within_its_memory_and_is_probed(graph):
    [container] = postgres_pod(graph)["containers"]
    assert container["resources"]["limits"]["memory"] == "768Mi"
    assert container["resources"]["requests"]["memory"] == "768Mi"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["exec"]["command"][0] == "pg_isready"


def test_postgres_runs_restricted(graph):
    pod = postgres_pod(graph)
    [container] = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["enableServiceLinks"] is False and pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == "postgres"


def test_a_headless_and_a_node_port_service(graph):
    services = {r.metadata["name"]: r.inputs["spec"] for r in graph.of_type(SERVICE)}
    assert services["postgres"]["clusterIP"] == "None"
    assert services["postgres-external"]["type"] == "NodePort"
    assert services["postgres-external"]["ports"][0]["nodePort"] == 30432


def test_logical_decoding_is_configured(graph):
    conf = graph.one("kubernetes:core/v1:ConfigMap", "postgres-config").inputs["data"]["postgresql.conf"]
    settings = dict(line.split(" = ", 1) for line in conf.splitlines())
    assert settings["wal_level"] == "logical"
    assert settings["max_slot_wal_keep_size"] == "2560MB"
    assert int(settings["max_replication_slots"]) >= 1 and int(settings["max_wal_senders"]) >= 1


def test_passwords_are_generated_secrets_delivered_only_as_a_kubernetes_secret(graph):
    secret = graph.one("kubernetes:core/v1:Secret", "postgres-credentials")
    assert secret.wire["stringData"]["value"]["cdc-password"] == fake_password("postgres-cdc-password")
    passwords = [fake_password("postgres-superuser-password"), fake_password("postgres-cdc-password")]
    for resource in graph.resources:
        stored = json.dumps(plain(resource.wire))
        for password in passwords:
            assert password not in stored, f"{resource.type} {resource.name} holds a password in plain text"
    assert not any(p in json.dumps(plain(graph.outputs_wire)) for p in passwords)
    for env in postgres_pod(graph)["containers"][0]["env"]:
        assert "PASSWORD" not in env["name"] or env["name"].endswith("_FILE")


def test_outputs_say_where_postgres_is():
    graph = run_stack("dev-alice", {"hostPortOffset": 100})
    assert graph.outputs["postgres"] == {
        "inCluster": "postgres.data-ingestion.svc.cluster.local:5432",
        "host": "localhost:5532",
        "database": "appdb",
        "cdcUser": "cdc_reader",
        "credentialsSecret": "postgres-credentials",
    }


def test_too_little_memory_for_the_connections_is_refused():
    graph = install_mocks()
    with pytest.raises(SettingsError) as caught:
        run_program(graph, {"postgresMemory": "384Mi", "postgresMaxConnections": "100"})
    [problem] = caught.value.problems
    assert problem.key == "data-ingestion:postgresMemory" and "100 connections" in problem.message
    assert graph.resources == []
    parse_settings("data-ingestion", "dev", {"postgresMemory": "512Mi", "postgresMaxConnections": "20"})
