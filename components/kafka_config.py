"""Kafka's configuration as pure functions: one properties map per KRaft node.

The Kafka tier ships them into the cluster; the data-plane tests start real brokers from them,
replacing only addresses, ports and paths.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass

from .k8s import jvm_heap, jvm_options
from .quantity import Memory, below_minimum
from .settings import Settings, StackConfig
from .topology import KAFKA, KAFKA_VERSION, PROJECT

IMAGE = f"apache/kafka:{KAFKA_VERSION}"
STATEFUL_SET = "kafka"
HEADLESS_SERVICE = "kafka-headless"
DATA_DIR = "/var/lib/kafka/data"
# Kafka leans on the page cache, not its heap: half the container goes to the heap.
HEAP_FRACTION = 0.5
SEGMENT = Memory.mebibytes(64)
# Retention frees closed segments only: a volume that cannot hold a few of them fills up before
# the first one of a busy partition closes. (Change topics roll smaller ones: buffer_config.py.)
MINIMUM_STORAGE = Memory.mebibytes(4 * SEGMENT.mib)
# Methods the JIT leaves interpreted. C2 compiling LocalLog's read loop (hot once a consumer reads
# behind the tail, from closed segments: Iceberg's sink, a sink catching up after an outage) took
# 200-300 MiB of compiler arena for seconds, which glibc then kept: measured, a broker went from
# about 420 to 720 MiB, over its limit. It runs once per partition a fetch reads; what it calls is
# compiled as ever. tests/dataplane/test_kafka_jvm.py checks each name is in the pinned Kafka.
NOT_COMPILED = ("org.apache.kafka.storage.internals.log.LocalLog::lambda$read$1",)
JVM_OPTIONS = jvm_options(96, 48, 64, "-XX:InitiatingHeapOccupancyPercent=35", "-XX:CompileCommand=quiet",
                          *(f"-XX:CompileCommand=exclude,{method}" for method in NOT_COMPILED))


@dataclass(frozen=True)
class Endpoints:
    """Where one node listens and what it tells clients; the data plane swaps in loopback."""

    internal_host: str
    internal_port: int
    controller_host: str
    controller_port: int
    external_host: str
    external_port: int
    external_bind_port: int


def cluster_id(settings: Settings) -> str:
    """Stable for the stack (the same on every `up`), distinct between stacks: a KRaft cluster id
    is a UUID in URL-safe base64 without padding."""
    raw = uuid.uuid5(uuid.NAMESPACE_DNS, f"{settings.names.stack_slug}.{PROJECT}").bytes
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def pod_dns(settings: Settings, ordinal: int) -> str:
    return f"{STATEFUL_SET}-{ordinal}.{HEADLESS_SERVICE}.{settings.config.namespace}.svc.cluster.local"


def cluster_endpoints(settings: Settings) -> list[Endpoints]:
    """In the cluster: per-pod DNS inside, `localhost:<host port of that broker>` outside."""
    external = [p for p in settings.host_ports if p.workload is KAFKA]
    return [
        Endpoints(
            internal_host=pod_dns(settings, ordinal),
            internal_port=KAFKA.ports["internal"],
            controller_host=pod_dns(settings, ordinal),
            controller_port=KAFKA.ports["controller"],
            external_host="localhost",
            external_port=external[ordinal].host_port,
            external_bind_port=KAFKA.ports["external"],
        )
        for ordinal in range(settings.brokers)
    ]


# Room for a record batch's framing around the largest record the stack allows.
BATCH_OVERHEAD = 64 * 1024


def max_message_bytes(settings: Settings) -> int:
    """The brokers' and the change topics' limit: a batch holding one record of maxRecordBytes."""
    return settings.config.max_record_bytes.bytes + BATCH_OVERHEAD


def heap(settings: Settings) -> Memory:
    return jvm_heap(settings.broker_memory, HEAP_FRACTION)


def broker_properties(
    settings: Settings, ordinal: int, endpoints: list[Endpoints] | None = None, data_dir: str = DATA_DIR
) -> dict[str, str]:
    """server.properties of KRaft node `ordinal`: a combined broker and controller."""
    nodes = endpoints or cluster_endpoints(settings)
    me = nodes[ordinal]
    rf, min_isr = str(settings.replication_factor), str(settings.min_insync_replicas)
    return {
        "process.roles": "broker,controller",
        "node.id": str(ordinal),
        "controller.quorum.voters": ",".join(
            f"{i}@{node.controller_host}:{node.controller_port}" for i, node in enumerate(nodes)
        ),
        "listeners": (
            f"INTERNAL://0.0.0.0:{me.internal_port},CONTROLLER://0.0.0.0:{me.controller_port},"
            f"EXTERNAL://0.0.0.0:{me.external_bind_port}"
        ),
        "advertised.listeners": (
            f"INTERNAL://{me.internal_host}:{me.internal_port},EXTERNAL://{me.external_host}:{me.external_port}"
        ),
        "listener.security.protocol.map": "INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT,EXTERNAL:PLAINTEXT",
        "inter.broker.listener.name": "INTERNAL",
        "controller.listener.names": "CONTROLLER",
        "log.dirs": data_dir,
        # Durability: one broker may be lost with nothing acknowledged lost.
        "default.replication.factor": rf,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": rf,
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": rf,
        "share.coordinator.state.topic.min.isr": min_isr,
        "unclean.leader.election.enable": "false",
        # Topics are created on purpose, with declared settings.
        "auto.create.topics.enable": "false",
        "num.partitions": "6",
        # Two cores: a handful of threads, not the defaults sized for servers.
        "num.network.threads": "3",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
        "background.threads": "4",
        "log.segment.bytes": str(SEGMENT.bytes),
        "log.retention.hours": "168",
        # Records deleted below an offset (the buffer guard's) free their segments at the next check,
        # and the files go 5 s later (Kafka's default waits a minute, while the volume goes on filling).
        "log.retention.check.interval.ms": "10000",
        "log.segment.delete.delay.ms": "5000",
        "group.initial.rebalance.delay.ms": "0",
        "message.max.bytes": str(max_message_bytes(settings)),
        "replica.fetch.max.bytes": str(max_message_bytes(settings)),
    }


def storage_problem(config: StackConfig) -> tuple[str, str] | None:
    return below_minimum("kafkaStorage", config.kafka_storage, MINIMUM_STORAGE,
                         f" per broker: Kafka writes its log in {SEGMENT.mib}Mi segments and frees only closed ones")


def render_properties(properties: dict[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in properties.items())


def bootstrap_servers(settings: Settings) -> str:
    return ",".join(f"{node.internal_host}:{node.internal_port}" for node in cluster_endpoints(settings))


def host_bootstrap_servers(settings: Settings) -> str:
    return ",".join(f"{node.external_host}:{node.external_port}" for node in cluster_endpoints(settings))
