import pytest

from components import kafka_config as kconf
from components.stack import parse_settings
from harness.stackgraph import run_stack

STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
SERVICE = "kubernetes:core/v1:Service"


def parse_properties(text):
    """java.util.Properties for what we render: key=value lines, no continuations."""
    properties = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith(("#", "!")):
            continue
        key, separator, value = line.partition("=")
        assert separator, f"not a property line: {line!r}"
        assert key not in properties, f"{key} set twice"
        properties[key.strip()] = value.strip()
    return properties


@pytest.fixture(scope="module")
def graph():
    return run_stack("dev")


def rendered_nodes(graph):
    data = graph.one("kubernetes:core/v1:ConfigMap", "kafka-config").inputs["data"]
    return {name: parse_properties(text) for name, text in data.items()}


def kafka_pod(graph):
    return graph.one(STATEFUL_SET, "kafka").inputs["spec"]["template"]["spec"]


def test_three_kraft_nodes_in_one_parallel_stateful_set(graph):
    spec = graph.one(STATEFUL_SET, "kafka").inputs["spec"]
    assert spec["replicas"] == 3
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["serviceName"] == "kafka-headless"
    [container] = spec["template"]["spec"]["containers"]
    assert container["image"] == f"apache/kafka:{kconf.KAFKA_VERSION}"
    [claim] = spec["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == "data-ingestion-streaming"


def test_every_node_has_complete_properties_with_its_own_id(graph):
    nodes = rendered_nodes(graph)
    assert sorted(nodes) == ["broker-0.properties", "broker-1.properties", "broker-2.properties"]
    required = {"process.roles", "node.id", "controller.quorum.voters", "listeners", "advertised.listeners",
                "listener.security.protocol.map", "inter.broker.listener.name", "controller.listener.names",
                "log.dirs"}
    for ordinal in range(3):
        props = nodes[f"broker-{ordinal}.properties"]
        assert required <= set(props)
        assert props["node.id"] == str(ordinal)
        assert props["process.roles"] == "broker,controller"
        assert "zookeeper.connect" not in props
        listeners = {entry.split("://")[0] for entry in props["listeners"].split(",")}
        mapped = {entry.split(":")[0] for entry in props["listener.security.protocol.map"].split(",")}
        assert listeners == mapped == {"INTERNAL", "CONTROLLER", "EXTERNAL"}
        assert props["controller.listener.names"] in listeners
        assert props["inter.broker.listener.name"] in listeners


def test_the_static_quorum_lists_every_node(graph):
    for props in rendered_nodes(graph).values():
        voters = props["controller.quorum.voters"].split(",")
        assert [voter.split("@")[0] for voter in voters] == ["0", "1", "2"]
        for ordinal, voter in enumerate(voters):
            assert voter.split("@")[1] == f"kafka-{ordinal}.kafka-headless.data-ingestion.svc.cluster.local:9093"


def test_each_broker_advertises_its_own_host_port_and_pod_address(graph):
    for ordinal in range(3):
        advertised = dict(
            entry.split("://") for entry in rendered_nodes(graph)[f"broker-{ordinal}.properties"]["advertised.listeners"].split(",")
        )
        assert advertised["EXTERNAL"] == f"localhost:{9092 + ordinal}"
        assert advertised["INTERNAL"] == f"kafka-{ordinal}.kafka-headless.data-ingestion.svc.cluster.local:9092"


def test_one_node_port_per_broker_selecting_exactly_that_pod(graph):
    services = {r.metadata["name"]: r.inputs["spec"] for r in graph.of_type(SERVICE)}
    for ordinal in range(3):
        spec = services[f"kafka-{ordinal}-external"]
        assert spec["type"] == "NodePort"
        assert spec["selector"]["statefulset.kubernetes.io/pod-name"] == f"kafka-{ordinal}"
        assert spec["ports"][0]["nodePort"] == 30092 + ordinal
        assert spec["ports"][0]["port"] == 9094
    headless = services["kafka-headless"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True


def test_the_offset_shifts_advertised_host_ports_but_not_node_ports():
    graph = run_stack("dev-alice", {"hostPortOffset": 100})
    for ordinal in range(3):
        props = rendered_nodes(graph)[f"broker-{ordinal}.properties"]
        assert f"EXTERNAL://localhost:{9192 + ordinal}" in props["advertised.listeners"]
    node_ports = sorted(r.inputs["spec"]["ports"][0]["nodePort"] for r in graph.of_type(SERVICE)
                        if r.metadata["name"].startswith("kafka-") and r.metadata["name"].endswith("-external"))
    assert node_ports == [30092, 30093, 30094]
    assert graph.outputs["kafka"]["host"] == "localhost:9192,localhost:9193,localhost:9194"


def test_durability_settings(graph):
    for props in rendered_nodes(graph).values():
        assert props["default.replication.factor"] == "3"
        assert props["min.insync.replicas"] == "2"
        assert props["offsets.topic.replication.factor"] == "3"
        assert props["transaction.state.log.replication.factor"] == "3"
        assert props["transaction.state.log.min.isr"] == "2"
        assert props["unclean.leader.election.enable"] == "false"
        assert props["auto.create.topics.enable"] == "false"


@pytest.mark.parametrize("brokers, rf, min_isr", [(1, "1", "1"), (2, "2", "1")])
def test_fewer_brokers_still_accept_writes(brokers, rf, min_isr):
    graph = run_stack("dev", {"kafkaBrokers": brokers})
    nodes = rendered_nodes(graph)
    assert len(nodes) == brokers
    for props in nodes.values():
        assert props["default.replication.factor"] == rf
        assert props["offsets.topic.replication.factor"] == rf
        assert props["min.insync.replicas"] == min_isr
        assert len(props["controller.quorum.voters"].split(",")) == brokers


def test_heap_is_explicit_and_well_below_each_brokers_limit(graph):
    [container] = kafka_pod(graph)["containers"]
    limit_mib = int(container["resources"]["limits"]["memory"].removesuffix("Mi"))
    assert limit_mib * 3 <= 2048
    env = {e["name"]: e.get("value") for e in container["env"]}
    heap = env["KAFKA_HEAP_OPTS"]
    xmx = int(heap.split("-Xmx")[1].split("m")[0])
    assert f"-Xms{xmx}m" in heap
    non_heap = 96 + 48 + 64  # the metaspace, code cache and direct memory caps set beside it
    assert xmx + non_heap < limit_mib
    assert "MaxMetaspaceSize=96m" in env["KAFKA_JVM_PERFORMANCE_OPTS"]


def test_probes_and_hardening(graph):
    pod = kafka_pod(graph)
    [container] = pod["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert probe in container
    assert pod["enableServiceLinks"] is False
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    [spread] = pod["topologySpreadConstraints"]
    assert spread["maxSkew"] == 1 and spread["topologyKey"] == "kubernetes.io/hostname"
    assert "affinity" not in pod


def test_a_disruption_budget_allows_one_broker_down(graph):
    budget = graph.one("kubernetes:policy/v1:PodDisruptionBudget").inputs["spec"]
    assert budget["maxUnavailable"] == 1


def test_the_cluster_id_is_stable_per_stack_and_distinct_between_stacks():
    dev = parse_settings("data-ingestion", "dev", {})
    assert kconf.cluster_id(dev) == kconf.cluster_id(parse_settings("data-ingestion", "dev", {}))
    assert kconf.cluster_id(dev) != kconf.cluster_id(parse_settings("data-ingestion", "dev-alice", {}))
    assert len(kconf.cluster_id(dev)) == 22


def test_outputs_give_both_bootstrap_lists(graph):
    assert graph.outputs["kafka"] == {
        "inCluster": ",".join(f"kafka-{i}.kafka-headless.data-ingestion.svc.cluster.local:9092" for i in range(3)),
        "host": "localhost:9092,localhost:9093,localhost:9094",
    }
