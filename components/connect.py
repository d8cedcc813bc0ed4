"""The Kafka Connect tier: distributed workers whose plugins are installed, verified, at pod start.

The workers are a StatefulSet only for a volume each that keeps the plugin downloads across pod
restarts; they have no identity or state of their own (the group's is in Kafka's topics)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as kubernetes
import pulumi_random as random

from . import connect_config as cconf
from .archive import Archive
from .formats import ARCHIVE_FORMATS, plugins_for
from .k8s import (
    checksum,
    container_security_context,
    exec_probe,
    init_container,
    jvm_heap_options,
    metadata_for,
    pod_ip_env,
    pod_security_context,
    resources,
    service_specs,
    tcp_probe,
    topic_creator,
    volume_claim,
)
from .kafka import Kafka
from .kafka_config import render_properties
from .postgres_config import CDC_PASSWORD_KEY, CREDENTIALS_SECRET
from .plugins import INSTALLER, MANIFEST, plugin_files
from .platform import Platform
from .postgres import Postgres
from .quantity import Memory
from .schema_registry import SchemaRegistry
from .settings import Settings
from .storage import CLAIM_TEMPLATES, Storage
from .topology import CONNECT

UID = 1000  # the Kafka image's appuser; the JDK image runs as any user
NAME = CONNECT.name
WORKER_DIR = "/etc/connect/worker"
PLUGIN_FILES_DIR = "/etc/connect/plugin-sources"
# javac and the downloads fit well below the worker's own limit, so the init container does not
# raise the pod's effective memory request above the budget.
INSTALLER_MEMORY = Memory.mebibytes(384)
# The verified downloads (Debezium's archive, the archive sink's jars or the jars the own plugins
# compile against), kept; the installed plugins take as much again. Iceberg's sink is ~140 MB of jars.
PLUGIN_CACHE = "/var/cache/connect-plugins"
# The plugin cache's claim, sized for every format: a claim template cannot change after the first `up`.
PLUGIN_CACHE_SPACE = max(archive.plugin_space for archive in ARCHIVE_FORMATS.values())


class Connect(pulumi.ComponentResource):
    url: str
    host_url: str
    rest_user: str
    rest_password: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        settings: Settings,
        platform: Platform,
        kafka: Kafka,
        schema_registry: SchemaRegistry,
        postgres: Postgres,
        archive: Archive,
        storage: Storage,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("data-ingestion:connect:Connect", name, None, opts)
        namespace = settings.config.namespace
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[platform.namespace_resource])
        host_port = settings.host_port(CONNECT)

        metadata = metadata_for(settings, CONNECT)

        # The sink's AWS key, mounted as files that the directory config provider reads.
        self.s3_credentials = kubernetes.core.v1.Secret(
            "s3-sink-credentials",
            metadata=metadata(cconf.S3_CREDENTIALS_SECRET),
            type="Opaque",
            string_data={
                cconf.ACCESS_KEY_ID_FILE: archive.access_key_id,
                cconf.SECRET_ACCESS_KEY_FILE: archive.secret_access_key,
                cconf.AWS_PROFILE_FILE: pulumi.Output.all(archive.access_key_id, archive.secret_access_key).apply(
                    lambda key: cconf.aws_profile(*key)
                ),
            },
            opts=in_namespace,
        )
        # The REST API's one user: the provider, `make verify` and you (`pulumi stack output
        # --show-secrets connect`). A file in a Secret of its own, never an env value or ConfigMap.
        rest_password = random.RandomPassword("connect-rest-password", length=32, special=False,
                                              opts=pulumi.ResourceOptions(parent=self))
        self.rest_credentials = kubernetes.core.v1.Secret(
            "connect-rest-credentials",
            metadata=metadata(cconf.REST_CREDENTIALS_SECRET),
            type="Opaque",
            string_data=rest_password.result.apply(cconf.rest_credentials),
            opts=in_namespace,
        )
        worker = {
            "worker.properties": render_properties(cconf.worker_properties(settings)),
            cconf.JAAS_FILE: cconf.rest_jaas_config(),
        }
        self.worker_config = kubernetes.core.v1.ConfigMap(
            "connect-worker-config", metadata=metadata("connect-worker"), data=worker, opts=in_namespace
        )
        archive_format = settings.config.archive_format
        if warning := cconf.iceberg_memory_warning(settings):
            pulumi.log.warn(warning, resource=self)
        plugins = plugin_files(plugins_for(archive_format, settings.config.serialization))
        plugin_space = archive_format.plugin_space
        init_containers = [self._installer(settings)]
        if archive_format.typed:
            init_containers.append(self._control_topic(settings))
        self.plugin_config = kubernetes.core.v1.ConfigMap(
            "connect-plugins-config", metadata=metadata("connect-plugins"), data=plugins, opts=in_namespace
        )

        in_cluster, external = service_specs(CONNECT, "rest", host_port)
        self.service = kubernetes.core.v1.Service(f"{NAME}-service", metadata=metadata(NAME), spec=in_cluster, opts=in_namespace)
        kubernetes.core.v1.Service(
            f"{NAME}-node-port-service", metadata=metadata(f"{NAME}-external"), spec=external, opts=in_namespace
        )

        rest = CONNECT.ports["rest"]
        self.stateful_set = kubernetes.apps.v1.StatefulSet(
            NAME,
            metadata=metadata(NAME),
            spec={
                "replicas": settings.config.connect_workers,
                "serviceName": NAME,
                "selector": {"matchLabels": CONNECT.selector},
                # Workers start together; a rollout replaces one at a time and never adds one, so
                # the budget's connectWorkers workers are never exceeded.
                "podManagementPolicy": "Parallel",
                "updateStrategy": {"type": "RollingUpdate"},
                # A cache: its claims go with the workers they belong to.
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Delete"},
                "volumeClaimTemplates": [
                    volume_claim(CONNECT.claim_labels, storage.cache_class, PLUGIN_CACHE_SPACE, name="plugin-cache")
                ],
                "template": {
                    "metadata": {
                        "labels": CONNECT.labels(settings.names.instance),
                        "annotations": {"data-ingestion/config-checksum": checksum(worker, plugins)},
                    },
                    "spec": {
                        "serviceAccountName": CONNECT.service_account,
                        "automountServiceAccountToken": False,
                        "enableServiceLinks": False,
                        "terminationGracePeriodSeconds": 30,
                        "securityContext": pod_security_context(UID),
                        "initContainers": init_containers,
                        "containers": [
                            {
                                "name": NAME,
                                "image": cconf.IMAGE,
                                "imagePullPolicy": "IfNotPresent",
                                "command": ["/opt/kafka/bin/connect-distributed.sh", f"{WORKER_DIR}/worker.properties"],
                                "env": [
                                    pod_ip_env(),
                                    {"name": "KAFKA_HEAP_OPTS", "value": jvm_heap_options(cconf.connect_heap(settings))},
                                    {
                                        "name": "KAFKA_JVM_PERFORMANCE_OPTS",
                                        "value": cconf.CONNECT_JVM_OPTIONS,
                                    },
                                    {"name": "LOG_DIR", "value": "/tmp/connect-logs"},
                                    {"name": "KAFKA_OPTS", "value": cconf.rest_jvm_option(f"{WORKER_DIR}/{cconf.JAAS_FILE}")},
                                    *({"name": key, "value": value} for key, value in cconf.aws_environment().items()),
                                ],
                                "ports": [{"name": "rest", "containerPort": rest, "protocol": "TCP"}],
                                "resources": resources(settings.config.connect_memory, "250m"),
                                "securityContext": container_security_context(),
                                # Scanning the plugins and joining the group takes a JVM a while.
                                # Every REST path asks for credentials: start and liveness are the
                                # listening port, readiness an authenticated GET /connectors.
                                "startupProbe": tcp_probe("rest", 5, 60),
                                "readinessProbe": exec_probe(cconf.readiness_command(rest), 10, 3),
                                "livenessProbe": tcp_probe("rest", 20, 6),
                                "volumeMounts": [
                                    {"name": "plugins", "mountPath": cconf.PLUGIN_PATH, "readOnly": True},
                                    {"name": "worker", "mountPath": WORKER_DIR, "readOnly": True},
                                    {
                                        "name": "s3-credentials",
                                        "mountPath": f"{cconf.SECRETS_DIR}/{cconf.S3_CREDENTIALS}",
                                        "readOnly": True,
                                    },
                                    {
                                        "name": "postgres-credentials",
                                        "mountPath": f"{cconf.SECRETS_DIR}/{cconf.POSTGRES_CREDENTIALS}",
                                        "readOnly": True,
                                    },
                                    {"name": "rest-credentials", "mountPath": cconf.REST_SECRETS_DIR, "readOnly": True},
                                    {"name": "tmp", "mountPath": "/tmp"},
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "plugins", "emptyDir": {"sizeLimit": str(plugin_space)}},
                            {"name": "plugin-sources", "configMap": {"name": "connect-plugins"}},
                            {"name": "worker", "configMap": {"name": "connect-worker"}},
                            {
                                "name": "s3-credentials",
                                "secret": {"secretName": cconf.S3_CREDENTIALS_SECRET, "defaultMode": 0o440},
                            },
                            {
                                # Only the CDC role's password: Connect has no use for the superuser's.
                                "name": "postgres-credentials",
                                "secret": {
                                    "secretName": CREDENTIALS_SECRET,
                                    "items": [{"key": CDC_PASSWORD_KEY, "path": cconf.POSTGRES_PASSWORD_FILE}],
                                    "defaultMode": 0o440,
                                },
                            },
                            {
                                "name": "rest-credentials",
                                "secret": {"secretName": cconf.REST_CREDENTIALS_SECRET, "defaultMode": 0o440},
                            },
                            {"name": "tmp", "emptyDir": {"sizeLimit": "512Mi"}},
                        ],
                    },
                },
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                ignore_changes=[CLAIM_TEMPLATES],
                # A first start downloads the plugins; on a slow link that outlasts the default 10 minutes.
                custom_timeouts=pulumi.CustomTimeouts(create="20m", update="20m"),
                depends_on=[
                    platform.namespace_resource,
                    platform.service_accounts[NAME],
                    kafka.stateful_set,
                    schema_registry.deployment,
                    self.s3_credentials,
                    self.rest_credentials,
                    postgres.secret,
                    self.worker_config,
                    self.plugin_config,
                ],
            ),
        )

        self.url = f"http://{NAME}.{namespace}.svc:{rest}"
        self.host_url = f"http://localhost:{host_port.host_port}"
        self.rest_user = cconf.REST_USER
        self.rest_password = pulumi.Output.secret(rest_password.result)
        self.register_outputs({"url": self.url, "hostUrl": self.host_url, "restUser": self.rest_user,
                               "restPassword": self.rest_password})

    @staticmethod
    def _installer(settings: Settings) -> dict:
        return init_container(
            "install-plugins", cconf.INSTALLER_IMAGE,
            ["java", f"{PLUGIN_FILES_DIR}/{INSTALLER}", f"{PLUGIN_FILES_DIR}/{MANIFEST}", cconf.PLUGIN_PATH, PLUGIN_CACHE],
            {"PLUGIN_REPOSITORY": settings.config.plugin_repository, "HOME": "/tmp",
             "JAVA_TOOL_OPTIONS": "-Xmx192m -XX:TieredStopAtLevel=1"},
            INSTALLER_MEMORY,
            [
                {"name": "plugins", "mountPath": cconf.PLUGIN_PATH},
                {"name": "plugin-sources", "mountPath": PLUGIN_FILES_DIR, "readOnly": True},
                {"name": "plugin-cache", "mountPath": PLUGIN_CACHE},
            ],
        )

    @staticmethod
    def _control_topic(settings: Settings) -> dict:
        return topic_creator("iceberg-control-topic", cconf.IMAGE, cconf.control_topic_arguments(settings))
