"""The Schema Registry tier: one registry whose schemas live in Kafka (the `_schemas` topic)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as kubernetes

from . import connect_config as cconf
from .k8s import (
    container_security_context,
    http_probe,
    metadata_for,
    pod_ip_env,
    pod_security_context,
    resources,
    service_specs,
)
from .kafka import Kafka
from .platform import Platform
from .settings import Settings
from .topology import SCHEMA_REGISTRY

UID = 1000  # the image's appuser
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
        namespace = settings.config.namespace
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[platform.namespace_resource])
        host_port = settings.host_port(SCHEMA_REGISTRY)

        metadata = metadata_for(namespace, SCHEMA_REGISTRY)

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
                    "metadata": {"labels": SCHEMA_REGISTRY.labels},
                    "spec": {
                        "serviceAccountName": SCHEMA_REGISTRY.service_account,
                        "automountServiceAccountToken": False,
                        # The image reads the injected SCHEMA_REGISTRY_PORT=tcp://... as its config and fails.
                        "enableServiceLinks": False,
                        "securityContext": pod_security_context(UID),
                        "containers": [
                            {
                                "name": NAME,
                                "image": cconf.SCHEMA_REGISTRY_IMAGE,
                                "imagePullPolicy": "IfNotPresent",
                                "env": [
                                    {**pod_ip_env(), "name": "SCHEMA_REGISTRY_HOST_NAME"},
                                    *({"name": key, "value": value} for key, value in environment.items()),
                                ],
                                "ports": [{"name": "http", "containerPort": SCHEMA_REGISTRY.ports["http"], "protocol": "TCP"}],
                                "resources": resources(settings.config.schema_registry_memory, "100m"),
                                "securityContext": container_security_context(),
                                "startupProbe": http_probe("/subjects", "http", 5, 60),
                                "readinessProbe": http_probe("/subjects", "http", 10, 3),
                                "livenessProbe": http_probe("/", "http", 20, 6),
                                "volumeMounts": [
                                    # The image writes its properties from the environment at start.
                                    {"name": "config", "mountPath": "/etc/schema-registry"},
                                    {"name": "tmp", "mountPath": "/tmp"},
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "config", "emptyDir": {"sizeLimit": "16Mi"}},
                            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                        ],
                    },
                },
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[platform.namespace_resource, platform.service_accounts[NAME], kafka.stateful_set],
            ),
        )

        self.url = f"http://{NAME}.{namespace}.svc:{SCHEMA_REGISTRY.ports['http']}"
        self.host_url = f"http://localhost:{host_port.host_port}"
        self.register_outputs({"url": self.url, "hostUrl": self.host_url})
