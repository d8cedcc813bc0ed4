"""The Kafka tier: KRaft nodes (broker + controller) in one StatefulSet, reachable broker by broker."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as kubernetes

from . import kafka_config as kconf
from .k8s import (
    checksum,
    container_security_context,
    exec_probe,
    jvm_heap_options,
    metadata_for,
    pod_security_context,
    resources,
    volume_claim,
)
from .platform import Platform
from .settings import Settings
from .storage import CLAIM_TEMPLATES, Storage, grown_claims
from .topology import KAFKA

UID = 1000  # the image's appuser
CONFIG_DIR = "/etc/kafka/nodes"

# The node id is the pod's ordinal: kafka-2 reads broker-2.properties. The storage is formatted
# once with the stack's cluster id; --ignore-formatted makes every later start a no-op.
START = f"""set -euo pipefail
ordinal=${{HOSTNAME##*-}}
config={CONFIG_DIR}/broker-${{ordinal}}.properties
[ -f "$config" ] || {{ echo "kafka tier: no $config; is kafkaBrokers lower than this pod's ordinal?" >&2; exit 1; }}
/opt/kafka/bin/kafka-storage.sh format --cluster-id "$KAFKA_CLUSTER_ID" --config "$config" --ignore-formatted
exec /opt/kafka/bin/kafka-server-start.sh "$config"
"""


def _port_open(port: int) -> list[str]:
    # A shell test, not a JVM: a client tool in every probe would cost a JVM's memory in the pod.
    return ["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"]


class Kafka(pulumi.ComponentResource):
    bootstrap_servers: str
    host_bootstrap_servers: str

    def __init__(
        self,
        name: str,
        settings: Settings,
        platform: Platform,
        storage: Storage,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("data-ingestion:kafka:Kafka", name, None, opts)
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[platform.namespace_resource])

        metadata = metadata_for(settings, KAFKA)

        files = {
            f"broker-{ordinal}.properties": kconf.render_properties(kconf.broker_properties(settings, ordinal))
            for ordinal in range(settings.brokers)
        }
        self.config_map = kubernetes.core.v1.ConfigMap(
            "kafka-config", metadata=metadata("kafka-config"), data=files, opts=in_namespace
        )

        ports = KAFKA.ports
        self.headless_service = kubernetes.core.v1.Service(
            "kafka-headless-service",
            metadata=metadata(kconf.HEADLESS_SERVICE),
            spec={
                "clusterIP": "None",
                # Controllers must find each other before any of them is ready.
                "publishNotReadyAddresses": True,
                "selector": KAFKA.selector,
                "ports": [
                    {"name": "internal", "port": ports["internal"], "targetPort": "internal"},
                    {"name": "controller", "port": ports["controller"], "targetPort": "controller"},
                ],
            },
            opts=in_namespace,
        )
        self.broker_services = [
            kubernetes.core.v1.Service(
                f"{port.name}-node-port-service",
                metadata=metadata(f"{port.name}-external"),
                spec={
                    "type": "NodePort",
                    "externalTrafficPolicy": "Cluster",
                    # Exactly one broker behind each NodePort: it advertises this very port.
                    "selector": {**KAFKA.selector, "statefulset.kubernetes.io/pod-name": port.name},
                    "ports": [
                        {"name": "external", "port": port.target_port, "targetPort": "external", "nodePort": port.node_port}
                    ],
                },
                opts=in_namespace,
            )
            for port in settings.host_ports
            if port.workload is KAFKA
        ]

        self.disruption_budget = kubernetes.policy.v1.PodDisruptionBudget(
            "kafka-disruption-budget",
            metadata=metadata("kafka"),
            # min.insync.replicas is one below the replication factor: one broker may be down.
            spec={"maxUnavailable": 1, "selector": {"matchLabels": KAFKA.selector}},
            opts=in_namespace,
        )

        heap = kconf.heap(settings)
        self.stateful_set = kubernetes.apps.v1.StatefulSet(
            "kafka",
            metadata=metadata(kconf.STATEFUL_SET),
            spec={
                "serviceName": kconf.HEADLESS_SERVICE,
                "replicas": settings.brokers,
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": KAFKA.selector},
                "updateStrategy": {"type": "RollingUpdate"},
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                "template": {
                    "metadata": {
                        "labels": KAFKA.labels(settings.names.instance),
                        "annotations": {"data-ingestion/config-checksum": checksum(files)},
                    },
                    "spec": {
                        "serviceAccountName": KAFKA.service_account,
                        "automountServiceAccountToken": False,
                        # Otherwise Kubernetes injects KAFKA_PORT=tcp://..., which the image reads as config.
                        "enableServiceLinks": False,
                        "terminationGracePeriodSeconds": 60,
                        "securityContext": pod_security_context(UID),
                        "topologySpreadConstraints": [
                            {
                                "maxSkew": 1,
                                "topologyKey": "kubernetes.io/hostname",
                                "whenUnsatisfiable": "DoNotSchedule",
                                # The tainted control-plane node must not count as an empty domain.
                                "nodeTaintsPolicy": "Honor",
                                "labelSelector": {"matchLabels": KAFKA.selector},
                            }
                        ],
                        "containers": [
                            {
                                "name": "kafka",
                                "image": kconf.IMAGE,
                                "imagePullPolicy": "IfNotPresent",
                                "command": ["bash", "-c", START],
                                "env": [
                                    {"name": "KAFKA_CLUSTER_ID", "value": kconf.cluster_id(settings)},
                                    # The start scripts default to -Xmx1G, more than the container.
                                    {"name": "KAFKA_HEAP_OPTS", "value": jvm_heap_options(heap)},
                                    {
                                        "name": "KAFKA_JVM_PERFORMANCE_OPTS",
                                        "value": kconf.JVM_OPTIONS,
                                    },
                                    {"name": "LOG_DIR", "value": "/tmp/kafka-logs"},
                                ],
                                "ports": [
                                    {"name": name, "containerPort": number, "protocol": "TCP"}
                                    for name, number in ports.items()
                                ],
                                "resources": resources(settings.broker_memory, "250m"),
                                "securityContext": container_security_context(),
                                "startupProbe": exec_probe(_port_open(ports["internal"]), 5, 60),
                                "readinessProbe": exec_probe(_port_open(ports["internal"]), 10, 3),
                                "livenessProbe": exec_probe(_port_open(ports["controller"]), 15, 4),
                                "volumeMounts": [
                                    {"name": "data", "mountPath": kconf.DATA_DIR},
                                    {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                                    {"name": "tmp", "mountPath": "/tmp"},
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "config", "configMap": {"name": "kafka-config"}},
                            {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
                        ],
                    },
                },
                "volumeClaimTemplates": [volume_claim(KAFKA.claim_labels, storage.streaming_class, settings.config.kafka_storage)],
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                ignore_changes=[CLAIM_TEMPLATES],
                depends_on=[platform.namespace_resource, platform.service_accounts[KAFKA.name],
                            self.config_map, self.headless_service],
            ),
        )
        self.claims = grown_claims(self.stateful_set, "kafka", settings.config.namespace, settings.brokers,
                                   settings.config.kafka_storage, storage)

        self.bootstrap_servers = kconf.bootstrap_servers(settings)
        self.host_bootstrap_servers = kconf.host_bootstrap_servers(settings)
        self.register_outputs(
            {"bootstrapServers": self.bootstrap_servers, "hostBootstrapServers": self.host_bootstrap_servers}
        )
