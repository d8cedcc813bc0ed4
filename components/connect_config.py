"""The Kafka Connect and Schema Registry tiers' configuration as pure functions.

`worker_properties` is what the Connect pods run and what the data-plane harness runs; only the
addresses, ports and paths it is given differ.
"""

from __future__ import annotations

import base64

from .k8s import jvm_heap, jvm_heap_options, jvm_memory_options, jvm_options
from .kafka_config import bootstrap_servers, max_message_bytes
from .plugins import AVRO_CONVERTER, CLIENT_OVERRIDE_POLICY, SCHEMA_RESOLVER
from .postgres_config import CDC_PASSWORD_KEY
from .quantity import Memory
from .settings import Settings
from .topology import CONNECT, KAFKA_VERSION, REGISTRY_VERSION, SCHEMA_REGISTRY

IMAGE = f"apache/kafka:{KAFKA_VERSION}"  # Connect runs from the brokers' own distribution
# Builds the S3 sink from source and fetches the plugins at pod start; Connect itself needs no JDK.
INSTALLER_IMAGE = "eclipse-temurin:17.0.20_8-jdk"
# Apicurio Registry, the release of the converter the Connect workers run, storing its schemas in Kafka.
SCHEMA_REGISTRY_IMAGE = f"apicurio/apicurio-registry-kafkasql:{REGISTRY_VERSION}"
SCHEMA_REGISTRY_UID = 185  # the image's user (Red Hat's OpenJDK base)
# Apicurio's own API, which its converter speaks, and the Confluent-compatible one for other clients.
REGISTRY_API = "/apis/registry/v2"
CONFLUENT_COMPATIBLE_API = "/apis/ccompat/v7"
# What the registry accepts as a new version of a subject's schema: one that reads every earlier
# version's records, so a reader of the whole archive needs only the latest schema.
SCHEMA_COMPATIBILITY = "BACKWARD_TRANSITIVE"
# How long a conversion waits for a registry that does not answer: for as long as it is away, so
# that the pipeline comes back by itself after an outage of any length (the slot keeps the WAL).
REGISTRY_WAIT_MS = -1

PLUGIN_PATH = "/opt/connect/plugins"
SECRETS_DIR = "/run/secrets/connect"
# The REST API's credentials: outside SECRETS_DIR, so that no config provider (and so no connector
# config) can read them.
REST_SECRETS_DIR = "/run/secrets/connect-rest"
REST_CREDENTIALS_SECRET = "connect-rest-credentials"
REST_CREDENTIALS_FILE = "credentials.properties"
REST_AUTHORIZATION_FILE = "authorization"  # "Basic <base64>", for the readiness probe
REST_USER = "operator"
JAAS_FILE = "jaas.conf"
# Kafka's own REST extension, shipped in the Kafka distribution's libs/ (so in the image, on the
# worker's class path). Not installed into plugin.path: its JAAS login module is loaded through the
# class path of the thread serving the request, where a plugin's jar is not.
BASIC_AUTH_EXTENSION = "org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension"
# Sub-directories of SECRETS_DIR, one file per key of the mounted Secret.
S3_CREDENTIALS = "s3"
POSTGRES_CREDENTIALS = "postgres"
POSTGRES_PASSWORD_FILE = CDC_PASSWORD_KEY
S3_CREDENTIALS_SECRET = "s3-sink-credentials"
ACCESS_KEY_ID_FILE = "aws-access-key-id"
SECRET_ACCESS_KEY_FILE = "aws-secret-access-key"
# The same key as an AWS shared-credentials file: Iceberg's Glue client takes its credentials only
# from the AWS SDK's default chain, which reads the file AWS_SHARED_CREDENTIALS_FILE names.
AWS_PROFILE_FILE = "aws-credentials"
# Where Iceberg's sink workers and its commit coordinator talk: one partition (the coordinator reads
# every worker's results in order), durable like every topic of the stack.
ICEBERG_CONTROL_TOPIC = "iceberg-control"

GROUP_ID = "data-ingestion-connect"
CONFIG_TOPIC = "connect-configs"
OFFSET_TOPIC = "connect-offsets"
STATUS_TOPIC = "connect-status"
SCHEMAS_TOPIC = "kafkasql-journal"  # the registry's journal: every schema, every rule

# Connect carries plugins, their class loaders and producer/consumer buffers: less heap than a broker.
CONNECT_HEAP_FRACTION = 0.5
# The registry's heap is small (its schemas, Quarkus): most of its memory is beside it.
SCHEMA_REGISTRY_HEAP_FRACTION = 0.4
# Connect turns every change over twice (source and sink) and allocates at that pace: with a 20 ms
# pause goal G1 keeps the young generation so small that it collected many times a second and GC
# took more CPU than any task (`make bench` profile). G1's own default goal lets it collect rarely.
CONNECT_JVM_OPTIONS = jvm_options(128, 64, 64, pause_ms=200)
# Measured on the real server (tests/dataplane/test_avro.py prints it): these flags keep its resident
# memory under ~200 MiB with a 128 MiB heap, where the JVM's defaults take ~250 MiB whatever the heap.
# It answers a handful of calls a second at most, so the C1 compiler alone serves it.
SCHEMA_REGISTRY_GC = "-XX:+UseSerialGC"
SCHEMA_REGISTRY_JVM_OPTIONS = jvm_memory_options(128, 32, 32, "-Xss512k", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData")
# The registry image's start script (run-java.sh of ubi8/openjdk-17-runtime) puts its own defaults
# before JAVA_OPTS_APPEND, a collector among them: the collector is chosen through its variable, as a
# second one on the command line stops the JVM ("Multiple garbage collectors selected").
IMAGE_JAVA_DEFAULTS = ("-XX:MaxRAMPercentage=80.0 {gc} -XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=20 "
                       "-XX:GCTimeRatio=4 -XX:AdaptiveSizePolicyWeight=90 -XX:+ExitOnOutOfMemoryError")
IMAGE_DEFAULT_GC = "-XX:+UseParallelGC"
JSON_CONVERTER = "org.apache.kafka.connect.json.JsonConverter"


def connect_heap(settings: Settings) -> Memory:
    return jvm_heap(settings.config.connect_memory, CONNECT_HEAP_FRACTION)


def schema_registry_heap(settings: Settings) -> Memory:
    return jvm_heap(settings.config.schema_registry_memory, SCHEMA_REGISTRY_HEAP_FRACTION)


def secret_placeholder(file_name: str, secrets_dir: str = SECRETS_DIR, folder: str = S3_CREDENTIALS) -> str:
    """What a connector config carries instead of a secret: the worker reads the file when it starts
    the connector, and neither the REST API nor the config topic ever holds the value."""
    return f"${{directory:{secrets_dir}/{folder}:{file_name}}}"


def rest_credentials(password: str) -> dict[str, str]:
    """The REST Secret's files: the login module's user file, and the header the probe sends."""
    token = base64.b64encode(f"{REST_USER}:{password}".encode()).decode()
    return {REST_CREDENTIALS_FILE: f"{REST_USER}: {password}\n", REST_AUTHORIZATION_FILE: f"Basic {token}"}


def rest_jaas_config(rest_secrets_dir: str = REST_SECRETS_DIR) -> str:
    """The worker's JAAS file (not secret: it names the credentials file)."""
    return (
        "KafkaConnect {\n"
        "  org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule required\n"
        f'  file="{rest_secrets_dir}/{REST_CREDENTIALS_FILE}";\n'
        "};\n"
    )


def readiness_command(rest_port: int, rest_secrets_dir: str = REST_SECRETS_DIR) -> list[str]:
    """Ready once the worker lists its connectors (it has joined the group), asked with the stack's
    credentials. The image has bash but no HTTP client, and a probe's own HTTP headers would put
    the credentials into the pod spec: the header is read from the mounted Secret instead."""
    script = (
        f"exec 3<>/dev/tcp/127.0.0.1/{rest_port} && "
        f"printf 'GET /connectors HTTP/1.0\\r\\nAuthorization: %s\\r\\n\\r\\n' "
        f'"$(cat {rest_secrets_dir}/{REST_AUTHORIZATION_FILE})" >&3 && '
        "head -n 1 <&3 | grep -q ' 200 '"
    )
    return ["bash", "-c", script]


def rest_jvm_option(jaas_path: str) -> str:
    return f"-Djava.security.auth.login.config={jaas_path}"


def source_producer(settings: Settings) -> dict[str, str]:
    """What the source tunes in its producer: durable, batching and compressing writes."""
    return {
        "acks": "all",
        "enable.idempotence": "true",
        "linger.ms": "20",
        "batch.size": "524288",
        "compression.type": "lz4",
        # One request in flight, as Connect has by default. Kafka before 4.5 accepts any first sequence
        # from a producer it has no state for (KAFKA-15591): with several in flight to a just-created
        # topic, a first request refused as NOT_LEADER_OR_FOLLOWER is overtaken by the next and then
        # retried as OUT_OF_ORDER_SEQUENCE_NUMBER for ever, and the source stalls.
        "max.in.flight.requests.per.connection": "1",
        # One limit, maxRecordBytes, end to end. The change topics set no max.message.bytes of their
        # own: they follow the brokers' message.max.bytes, so raising it covers topics that exist.
        "max.request.size": str(settings.config.max_record_bytes.bytes),
    }


def sink_consumer(settings: Settings) -> dict[str, str]:
    """What the sink tunes in its consumer: large fetches, and new topics seen within 15 s."""
    return {
        "max.poll.records": "5000",
        "fetch.min.bytes": "65536",
        "fetch.max.wait.ms": "200",
        "max.partition.fetch.bytes": str(max(4 * 1024 * 1024, max_message_bytes(settings))),
        "auto.offset.reset": "earliest",
        # Only what a source committed: with exactlyOnceSource, a transaction a killed worker left
        # open is aborted, and its changes arrive again in the next one.
        "isolation.level": "read_committed",
        # A table created later in a captured schema: its topic is taken at the next metadata refresh.
        "metadata.max.age.ms": "15000",
    }


def client_overrides(client: str, settings_of_client: dict[str, str]) -> dict[str, str]:
    """Client settings as a connector config carries them: `producer.override.<key>`."""
    return {f"{client}.override.{key}": value for key, value in settings_of_client.items()}


def allowed_client_overrides(settings: Settings) -> list[str]:
    """Every key the shipped connectors override, and nothing else."""
    return sorted([*client_overrides("producer", source_producer(settings)),
                   *client_overrides("consumer", sink_consumer(settings))])


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
        # For a connector that names no converters of its own: JSON without embedded schemas.
        "key.converter": JSON_CONVERTER,
        "value.converter": JSON_CONVERTER,
        "key.converter.schemas.enable": "false",
        "value.converter.schemas.enable": "false",
        "plugin.path": plugin_path,
        # Plugins are found through their ServiceLoader manifests (the installer writes ours), not by
        # scanning every class of every jar: that scan took 18 s of a worker's start on 2 cores.
        "plugin.discovery": "service_load",
        "listeners": f"http://0.0.0.0:{rest_port}",
        "rest.advertised.host.name": advertised_host,
        "rest.advertised.port": str(rest_port),
        "rest.advertised.listener": "http",
        # The REST API answers only with the stack's credentials (Kafka's basic-auth extension; the
        # JAAS file comes with the JVM options). Workers' task-config calls to each other are signed.
        "rest.extension.classes": BASIC_AUTH_EXTENSION,
        # Secrets reach connector configs only as ${directory:...} placeholders, resolved from the
        # mounted Secrets: the directory provider reads the CDC password's and the AWS key's folders
        # and nothing else (not the REST credentials); the env provider only the pod's own IP.
        "config.providers": "directory,env",
        "config.providers.directory.class": "org.apache.kafka.common.config.provider.DirectoryConfigProvider",
        "config.providers.directory.param.allowed.paths": f"{secrets_dir}/{POSTGRES_CREDENTIALS},{secrets_dir}/{S3_CREDENTIALS}",
        "config.providers.env.class": "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
        "config.providers.env.param.allowlist.pattern": "^POD_IP$",
        # A connector may tune exactly the client settings the shipped connectors tune (batching,
        # compression, fetch sizes); it may not point its clients elsewhere or change their security.
        "connector.client.config.override.policy": CLIENT_OVERRIDE_POLICY.class_name,
        "client.config.override.allowlist": ",".join(allowed_client_overrides(settings)),
        "producer.acks": "all",
        "producer.enable.idempotence": "true",
        "topic.creation.enable": "true",
        # With exactlyOnceSource, a source's records and its offsets are written in one transaction.
        # (Turning it on for several running workers wants `preparing` on all of them first.)
        "exactly.once.source.support": "enabled" if settings.config.exactly_once_source else "disabled",
        "task.shutdown.graceful.timeout.ms": "10000",
    }


# `make bench` with archiveFormat iceberg at 10,000 events/s: the worker's PSS reached 781 MiB with
# connectMemory 768Mi (heap 384 MiB, GC-bound), so a pod at that limit is at risk of being OOM-killed.
ICEBERG_MEASURED_PEAK = Memory.mebibytes(781)


def iceberg_memory_warning(settings: Settings) -> str | None:
    """What `pulumi up` warns of when an Iceberg stack's Connect workers get less than was measured."""
    memory = settings.config.connect_memory
    if not settings.config.archive_format.typed or memory > ICEBERG_MEASURED_PEAK:
        return None
    return (f"connectMemory {memory} with archiveFormat iceberg: `make bench` measured Connect at "
            f"{ICEBERG_MEASURED_PEAK.mib} MiB under 10,000 events/s with 768Mi, so the worker may be OOM-killed "
            "under load (it restarts and loses nothing, but the archive stalls). Raise connectMemory (and lower "
            "another tier within memoryBudget), or keep the change rate well below that.")


def aws_profile(access_key_id: str, secret_access_key: str) -> str:
    """The sink's key as the AWS SDK's shared-credentials file (its default profile)."""
    return f"[default]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret_access_key}\n"


def aws_environment(secrets_dir: str = SECRETS_DIR) -> dict[str, str]:
    """What the worker's AWS SDK reads: the sink's key file, and no instance metadata to probe (Kind
    does not run on EC2; each probe would stall a client's start)."""
    return {
        "AWS_SHARED_CREDENTIALS_FILE": f"{secrets_dir}/{S3_CREDENTIALS}/{AWS_PROFILE_FILE}",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def topic_arguments(settings: Settings, topic: str, *configs: str, bootstrap: str | None = None) -> list[str]:
    """kafka-topics.sh's arguments that create a one-partition topic durable like every topic of the
    stack, if it is not there (brokers create no topic on their own here)."""
    return [
        "--bootstrap-server", bootstrap or bootstrap_servers(settings),
        "--create", "--if-not-exists", "--topic", topic,
        "--partitions", "1", "--replication-factor", str(settings.replication_factor),
        "--config", f"min.insync.replicas={settings.min_insync_replicas}",
        *(argument for config in configs for argument in ("--config", config)),
    ]


def control_topic_arguments(settings: Settings, bootstrap: str | None = None) -> list[str]:
    """The Iceberg sink's control topic: run by the Connect pod before the worker starts."""
    return topic_arguments(settings, ICEBERG_CONTROL_TOPIC, "cleanup.policy=delete", bootstrap=bootstrap)


def schemas_topic_arguments(settings: Settings, bootstrap: str | None = None) -> list[str]:
    """The registry's journal, kept for ever (a schema deleted from it is a record no one can read):
    run by the registry pod before the registry starts, which would otherwise create it with the
    brokers' defaults."""
    return topic_arguments(settings, SCHEMAS_TOPIC, "cleanup.policy=delete", "retention.ms=-1",
                           "retention.bytes=-1", bootstrap=bootstrap)


def schema_registry_url(settings: Settings) -> str:
    """The registry's address inside the cluster, which the converters use."""
    return f"http://{SCHEMA_REGISTRY.name}.{settings.config.namespace}.svc:{SCHEMA_REGISTRY.ports['http']}"


def schema_registry_environment(settings: Settings) -> dict[str, str]:
    """Apicurio Registry's settings (Quarkus reads REGISTRY_X_Y as registry.x.y)."""
    return {
        "QUARKUS_HTTP_PORT": str(SCHEMA_REGISTRY.ports["http"]),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers(settings),
        "REGISTRY_KAFKASQL_TOPIC": SCHEMAS_TOPIC,
        "REGISTRY_KAFKASQL_TOPIC_AUTO_CREATE": "false",  # created by the pod's init container, RF 3
        # Every subject, unless a rule of its own says otherwise.
        "REGISTRY_RULES_GLOBAL_COMPATIBILITY": SCHEMA_COMPATIBILITY,
        "REGISTRY_RULES_GLOBAL_VALIDITY": "FULL",
        # The Confluent-compatible API's schema ids are content ids, as the converters write them.
        "REGISTRY_CCOMPAT_LEGACY_ID_MODE_ENABLED": "false",
        # The image's start script chooses its collector from this, never beside it (IMAGE_JAVA_DEFAULTS).
        "GC_CONTAINER_OPTIONS": SCHEMA_REGISTRY_GC,
        # It sizes the heap from the limit: the explicit heap is appended after it.
        "JAVA_OPTS_APPEND": f"{jvm_heap_options(schema_registry_heap(settings))} {SCHEMA_REGISTRY_JVM_OPTIONS}",
        "LOG_LEVEL": "INFO",
    }


def schema_registry_java_options(environment: dict[str, str]) -> list[str]:
    """The JVM options the registry image's start script runs the server with, given its environment."""
    defaults = IMAGE_JAVA_DEFAULTS.format(gc=environment.get("GC_CONTAINER_OPTIONS", IMAGE_DEFAULT_GC))
    return [*defaults.split(), *environment.get("JAVA_OPTS_APPEND", "").split()]


def avro_converters(settings: Settings, registry_url: str | None = None) -> dict[str, str]:
    """A connector's keys and values as Avro through the registry: each schema registered once (a
    changed one as a new version, if the compatibility rule accepts it), and each record carrying
    its schema's id in Confluent's framing (a zero byte, a four-byte content id), which Confluent's
    clients, Spark's and ClickHouse's Avro readers take as they are."""
    options = {
        "apicurio.registry.url": f"{registry_url or schema_registry_url(settings)}{REGISTRY_API}",
        "apicurio.registry.auto-register": "true",
        "apicurio.registry.auto-register.if-exists": "RETURN_OR_UPDATE",
        # Confluent's framing (what `as-confluent` sets, named without the warning that it overrides
        # the default handler): a zero byte and the schema's content id in four bytes.
        "apicurio.registry.id-handler": "io.apicurio.registry.serde.Legacy4ByteIdHandler",
        "apicurio.registry.use-id": "contentId",
        "apicurio.registry.headers.enabled": "false",
        # A schema looked up once, not once per record (the resolver's own cost: its source says why).
        "apicurio.registry.schema-resolver": SCHEMA_RESOLVER,
    }
    return {
        **{setting: value
           for side in ("key", "value")
           for setting, value in {f"{side}.converter": AVRO_CONVERTER.class_name,
                                  **{f"{side}.converter.{key}": option for key, option in options.items()}}.items()},
        # A registry that does not answer (its pod restarting) is waited for by retrying the conversion
        # (the converter reports it as retriable), at most 10 s apart; a refusal still fails the task.
        "errors.retry.timeout": str(REGISTRY_WAIT_MS),
        "errors.retry.delay.max.ms": "10000",
    }
