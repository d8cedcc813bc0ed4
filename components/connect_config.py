"""The Kafka Connect and Schema Registry tiers' configuration as pure functions.

`worker_properties` is what the Connect pods run and what the data-plane harness runs; only the
addresses, ports and paths it is given differ.
"""

from __future__ import annotations

from .k8s import jvm_heap, jvm_heap_options, jvm_options
from .postgres_config import CDC_PASSWORD_KEY
from .kafka_config import KAFKA_VERSION, bootstrap_servers
from .quantity import Memory
from .settings import Settings
from .topology import CONNECT, SCHEMA_REGISTRY

IMAGE = f"apache/kafka:{KAFKA_VERSION}"  # Connect runs from the brokers' own distribution
# Builds the S3 sink from source and fetches the plugins at pod start; Connect itself needs no JDK.
INSTALLER_IMAGE = "eclipse-temurin:17.0.20_8-jdk"
SCHEMA_REGISTRY_IMAGE = "confluentinc/cp-schema-registry:8.0.4"

PLUGIN_PATH = "/opt/connect/plugins"
SECRETS_DIR = "/run/secrets/connect"
# Sub-directories of SECRETS_DIR, one file per key of the mounted Secret.
S3_CREDENTIALS = "s3"
POSTGRES_CREDENTIALS = "postgres"
POSTGRES_PASSWORD_FILE = CDC_PASSWORD_KEY
S3_CREDENTIALS_SECRET = "s3-sink-credentials"
ACCESS_KEY_ID_FILE = "aws-access-key-id"
SECRET_ACCESS_KEY_FILE = "aws-secret-access-key"

GROUP_ID = "data-ingestion-connect"
CONFIG_TOPIC = "connect-configs"
OFFSET_TOPIC = "connect-offsets"
STATUS_TOPIC = "connect-status"
SCHEMAS_TOPIC = "_schemas"

# Connect carries plugins, their class loaders and producer/consumer buffers: less heap than a broker.
CONNECT_HEAP_FRACTION = 0.5
SCHEMA_REGISTRY_HEAP_FRACTION = 0.5
CONNECT_JVM_OPTIONS = jvm_options(128, 64, 64)
SCHEMA_REGISTRY_JVM_OPTIONS = jvm_options(96, 48, 32)
JSON_CONVERTER = "org.apache.kafka.connect.json.JsonConverter"


def connect_heap(settings: Settings) -> Memory:
    return jvm_heap(settings.config.connect_memory, CONNECT_HEAP_FRACTION)


def schema_registry_heap(settings: Settings) -> Memory:
    return jvm_heap(settings.config.schema_registry_memory, SCHEMA_REGISTRY_HEAP_FRACTION)


def secret_placeholder(file_name: str, secrets_dir: str = SECRETS_DIR, folder: str = S3_CREDENTIALS) -> str:
    """What a connector config carries instead of a secret: the worker reads the file when it starts
    the connector, and neither the REST API nor the config topic ever holds the value."""
    return f"${{directory:{secrets_dir}/{folder}:{file_name}}}"


def worker_properties(
    settings: Settings,
    bootstrap: str | None = None,
    rest_port: int = CONNECT.ports["rest"],
    advertised_host: str = "${env:POD_IP}",
    plugin_path: str = PLUGIN_PATH,
    secrets_dir: str = SECRETS_DIR,
) -> dict[str, str]:
    rf = str(settings.replication_factor)
    return {
        "bootstrap.servers": bootstrap or bootstrap_servers(settings),
        "group.id": GROUP_ID,
        "config.storage.topic": CONFIG_TOPIC,
        "offset.storage.topic": OFFSET_TOPIC,
        "status.storage.topic": STATUS_TOPIC,
        "config.storage.replication.factor": rf,
        "offset.storage.replication.factor": rf,
        "status.storage.replication.factor": rf,
        "offset.storage.partitions": "25",
        "status.storage.partitions": "5",
        # Source offsets and sink commits every 10 s: after a crash at most that much is replayed.
        "offset.flush.interval.ms": "10000",
        "offset.flush.timeout.ms": "10000",
        # JSON without embedded schemas: the Avro converter is not on Maven Central (see README).
        "key.converter": JSON_CONVERTER,
        "value.converter": JSON_CONVERTER,
        "key.converter.schemas.enable": "false",
        "value.converter.schemas.enable": "false",
        "plugin.path": plugin_path,
        "listeners": f"http://0.0.0.0:{rest_port}",
        "rest.advertised.host.name": advertised_host,
        "rest.advertised.port": str(rest_port),
        "rest.advertised.listener": "http",
        # Secrets reach connector configs only as ${directory:...} placeholders, resolved from the
        # mounted Secret; each provider may read only the secrets directory or the pod's own IP.
        "config.providers": "directory,file,env",
        "config.providers.directory.class": "org.apache.kafka.common.config.provider.DirectoryConfigProvider",
        "config.providers.directory.param.allowed.paths": secrets_dir,
        "config.providers.file.class": "org.apache.kafka.common.config.provider.FileConfigProvider",
        "config.providers.file.param.allowed.paths": secrets_dir,
        "config.providers.env.class": "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
        "config.providers.env.param.allowlist.pattern": "^POD_IP$",
        # Connectors tune their own producers and consumers (batching, compression, fetch sizes).
        "connector.client.config.override.policy": "All",
        "producer.acks": "all",
        "producer.enable.idempotence": "true",
        "topic.creation.enable": "true",
        "task.shutdown.graceful.timeout.ms": "10000",
    }


def schema_registry_environment(settings: Settings) -> dict[str, str]:
    """The Confluent image turns SCHEMA_REGISTRY_* variables into schema-registry.properties."""
    return {
        "SCHEMA_REGISTRY_LISTENERS": f"http://0.0.0.0:{SCHEMA_REGISTRY.ports['http']}",
        "SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS": ",".join(
            f"PLAINTEXT://{server}" for server in bootstrap_servers(settings).split(",")
        ),
        "SCHEMA_REGISTRY_KAFKASTORE_TOPIC": SCHEMAS_TOPIC,
        "SCHEMA_REGISTRY_KAFKASTORE_TOPIC_REPLICATION_FACTOR": str(settings.replication_factor),
        "SCHEMA_REGISTRY_HEAP_OPTS": jvm_heap_options(schema_registry_heap(settings)),
        "SCHEMA_REGISTRY_JVM_PERFORMANCE_OPTS": SCHEMA_REGISTRY_JVM_OPTIONS,
        "SCHEMA_REGISTRY_LOG4J_ROOT_LOGLEVEL": "INFO",
    }
