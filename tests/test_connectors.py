import base64
import json
import pickle
import re

import pytest

from components import connect_config as cconf
from components.plugins import EXACT_SNAPSHOT_QUERY
from connectors.configs import CHANGE_TOPIC_PATTERN
from harness.stackgraph import FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY, fake_password, plain, run_stack

DYNAMIC = "pulumi-python:dynamic:Resource"


@pytest.fixture(scope="module")
def graph():
    return run_stack("dev")


def connector(graph, name):
    return graph.one(DYNAMIC, name)


def test_both_connectors_are_resources_of_the_stack_talking_to_connect_from_the_laptop(graph):
    for name in ("postgres-source", "s3-sink"):
        resource = connector(graph, name)
        assert resource.inputs["connectorName"] == name
        assert resource.inputs["connectUrl"] == "http://localhost:8083"
        assert resource.inputs["clusterId"] == "kind-cluster-id"  # the Kind cluster's Command
        provider = pickle.loads(base64.b64decode(resource.inputs["__provider"]["value"]))
        assert type(provider).__module__ == "connectors.provider"


def test_the_source_reads_the_stack_s_slot_and_publication_with_pgoutput(graph):
    config = connector(graph, "postgres-source").inputs["config"]
    assert config["connector.class"] == "io.debezium.connector.postgresql.PostgresConnector"
    assert config["plugin.name"] == "pgoutput" and config["tasks.max"] == "1"
    assert config["database.hostname"] == "postgres.data-ingestion.svc.cluster.local"
    assert config["database.user"] == "cdc_reader" and config["database.dbname"] == "appdb"
    assert config["slot.name"] == "debezium_dev"
    assert config["publication.name"] == "cdc_publication"
    assert config["publication.autocreate.mode"] == "disabled"
    assert config["table.include.list"] == "inventory\\.[A-Za-z0-9_]+,cdc\\.marker"  # `capture`'s default, and verify's rows
    assert config["signal.data.collection"] == "cdc.debezium_signal"
    assert int(config["heartbeat.interval.ms"]) > 0 and "cdc.heartbeat" in config["heartbeat.action.query"]
    assert config["topic.prefix"] == "cdc" and config["snapshot.mode"] == "when_needed"
    # A snapshot reads dates as text (ExactSnapshotQuery); a value that cannot be converted stops it.
    assert (config["snapshot.query.mode"], config["snapshot.query.mode.custom.name"]) == ("custom", EXACT_SNAPSHOT_QUERY)
    assert config["event.converting.failure.handling.mode"] == "fail"


def test_slots_differ_between_stacks():
    other = run_stack("dev-alice", {"hostPortOffset": 100})
    config = connector(other, "postgres-source").inputs["config"]
    assert config["slot.name"] == "debezium_dev_alice"
    assert connector(other, "postgres-source").inputs["connectUrl"] == "http://localhost:8183"


def test_change_topics_are_created_durable_and_produced_with_acks_all(graph):
    config = connector(graph, "postgres-source").inputs["config"]
    assert config["topic.creation.default.replication.factor"] == "3"
    assert config["topic.creation.default.min.insync.replicas"] == "2"
    assert int(config["topic.creation.default.partitions"]) >= 1
    assert config["producer.override.acks"] == "all"
    assert config["producer.override.enable.idempotence"] == "true"
    assert config["producer.override.compression.type"] in ("lz4", "zstd", "snappy", "gzip")
    assert int(config["producer.override.batch.size"]) >= 65536 and int(config["producer.override.linger.ms"]) > 0


def test_the_sink_archives_the_source_topics_into_the_stack_s_bucket(graph):
    config = connector(graph, "s3-sink").inputs["config"]
    assert config["connector.class"] == "dataingestion.connect.s3.S3SinkConnector"
    assert "topics" not in config and config["topics.regex"] == CHANGE_TOPIC_PATTERN
    assert config["s3.bucket"] == graph.outputs["archive"]["bucket"]
    assert config["s3.region"] == "us-east-1" and config["s3.prefix"] == "cdc"
    assert config["file.compression"] == "gzip"
    assert int(config["file.max.records"]) > 0 and int(config["file.rotate.interval.ms"]) > 0
    assert config["errors.tolerance"] == "none"
    assert "s3.endpoint" not in config  # AWS itself


def test_credentials_are_only_placeholders_for_files_the_worker_mounts(graph):
    pod = graph.one("kubernetes:apps/v1:StatefulSet", "connect").inputs["spec"]["template"]["spec"]
    [container] = pod["containers"]
    mounted = {mount["mountPath"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    files = {
        f"{cconf.SECRETS_DIR}/s3": {"aws-access-key-id", "aws-secret-access-key"},
        f"{cconf.SECRETS_DIR}/postgres": {item["path"] for item in volumes["postgres-credentials"]["secret"]["items"]},
    }
    placeholders = []
    for name in ("postgres-source", "s3-sink"):
        for value in connector(graph, name).inputs["config"].values():
            placeholders += re.findall(r"\$\{directory:([^:}]+):([^}]+)\}", value)
    assert len(placeholders) == 3
    for directory, file_name in placeholders:
        assert directory in mounted and file_name in files[directory], (directory, file_name)


def test_no_secret_value_in_any_connector_config(graph):
    secrets = [fake_password("postgres-cdc-password"), fake_password("postgres-superuser-password"),
               FAKE_SECRET_ACCESS_KEY, FAKE_ACCESS_KEY_ID]
    for name in ("postgres-source", "s3-sink"):
        text = json.dumps(connector(graph, name).inputs["config"]) + json.dumps(plain(connector(graph, name).wire))
        for secret in secrets:
            assert secret not in text, (name, secret)


def test_connectors_wait_for_what_they_use(graph):
    def urn(type_, name):
        return graph.one(type_, name).urn

    source = connector(graph, "postgres-source").dependencies
    assert urn("kubernetes:apps/v1:StatefulSet", "postgres") in source
    assert urn("kubernetes:apps/v1:StatefulSet", "connect") in source
    sink = connector(graph, "s3-sink").dependencies
    for type_, name in [
        ("kubernetes:apps/v1:StatefulSet", "connect"),
        ("kubernetes:core/v1:Secret", "s3-sink-credentials"),
        ("aws:s3/bucket:Bucket", "archive"),
        ("aws:iam/userPolicy:UserPolicy", "archive-sink-write"),
        ("aws:iam/accessKey:AccessKey", "archive-sink-key"),
    ]:
        assert urn(type_, name) in sink, name


def test_outputs_name_the_connectors(graph):
    assert graph.outputs["connectors"]["source"]["name"] == "postgres-source"
    assert graph.outputs["connectors"]["sink"]["name"] == "s3-sink"


@pytest.mark.parametrize("limit", ["4Mi", "10Mi"])
def test_one_max_record_bytes_sets_every_limit_on_the_way(limit):
    from components import kafka_config as kconf
    from components.stack import parse_settings

    graph = run_stack("dev", {"maxRecordBytes": limit})
    settings = parse_settings("data-ingestion", "dev", {"maxRecordBytes": limit})
    source = connector(graph, "postgres-source").inputs["config"]
    sink = connector(graph, "s3-sink").inputs["config"]
    broker = kconf.broker_properties(settings, 0, kconf.cluster_endpoints(settings))
    record = settings.config.max_record_bytes.bytes
    guard = int(source["transforms.recordSizeLimit.max.bytes"])
    producer = int(source["producer.override.max.request.size"])
    assert not any("max.message.bytes" in key for key in source)  # topics follow the brokers' limit
    topic = int(broker["message.max.bytes"])
    # The guard names the table and key before anything downstream refuses the record.
    assert source["transforms"].split(",")[-1] == "recordSizeLimit"  # last: it measures what is sent
    assert source["transforms.recordSizeLimit.type"] == "dataingestion.connect.limits.RecordSizeLimit"
    assert guard < producer == record < topic
    assert int(broker["replica.fetch.max.bytes"]) >= topic
    assert int(sink["consumer.override.max.partition.fetch.bytes"]) >= topic


def test_the_source_watches_its_slot_through_the_host_port_as_the_cdc_role_and_keeps_it_secret(graph):
    from harness.stackgraph import SECRET_MARK, SECRET_SIG

    source = connector(graph, "postgres-source")
    wire = source.wire["slotWatch"]
    assert wire[SECRET_SIG] == SECRET_MARK
    watch = source.inputs["slotWatch"]["value"]
    assert watch["slot"] == "debezium_dev"
    assert "host=localhost port=5432 dbname=appdb user=cdc_reader" in watch["dsn"]
    assert fake_password("postgres-cdc-password") in watch["dsn"]
    assert "slotWatch" in source.additional_secret_outputs
    assert "slotWatch" not in connector(graph, "s3-sink").inputs


def test_an_iceberg_stack_runs_icebergs_sink_typed_into_its_glue_database_with_no_credentials_in_its_config():
    graph = run_stack("dev-alice", {"archiveFormat": "iceberg", "serialization": "json"})
    assert graph.of_type(DYNAMIC) and all(r.name != "s3-sink" for r in graph.of_type(DYNAMIC))
    sink = connector(graph, "iceberg-sink").inputs
    config = sink["config"]
    assert config["connector.class"] == "dataingestion.connect.iceberg.TypedIcebergSinkConnector"
    assert config["topics.regex"] == CHANGE_TOPIC_PATTERN
    assert config["transforms.changelog.database"] == "data_ingestion_dev_alice"
    assert config["iceberg.tables.route-field"] == "_cdc.target"
    assert config["iceberg.tables.auto-create-enabled"] == "false", "tables come typed from our task only"
    assert config["iceberg.catalog.catalog-impl"] == "org.apache.iceberg.aws.glue.GlueCatalog"
    assert config["iceberg.catalog.warehouse"].startswith("s3://data-ingestion-dev-alice-")
    assert config["iceberg.catalog.warehouse"].endswith("/cdc")
    assert config["iceberg.control.topic"] == cconf.ICEBERG_CONTROL_TOPIC
    assert config["dataingestion.partition-by"] == "day"  # of the commit time
    hourly = run_stack("dev", {"archiveFormat": "iceberg", "archivePartitionBy": "hour"})
    assert connector(hourly, "iceberg-sink").inputs["config"]["dataingestion.partition-by"] == "hour"
    assert not any("access-key" in key or "secret" in key for key in config), "the key comes from the mounted file"
    assert config["consumer.override.isolation.level"] == "read_committed"
    # Sized from the worker's heap (480Mi of the default 960Mi).
    assert config["iceberg.tables.auto-create-props.write.parquet.row-group-size-bytes"] == str(10 * 1024 * 1024)
    assert config["iceberg.tables.auto-create-props.write.target-file-size-bytes"] == str(160 * 1024 * 1024)
    # With json, the source embeds schemas, which the sink types its tables from, and counts them in its size check.
    source = connector(graph, "postgres-source").inputs["config"]
    assert source["value.converter.schemas.enable"] == "true" and source["decimal.handling.mode"] == "precise"
    assert source["transforms.recordSizeLimit.schemas.enable"] == "true"
    assert graph.outputs["connectors"]["sink"]["name"] == "iceberg-sink"


def test_exactly_once_source_writes_changes_and_offsets_in_one_transaction_only_when_asked(graph):
    assert "exactly.once.support" not in connector(graph, "postgres-source").inputs["config"]
    on = run_stack("dev", {"exactlyOnceSource": "true", "archiveFormat": "iceberg"})
    source = connector(on, "postgres-source").inputs["config"]
    assert source["exactly.once.support"] == "required" and source["transaction.boundary"] == "poll"
    worker = on.one("kubernetes:core/v1:ConfigMap", "connect-worker-config").inputs["data"]["worker.properties"]
    assert "exactly.once.source.support=enabled" in worker
    # Either way the sink reads committed records only: an aborted transaction's changes come again.
    assert connector(on, "iceberg-sink").inputs["config"]["consumer.override.isolation.level"] == "read_committed"
    assert connector(graph, "s3-sink").inputs["config"]["consumer.override.isolation.level"] == "read_committed"


@pytest.mark.parametrize("archive_format,sink", [("jsonl", "s3-sink"), ("iceberg", "iceberg-sink")])
def test_with_avro_both_connectors_speak_avro_through_the_in_cluster_registry(archive_format, sink):
    graph = run_stack("dev", {"serialization": "avro", "archiveFormat": archive_format})
    registry = "http://schema-registry.data-ingestion.svc:8081/apis/registry/v2"
    for name in ("postgres-source", sink):
        config = connector(graph, name).inputs["config"]
        for side in ("key", "value"):
            assert config[f"{side}.converter"] == "dataingestion.connect.avro.TypedAvroConverter"
            assert config[f"{side}.converter.apicurio.registry.url"] == registry
            # Confluent's framing (a zero byte and a 4-byte content id), which Confluent's clients read.
            assert config[f"{side}.converter.apicurio.registry.id-handler"].endswith(".Legacy4ByteIdHandler")
            assert config[f"{side}.converter.apicurio.registry.use-id"] == "contentId"
            assert config[f"{side}.converter.apicurio.registry.headers.enabled"] == "false"
        assert not any("schemas.enable" in key for key in config if "converter" in key)
        if name == sink:  # an array's header, read as the JSON the source wrote
            assert config["header.converter"] == "org.apache.kafka.connect.storage.StringConverter"
        # A registry that does not answer is waited for as long as it is away; nothing is skipped.
        assert config["errors.retry.timeout"] == "-1" and config.get("errors.tolerance", "none") == "none"
    source = connector(graph, "postgres-source").inputs["config"]
    # numeric as Avro's decimal of its precision and scale, by our converter; NaN and ±Infinity in headers.
    assert (source["decimal.handling.mode"], source["exact.numerics"]) == ("precise", "typed")
    assert source["converters"] == "exact" and source["transforms"] == "nonFinite,recordSizeLimit"
    # The size limit measures schemaless JSON, never smaller than the Avro it stands for.
    assert "transforms.recordSizeLimit.schemas.enable" not in source


def test_with_json_the_jsonl_sink_takes_the_sources_bytes_as_they_are():
    graph = run_stack("dev", {"serialization": "json"})
    sink = connector(graph, "s3-sink").inputs["config"]
    assert sink["value.converter"] == sink["key.converter"] == "org.apache.kafka.connect.converters.ByteArrayConverter"
    assert sink["header.converter"] == "org.apache.kafka.connect.storage.StringConverter"
    source = connector(graph, "postgres-source").inputs["config"]
    assert source["decimal.handling.mode"] == "string" and "value.converter" not in source  # the worker's JSON
    assert source["exact.numerics"] == "text"  # PostgreSQL's text: 1.500, NaN, -Infinity
    assert graph.outputs["connectors"]["serialization"] == "json"


def test_avro_is_the_default(graph):
    assert connector(graph, "postgres-source").inputs["config"]["value.converter"].endswith("TypedAvroConverter")
    assert graph.outputs["connectors"]["serialization"] == "avro"
