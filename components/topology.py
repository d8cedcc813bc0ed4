"""Who runs in the namespace, on which ports, and which ports reach the laptop.

The platform tier's NetworkPolicies, the tiers' Services and the Kind port mappings all read this
one table, so a port is written down exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

PROJECT = "data-ingestion"
KAFKA_VERSION = "4.3.1"  # brokers, Connect, the plugins it compiles and the data-plane harness all run this one
POSTGRES_VERSION = "15.19"
# Apicurio's: the registry server and the converters Connect runs are of one release.
REGISTRY_VERSION = "2.6.13.Final"


@dataclass(frozen=True)
class Workload:
    name: str
    component: str  # its part in the pipeline
    version: str  # of the software it runs
    ports: dict[str, int]

    @property
    def selector(self) -> dict[str, str]:
        return {"app.kubernetes.io/name": self.name, "app.kubernetes.io/part-of": PROJECT}

    @property
    def claim_labels(self) -> dict[str, str]:
        """A StatefulSet's volume claim templates never change once created: these labels stay as
        they were first written, so a stack of an earlier release updates in place."""
        return {**self.selector, "app.kubernetes.io/managed-by": "pulumi"}

    def labels(self, instance: str) -> dict[str, str]:
        """The labels Kubernetes' tools group by (kubectl, dashboards, Kind's and Helm's users)."""
        return {
            **self.claim_labels,
            "app.kubernetes.io/instance": instance,
            "app.kubernetes.io/component": self.component,
            "app.kubernetes.io/version": self.version,
        }

    @property
    def service_account(self) -> str:
        return self.name


POSTGRES = Workload("postgres", "database", POSTGRES_VERSION, {"postgres": 5432})
# Container ports. The host ports of the brokers (9092, 9093, 9094 + offset) are a different
# table: every broker listens on the same container ports.
KAFKA = Workload("kafka", "broker", KAFKA_VERSION, {"internal": 9092, "controller": 9093, "external": 9094})
SCHEMA_REGISTRY = Workload("schema-registry", "schema-registry", REGISTRY_VERSION, {"http": 8081})
CONNECT = Workload("connect", "connect-worker", KAFKA_VERSION, {"rest": 8083})

WORKLOADS = (POSTGRES, KAFKA, SCHEMA_REGISTRY, CONNECT)


@dataclass(frozen=True)
class HostPort:
    """A NodePort published on the laptop through Kind's extraPortMappings."""

    name: str
    workload: Workload
    target_port: int
    node_port: int
    host_port: int


POSTGRES_HOST_PORT = 5432
POSTGRES_NODE_PORT = 30432
KAFKA_FIRST_HOST_PORT = 9092
KAFKA_FIRST_NODE_PORT = 30092
SCHEMA_REGISTRY_HOST_PORT = 8081
SCHEMA_REGISTRY_NODE_PORT = 30081
CONNECT_HOST_PORT = 8083
CONNECT_NODE_PORT = 30083

NODE_PORT_RANGE = range(30000, 32768)
HOST_PORT_RANGE = range(1024, 65536)


def host_ports(brokers: int, offset: int, shared_cluster: bool = False) -> list[HostPort]:
    """The port table: every NodePort and the host port it is published on (table port + offset).

    NodePorts are cluster-wide: on a shared cluster (cluster=existing) they shift with the offset
    too, so stacks in namespaces of one cluster do not claim the same ones. A Kind cluster is the
    stack's own and keeps the table's."""
    table = [
        HostPort("postgres", POSTGRES, POSTGRES.ports["postgres"], POSTGRES_NODE_PORT, POSTGRES_HOST_PORT),
    ]
    table += [
        HostPort(
            f"kafka-{ordinal}",
            KAFKA,
            KAFKA.ports["external"],
            KAFKA_FIRST_NODE_PORT + ordinal,
            KAFKA_FIRST_HOST_PORT + ordinal,
        )
        for ordinal in range(brokers)
    ]
    table += [
        HostPort(
            "schema-registry",
            SCHEMA_REGISTRY,
            SCHEMA_REGISTRY.ports["http"],
            SCHEMA_REGISTRY_NODE_PORT,
            SCHEMA_REGISTRY_HOST_PORT,
        ),
        HostPort("connect", CONNECT, CONNECT.ports["rest"], CONNECT_NODE_PORT, CONNECT_HOST_PORT),
    ]
    node_offset = offset if shared_cluster else 0
    return [
        HostPort(p.name, p.workload, p.target_port, p.node_port + node_offset, p.host_port + offset)
        for p in table
    ]
