"""The Schema Registry tier: one Apicurio Registry, its schemas in a Kafka topic (KafkaSQL storage).

Apicurio rather than Confluent's registry: the converter the Connect workers install must come from
Maven Central, where only Apicurio's is published, and it speaks Apicurio's own API. Other clients
use the Confluent-compatible API the registry serves beside it (docs/avro.md).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as kubernetes

from . import connect_config as cconf
from .k8s import (
    container_security_context,
    http_probe,
    metadata_for,
    pod_security_context,
    resources,
    service_specs,
    topic_creator,
)
from .kafka import Kafka
from .platform import Platform
from .settings import Settings
from .topology import SCHEMA_REGISTRY

NAME = SCHEMA_REGISTRY.name


class SchemaRegistry(pulumi.ComponentResource):
    url: str
    host_url: str

    def __init__(
        self,
        name: str,
        settings: Settings,
        platform: Platform,
        kafka: Kafka,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("data-ingestion:schema-registry:SchemaRegistry", name, None, opts)
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[platform.namespace_resource])
        host_port = settings.host_port(SCHEMA_REGISTRY)

        metadata = metadata_for(settings, SCHEMA_REGISTRY)

        in_cluster, external = service_specs(SCHEMA_REGISTRY, "http", host_port)
        self.service = kubernetes.core.v1.Service(f"{NAME}-service", metadata=metadata(NAME), spec=in_cluster, opts=in_namespace)
        kubernetes.core.v1.Service(
            f"{NAME}-node-port-service", metadata=metadata(f"{NAME}-external"), spec=external, opts=in_namespace
        )

        environment = cconf.schema_registry_environment(settings)
        self.deployment = kubernetes.apps.v1.Deployment(
            NAME,
            metadata=metadata(NAME),
            spec={
                "replicas": 1,
                "selector": {"matchLabels": SCHEMA_REGISTRY.selector},
                # Never a second registry beside the first: the memory budget has room for one.
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
                "template": {
                    "metadata": {"labels": SCHEMA_REGISTRY.labels(settings.names.instance)},
                    "spec": {
                        "serviceAccountName": SCHEMA_REGISTRY.service_account,
                        "automountServiceAccountToken": False,
                        # Quarkus would read injected SCHEMA_REGISTRY_* variables as settings.
                        "enableServiceLinks": False,
                        "securityContext": pod_security_context(cconf.SCHEMA_REGISTRY_UID),
                        "initContainers": [
                            topic_creator("schemas-topic", cconf.IMAGE, cconf.schemas_topic_arguments(settings))
                        ],
                        "containers": [
                            {
                                "name": NAME,
                                "image": cconf.SCHEMA_REGISTRY_IMAGE,
                                "imagePullPolicy": "IfNotPresent",
                                "env": [{"name": key, "value": value} for key, value in environment.items()],
                                "ports": [{"name": "http", "containerPort": SCHEMA_REGISTRY.ports["http"], "protocol": "TCP"}],
                                "resources": resources(settings.config.schema_registry_memory, "100m"),
                                "securityContext": container_security_context(),
                                # Ready once it has read the journal and serves the API.
                                "startupProbe": http_probe("/health/live", "http", 5, 60),
                                "readinessProbe": http_probe("/health/ready", "http", 10, 3),
                                "livenessProbe": http_probe("/health/live", "http", 20, 6),
                                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                            }
                        ],
                        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                    },
                },
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[platform.namespace_resource, platform.service_accounts[NAME], kafka.stateful_set],
            ),
        )

        self.url = cconf.schema_registry_url(settings)
        self.host_url = f"http://localhost:{host_port.host_port}"
        # What a Confluent client (or Spark's, ClickHouse's Avro reader) sets as its registry URL.
        self.confluent_url = f"{self.host_url}{cconf.CONFLUENT_COMPATIBLE_API}"
        self.register_outputs({"url": self.url, "hostUrl": self.host_url, "confluentUrl": self.confluent_url})
