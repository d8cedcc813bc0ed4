import base64
import json
import re

import pytest

from components import connect_config as cconf
from components.topology import KAFKA_VERSION
from components.formats import AVRO, JSON, JSONL, plugins_for
from components.plugins import AVRO_CONVERTER, ICEBERG_SINK, MANIFEST, PLUGINS, plugin_files
from components.quantity import Memory
from components.settings import SettingsError
from components.stack import parse_settings
from harness.stackgraph import (SECRET_MARK, SECRET_SIG, FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY, fake_password, plain,
                              run_stack, walk)

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
SERVICE = "kubernetes:core/v1:Service"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"


@pytest.fixture(scope="module")
def graph():
    return run_stack("dev")


def workload(graph, name):
    return graph.one(STATEFUL_SET if name == "connect" else DEPLOYMENT, name)


def pod(graph, name):
    return workload(graph, name).inputs["spec"]["template"]["spec"]


def env(container):
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


def heap_mib(options: str) -> int:
    [size] = set(re.findall(r"-Xm[sx](\d+)m", options))
    return int(size)


def worker(graph) -> dict[str, str]:
    text = graph.one(CONFIG_MAP, "connect-worker-config").inputs["data"]["worker.properties"]
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_schema_registry_keeps_its_journal_in_a_topic_created_with_rf_3_before_it_starts(graph):
    spec = pod(graph, "schema-registry")
    [container] = spec["containers"]
    variables = env(container)
    assert variables["KAFKA_BOOTSTRAP_SERVERS"].split(",") == [
        f"kafka-{i}.kafka-headless.data-ingestion.svc.cluster.local:9092" for i in range(3)]
    assert variables["REGISTRY_KAFKASQL_TOPIC"] == cconf.SCHEMAS_TOPIC
    assert variables["REGISTRY_KAFKASQL_TOPIC_AUTO_CREATE"] == "false"
    [creator] = spec["initContainers"]
    arguments = creator["command"]
    assert arguments[0].endswith("kafka-topics.sh") and creator["image"] == cconf.IMAGE
    assert arguments[arguments.index("--topic") + 1] == cconf.SCHEMAS_TOPIC
    assert arguments[arguments.index("--replication-factor") + 1] == "3"
    configs = [arguments[i + 1] for i, argument in enumerate(arguments) if argument == "--config"]
    assert {"min.insync.replicas=2", "retention.ms=-1", "retention.bytes=-1"} <= set(configs)


def test_schema_registry_enforces_backward_transitive_compatibility_and_content_ids(graph):
    variables = env(pod(graph, "schema-registry")["containers"][0])
    assert variables["REGISTRY_RULES_GLOBAL_COMPATIBILITY"] == "BACKWARD_TRANSITIVE"
    assert variables["REGISTRY_CCOMPAT_LEGACY_ID_MODE_ENABLED"] == "false"
    assert graph.outputs["schemaRegistry"]["confluentCompatible"] == "http://localhost:8081/apis/ccompat/v7"


def test_schema_registry_heap_is_explicit_and_below_its_limit(graph):
    [container] = pod(graph, "schema-registry")["containers"]
    limit = Memory.parse(container["resources"]["limits"]["memory"])
    assert limit == Memory.parse("320Mi")
    assert heap_mib(env(container)["JAVA_OPTS_APPEND"]) <= limit.mib * 0.6


def test_schema_registry_starts_with_one_collector_as_its_image_composes_its_java_options(graph):
    """The image's start script puts a collector of its own before JAVA_OPTS_APPEND; two stop the JVM."""
    options = cconf.schema_registry_java_options(env(pod(graph, "schema-registry")["containers"][0]))
    assert [option for option in options if re.fullmatch(r"-XX:\+Use\w+GC", option)] == ["-XX:+UseSerialGC"]
    assert "-XX:-UsePerfData" in options and "-Xss512k" in options
    # Without the variable, the image's own collector would be there beside ours.
    assert "-XX:+UseParallelGC" in cconf.schema_registry_java_options({"JAVA_OPTS_APPEND": "-Xmx128m"})


def test_schema_registry_is_pinned_hardened_and_probed_without_service_links(graph):
    spec = pod(graph, "schema-registry")
    [container] = spec["containers"]
    assert re.fullmatch(r"apicurio/apicurio-registry-kafkasql:\d+\.\d+\.\d+\.Final", container["image"])
    assert spec["enableServiceLinks"] is False and spec["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == "http"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"


def test_connect_internal_topics_are_replicated_three_times(graph):
    properties = worker(graph)
    for topic in ("config", "offset", "status"):
        assert properties[f"{topic}.storage.replication.factor"] == "3"
    assert properties["bootstrap.servers"].count(":9092") == 3
    assert properties["group.id"] == "data-ingestion-connect"


def test_connect_declares_config_providers_confined_to_the_secrets(graph):
    properties = worker(graph)
    assert properties["config.providers"] == "directory,env"
    assert properties["config.providers.directory.class"].endswith("DirectoryConfigProvider")
    # The CDC password's and the AWS key's folders; not the REST credentials beside them.
    assert properties["config.providers.directory.param.allowed.paths"].split(",") == [
        "/run/secrets/connect/postgres", "/run/secrets/connect/s3"]
    assert not cconf.REST_SECRETS_DIR.startswith(cconf.SECRETS_DIR + "/")
    assert properties["config.providers.env.param.allowlist.pattern"] == "^POD_IP$"
    # The placeholder a connector config carries points inside what the provider may read.
    placeholder = cconf.secret_placeholder(cconf.SECRET_ACCESS_KEY_FILE)
    assert placeholder == "${directory:/run/secrets/connect/s3:aws-secret-access-key}"


def test_connect_uses_a_short_offset_flush_and_json(graph):
    properties = worker(graph)
    assert int(properties["offset.flush.interval.ms"]) <= 10_000
    assert properties["value.converter"] == "org.apache.kafka.connect.json.JsonConverter"
    assert properties["producer.acks"] == "all"


def test_connectors_may_override_only_what_the_shipped_connectors_tune(graph):
    properties = worker(graph)
    assert properties["connector.client.config.override.policy"] == "dataingestion.connect.policy.AllowlistOverridePolicy"
    allowed = properties["client.config.override.allowlist"].split(",")
    shipped = {key for name in ("postgres-source", "s3-sink")
               for key in graph.one("pulumi-python:dynamic:Resource", name).inputs["config"]
               if ".override." in key}
    assert set(allowed) == shipped  # exactly: nothing the connectors do not use
    assert not any(key.endswith(("bootstrap.servers", "security.protocol", "interceptor.classes"))
                   or "sasl" in key for key in allowed)


def test_the_rest_api_requires_the_stacks_credentials_kept_in_a_secret_of_its_own(graph):
    properties = worker(graph)
    assert properties["rest.extension.classes"] == \
        "org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension"
    [container] = pod(graph, "connect")["containers"]
    assert env(container)["KAFKA_OPTS"] == "-Djava.security.auth.login.config=/etc/connect/worker/jaas.conf"
    jaas = graph.one(CONFIG_MAP, "connect-worker-config").inputs["data"]["jaas.conf"]
    assert 'file="/run/secrets/connect-rest/credentials.properties"' in jaas
    secret = graph.one("kubernetes:core/v1:Secret", "connect-rest-credentials")
    password = fake_password("connect-rest-password")
    files = secret.inputs["stringData"]["value"] if "value" in secret.inputs["stringData"] else secret.inputs["stringData"]
    assert files["credentials.properties"] == f"operator: {password}\n"
    assert base64.b64decode(files["authorization"].removeprefix("Basic ")).decode() == f"operator:{password}"
    assert password not in json.dumps(plain(secret.wire))
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["rest-credentials"]["mountPath"] == "/run/secrets/connect-rest"
    # The probes: no credential in the spec; readiness reads the header from the mounted file.
    assert container["startupProbe"]["tcpSocket"]["port"] == "rest"
    assert container["livenessProbe"]["tcpSocket"]["port"] == "rest"
    assert "/run/secrets/connect-rest/authorization" in container["readinessProbe"]["exec"]["command"][2]
    assert password not in json.dumps(plain(workload(graph, "connect").wire))


def test_connect_heap_is_explicit_and_below_its_limit(graph):
    [container] = pod(graph, "connect")["containers"]
    limit = Memory.parse(container["resources"]["limits"]["memory"])
    assert limit == Memory.parse("960Mi")
    assert heap_mib(env(container)["KAFKA_HEAP_OPTS"]) <= limit.mib * 0.6
    [installer] = pod(graph, "connect")["initContainers"]
    assert Memory.parse(installer["resources"]["limits"]["memory"]) < limit


def test_the_worker_runs_the_pinned_kafka_and_reads_plugins_from_plugin_path(graph):
    spec = pod(graph, "connect")
    [container] = spec["containers"]
    assert container["image"] == f"apache/kafka:{KAFKA_VERSION}"
    mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
    assert mounts["plugins"]["mountPath"] == worker(graph)["plugin.path"]
    assert mounts["plugins"]["readOnly"] is True
    assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] >= 180
    assert env(container)["POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert worker(graph)["rest.advertised.host.name"] == "${env:POD_IP}"


def test_plugins_are_installed_at_start_from_the_declared_manifest(graph):
    spec = pod(graph, "connect")
    [installer] = spec["initContainers"]  # with archiveFormat jsonl, nothing else runs first
    assert installer["image"].startswith("eclipse-temurin:17.") and "latest" not in installer["image"]
    assert installer["command"][:3] == [
        "java", "/etc/connect/plugin-sources/InstallPlugins.java", "/etc/connect/plugin-sources/plugins.tsv"
    ]
    assert installer["command"][3] == cconf.PLUGIN_PATH
    assert env(installer)["PLUGIN_REPOSITORY"] == "https://repo1.maven.org/maven2"
    assert installer["securityContext"]["runAsNonRoot"] is True
    assert graph.one(CONFIG_MAP, "connect-plugins-config").inputs["data"] == plugin_files(plugins_for(JSONL, AVRO))


def test_an_avro_stack_installs_apicurios_converter_without_the_kafka_jars_it_would_bring(graph):
    manifest = graph.one(CONFIG_MAP, "connect-plugins-config").inputs["data"][MANIFEST]
    entries = [line.split("\t") for line in manifest.splitlines() if line.startswith(f"{AVRO_CONVERTER.name}\t")]
    jars = [path for _, kind, path, _ in entries if kind == "jar"]
    assert any(path.startswith("io/apicurio/apicurio-registry-utils-converter/2.6.13.Final/") for path in jars)
    # Connect provides these; Kafka 3.9's would clash with it (NoSuchMethodError Utils.mkSet).
    assert not any(f"/{jar}/" in path for path in jars
                   for jar in ("kafka-clients", "connect-api", "connect-json", "slf4j-api", "jackson-databind"))
    assert ("avro-converter", "source", "TypedAvroConverter.java") in {tuple(entry[:3]) for entry in entries}
    # Without avro, nothing of it is installed.
    assert AVRO_CONVERTER not in plugins_for(JSONL, JSON)


def test_an_iceberg_stack_installs_icebergs_sink_and_creates_its_control_topic_first():
    graph = run_stack("dev", {"archiveFormat": "iceberg", "serialization": "json"})
    spec = pod(graph, "connect")
    installer, control_topic = spec["initContainers"]
    manifest = graph.one(CONFIG_MAP, "connect-plugins-config").inputs["data"][MANIFEST]
    installed = {line.split("\t")[0] for line in manifest.splitlines() if not line.startswith("#")}
    assert installed == {"debezium-connector-postgres", "record-size-limit", "buffer-guard", "client-override-allowlist",
                         "iceberg-sink"}
    jars = [line.split("\t") for line in manifest.splitlines() if "\tjar\t" in line]
    assert len(jars) == len(ICEBERG_SINK.jars) > 80
    assert any(path.startswith("org/apache/iceberg/iceberg-kafka-connect/1.12.0/") for _, _, path, _ in jars)
    assert not any("/slf4j-" in path or "/kafka-clients/" in path for _, _, path, _ in jars), "the worker provides these"
    # The downloads and the installed jars both fit their volumes.
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert volumes["plugins"]["emptyDir"]["sizeLimit"] == "512Mi"
    [claim] = graph.one("kubernetes:apps/v1:StatefulSet", "connect").inputs["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "512Mi"

    assert control_topic["image"] == f"apache/kafka:{KAFKA_VERSION}"
    command = control_topic["command"]
    assert command[0] == "/opt/kafka/bin/kafka-topics.sh" and "--if-not-exists" in command
    assert command[command.index("--topic") + 1] == cconf.ICEBERG_CONTROL_TOPIC
    assert command[command.index("--replication-factor") + 1] == "3"
    assert "min.insync.replicas=2" in command
    assert control_topic["securityContext"]["runAsNonRoot"] is True
    # The worker's AWS SDK reads the sink's key from the mounted Secret, never from an env value.
    [worker] = spec["containers"]
    assert env(worker)["AWS_SHARED_CREDENTIALS_FILE"] == f"{cconf.SECRETS_DIR}/{cconf.S3_CREDENTIALS}/{cconf.AWS_PROFILE_FILE}"
    assert not any("aws_secret" in str(value).lower() or "AKIA" in str(value) for value in env(worker).values())


def test_every_plugin_is_pinned_with_a_checksum():
    manifest = plugin_files()[MANIFEST]
    entries = [line.split("\t") for line in manifest.splitlines() if not line.startswith("#")]
    names = {plugin.name for plugin in PLUGINS}
    assert {entry[0] for entry in entries} == names == {"debezium-connector-postgres", "s3-sink", "record-size-limit",
                                                        "buffer-guard", "client-override-allowlist", "iceberg-sink",
                                                        "avro-converter"}
    downloads = [entry for entry in entries if entry[1] in ("archive", "jar", "classpath")]
    assert len({(plugin, path) for plugin, _, path, _ in downloads}) == len(downloads), "declared once per plugin"
    assert downloads
    for _, _, path, sha in downloads:
        # A path in the Maven repository the stack names (pluginRepository), pinned by its sha256.
        assert re.fullmatch(r"([\w.-]+/)+[\w.-]+\.(jar|tar\.gz)", path) and re.fullmatch(r"[0-9a-f]{64}", sha), path
        assert "SNAPSHOT" not in path and "latest" not in path
    for plugin in PLUGINS:
        for jar in plugin.compile_against:
            if jar.group == "org.apache.kafka":
                assert jar.version == KAFKA_VERSION, "compile against the Kafka the worker runs"
    sources = [entry for entry in entries if entry[1] == "source"]
    for _, _, name, sha in sources:
        assert name in plugin_files() and re.fullmatch(r"[0-9a-f]{64}", sha)


def test_the_sink_key_reaches_the_worker_only_as_a_secret_file(graph):
    secret = graph.one("kubernetes:core/v1:Secret", "s3-sink-credentials")
    data = secret.inputs["stringData"]
    assert data[SECRET_SIG] == SECRET_MARK  # the whole map is a Pulumi secret
    assert data["value"] == {
        "aws-access-key-id": FAKE_ACCESS_KEY_ID, "aws-secret-access-key": FAKE_SECRET_ACCESS_KEY,
        "aws-credentials": cconf.aws_profile(FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY),
    }
    assert FAKE_SECRET_ACCESS_KEY not in json.dumps(plain(secret.wire))
    spec = pod(graph, "connect")
    [container] = spec["containers"]
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert volumes["s3-credentials"]["secret"]["secretName"] == "s3-sink-credentials"
    for item in container["env"]:
        assert "secretKeyRef" not in json.dumps(item)
    for resource in graph.resources:
        if resource.type != "kubernetes:core/v1:Secret":
            assert FAKE_SECRET_ACCESS_KEY not in json.dumps(plain(resource.wire)), resource.name
    for value in walk(worker(graph)):
        assert FAKE_SECRET_ACCESS_KEY not in value


def test_registry_and_connect_are_published_on_their_host_ports(graph):
    services = {r.metadata["name"]: r.inputs["spec"] for r in graph.of_type(SERVICE)}
    assert services["schema-registry-external"]["ports"][0]["nodePort"] == 30081
    assert services["connect-external"]["ports"][0]["nodePort"] == 30083
    assert graph.outputs["schemaRegistry"] == {
        "inCluster": "http://schema-registry.data-ingestion.svc:8081", "host": "http://localhost:8081",
        "confluentCompatible": "http://localhost:8081/apis/ccompat/v7",
    }
    assert graph.outputs["connect"] == {"inCluster": "http://connect.data-ingestion.svc:8083", "host": "http://localhost:8083"}


def test_the_host_port_offset_shifts_the_urls_not_the_node_ports():
    graph = run_stack("dev-bob", {"hostPortOffset": 100})
    assert graph.outputs["schemaRegistry"]["host"] == "http://localhost:8181"
    assert graph.outputs["connect"]["host"] == "http://localhost:8183"
    services = {r.metadata["name"]: r.inputs["spec"] for r in graph.of_type(SERVICE)}
    assert services["connect-external"]["ports"][0]["nodePort"] == 30083


def test_more_workers_are_counted_against_the_budget():
    graph = run_stack("dev", {"connectWorkers": 2, "memoryBudget": "5Gi"})
    assert workload(graph, "connect").inputs["spec"]["replicas"] == 2
    with pytest.raises(SettingsError) as raised:
        parse_settings("data-ingestion", "dev", {"connectWorkers": 2})
    [problem] = raised.value.problems
    assert problem.key == "data-ingestion:memoryBudget"
    assert "connectWorkers 2" in problem.message


def test_a_rollout_never_runs_more_pods_than_budgeted(graph):
    strategy = graph.one(DEPLOYMENT, "schema-registry").inputs["spec"]["strategy"]
    assert strategy["rollingUpdate"]["maxSurge"] == 0
    # A StatefulSet replaces its pods one at a time and never adds one.
    assert workload(graph, "connect").inputs["spec"]["updateStrategy"] == {"type": "RollingUpdate"}


def test_plugin_downloads_are_kept_on_a_volume_of_each_worker_that_outlives_the_pod(graph):
    spec = workload(graph, "connect").inputs["spec"]
    [claim] = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "plugin-cache"
    assert claim["spec"]["storageClassName"] == graph.outputs["storageClasses"]["cache"]
    [installer] = spec["template"]["spec"]["initContainers"]
    cache = installer["command"][4]
    assert {"name": "plugin-cache", "mountPath": cache} in installer["volumeMounts"]
    # Only the cache outlives the pod: the installed plugins are made again from it at each start.
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Delete", "whenScaled": "Delete"}


def test_an_iceberg_stack_with_less_connect_memory_than_was_measured_is_warned_of():
    def warning(**keys):
        return cconf.iceberg_memory_warning(parse_settings("data-ingestion", "dev", keys))

    assert warning() is None and warning(archiveFormat="iceberg", connectMemory="1Gi", schemaRegistryMemory="256Mi") is None
    assert warning(archiveFormat="iceberg") is None  # the default is above what was measured
    text = warning(archiveFormat="iceberg", connectMemory="768Mi")
    assert "connectMemory 768Mi" in text and "781 MiB" in text and "OOM-killed" in text
