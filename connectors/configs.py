"""Connector configurations as pure functions: settings in, the config map Kafka Connect takes out.

Secrets appear only as config-provider placeholders; the worker resolves them from mounted files.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from components import buffer_config as bconf
from components import connect_config as cconf
from components import kafka_config as kconf
from components import postgres_config as pgconf
from components.capture import INTERNAL_SCHEMA
from components.plugins import (BUFFER_GUARD, CHANGELOG_ROW, DEBEZIUM_POSTGRES, EXACT_SNAPSHOT_QUERY, EXACT_VALUES,
                                ICEBERG_SINK, NON_FINITE_NUMERICS, RECORD_SIZE_LIMIT, S3_SINK)
from components.quantity import Memory
from components.settings import Settings
from components.topology import CONNECT

SOURCE_NAME = "postgres-source"
BUFFER_GUARD_NAME = "buffer-guard"
TOPIC_PREFIX = "cdc"
# What a record adds to its key and value in the producer's size check: headers, timestamp, framing.
RECORD_FRAMING = 1024
BYTES_CONVERTER = "org.apache.kafka.connect.converters.ByteArrayConverter"
# A sink reads each header as the text the source wrote (an array's JSON), where the worker's
# default would parse it into Connect's data and print it back otherwise.
HEADERS_AS_TEXT = {"header.converter": "org.apache.kafka.connect.storage.StringConverter"}
# Keys and values as JSON with each record's schema embedded: what an Iceberg stack's source writes
# and its sink reads.
JSON_WITH_SCHEMAS = {
    "key.converter": cconf.JSON_CONVERTER,
    "key.converter.schemas.enable": "true",
    "value.converter": cconf.JSON_CONVERTER,
    "value.converter.schemas.enable": "true",
}
# How often Iceberg's sink commits what its workers wrote (a snapshot per table, with the offsets):
# as often as the JSONL sink closes its objects, so both archives trail the database alike.
ICEBERG_COMMIT_INTERVAL_MS = 30000
# Change topics: enough partitions for the sink to spread over tasks later, few enough for 2 cores.
TOPIC_PARTITIONS = 3
CHANGE_SEGMENT_MS = 3_600_000


@dataclass(frozen=True)
class Database:
    host: str
    port: int
    name: str = pgconf.DATABASE
    user: str = pgconf.CDC_ROLE


@dataclass(frozen=True)
class Bucket:
    name: str
    region: str
    prefix: str
    endpoint: str = ""  # empty: AWS itself; otherwise an S3-compatible store, addressed by path


def change_topic(table: str) -> str:
    """The topic of a captured table (`schema.table`)."""
    return f"{TOPIC_PREFIX}.{table}"


# Every table topic the source writes: each captured table's, and the check rows of `make verify`;
# not the source's internal tables (signals, heartbeats). The sink takes every such topic, not only
# those of tables captured now: a table removed from `capture` stops at the source, and what it
# already wrote to Kafka still reaches the archive. Java and Python read this pattern alike.
CHANGE_TOPIC_PATTERN = (
    f"{re.escape(TOPIC_PREFIX)}\\.(?!{re.escape(INTERNAL_SCHEMA)}\\.)[^.]+\\.[^.]+"
    f"|{re.escape(change_topic(pgconf.MARKER_TABLE))}"
)


def is_change_topic(topic: str) -> bool:
    return re.fullmatch(CHANGE_TOPIC_PATTERN, topic) is not None


def execute_snapshot_signal(tables: list[str]) -> tuple[str, str, str]:
    """A row for the source's signal table (id, type, data) asking for an incremental snapshot of
    `tables`: read in chunks by primary key while the stream goes on, without reordering changes."""
    data = {"type": "incremental", "data-collections": [re.escape(table) for table in tables]}
    return f"snapshot-{uuid.uuid4()}", "execute-snapshot", json.dumps(data)


def debezium_source(settings: Settings, database: Database, secrets_dir: str = cconf.SECRETS_DIR,
                    registry_url: str | None = None, excluded: Iterable[str] | None = ()) -> dict[str, str]:
    """`excluded`: the tables in what `capture` names that the capture step left out (the source
    must not snapshot a table the database does not publish)."""
    rf = settings.replication_factor
    limit = settings.config.max_record_bytes.bytes
    return {
        "connector.class": DEBEZIUM_POSTGRES.class_name,
        "tasks.max": "1",  # the PostgreSQL connector reads one slot with one task
        "plugin.name": "pgoutput",
        "database.hostname": database.host,
        "database.port": str(database.port),
        "database.dbname": database.name,
        "database.user": database.user,
        "database.password": cconf.secret_placeholder(
            cconf.POSTGRES_PASSWORD_FILE, secrets_dir, cconf.POSTGRES_CREDENTIALS
        ),
        "topic.prefix": TOPIC_PREFIX,
        # One slot per stack; the publication is created by the PostgreSQL tier, never by Debezium
        # (which would need ownership of the tables).
        "slot.name": settings.names.replication_slot,
        "publication.name": pgconf.PUBLICATION,
        "publication.autocreate.mode": "disabled",
        # What `capture` names, and the check rows of `make verify`.
        "table.include.list": table_include_list(settings, excluded),
        # A table added to `capture` with rows in it gets them through an incremental snapshot, asked
        # for by a row in this table (connectors/capture.py writes it after this connector's update).
        "signal.enabled.channels": "source",
        "signal.data.collection": pgconf.SIGNAL_TABLE,
        # when_needed: a snapshot on the first start, and again whenever the position the source
        # resumes from is gone (a replication slot lost and dropped), rather than a silent gap.
        "snapshot.mode": settings.config.snapshot_mode,
        # Heartbeats write to a table in the publication, so the slot's position advances even when
        # the captured tables are quiet.
        "heartbeat.interval.ms": "10000",
        "heartbeat.action.query": (
            f"INSERT INTO {pgconf.HEARTBEAT_TABLE} (id, beat_at) VALUES (1, now()) "
            "ON CONFLICT (id) DO UPDATE SET beat_at = EXCLUDED.beat_at"
        ),
        # An interval as ISO 8601 text (P1Y2M3DT4H5M6.789S): its months stay months, where a count of
        # microseconds would make them 30.4375 days each and overflow past 292,000 years.
        "interval.handling.mode": "string",
        "tombstones.on.delete": "true",
        # A value Debezium cannot convert stops the source, naming it, where its default writes a null
        # and a warning in the log: nothing is lost silently.
        "event.converting.failure.handling.mode": "fail",
        # Debezium's context headers (connector name, task id) on every record: nothing downstream of
        # the archive reads them, and each sink parsed them for every record it read.
        "extended.headers.enabled": "false",
        # A TRUNCATE is an event of its own (op "t", no key, no row), so that replaying the archive gives
        # what the database holds; Debezium skips it unless told.
        "skipped.operations": "none",
        # Change topics are created on first write, durable like every topic of the stack.
        "topic.creation.default.replication.factor": str(rf),
        "topic.creation.default.partitions": str(TOPIC_PARTITIONS),
        "topic.creation.default.min.insync.replicas": str(settings.min_insync_replicas),
        "topic.creation.default.cleanup.policy": "delete",
        "topic.creation.default.compression.type": "producer",
        # A change's Kafka timestamp is when the broker appended it: with source.ts_us (the commit
        # time) every archived record tells how long it took to reach Kafka.
        "topic.creation.default.message.timestamp.type": "LogAppendTime",
        # A segment closes within the hour even on a quiet table: Kafka frees closed segments only, so
        # what the archive holds can be given back when the buffer guard needs the room.
        "topic.creation.default.segment.ms": str(CHANGE_SEGMENT_MS),
        "topic.creation.default.segment.bytes": str(bconf.change_segment_bytes(settings.config)),
        # Throughput: large batches from the WAL reader, and a producer that batches and compresses.
        "max.batch.size": "8192",
        "max.queue.size": "65536",
        # And by bytes: a source that cannot send (Kafka away) keeps reading the WAL until its queue
        # is full, and 65,536 wide rows would not fit in the worker's heap.
        "max.queue.size.in.bytes": str(cconf.connect_heap(settings).bytes // 8),
        "poll.interval.ms": "50",
        **cconf.client_overrides("producer", cconf.source_producer(settings)),
        # One limit, maxRecordBytes, end to end: a larger change stops the task here with its table
        # and key named, before the producer, the topic or a broker refuses it.
        # A numeric's NaN or ±Infinity, which a typed decimal cannot hold: a null and a header naming it.
        "transforms": "nonFinite,recordSizeLimit",
        "transforms.nonFinite.type": NON_FINITE_NUMERICS,
        "transforms.recordSizeLimit.type": RECORD_SIZE_LIMIT.class_name,
        "transforms.recordSizeLimit.max.bytes": str(limit - RECORD_FRAMING),
        **_typed_records(settings, registry_url),
        **_exactly_once(settings),
    }


def buffer_guard(settings: Settings, kafka_bootstrap: str | None = None, rest_url: str | None = None,
                 rest_secrets_dir: str = cconf.REST_SECRETS_DIR) -> dict[str, str]:
    """The connector that keeps Kafka's volumes from filling (components/buffer_config.py). It stops
    the source through its own worker's REST API, with the header the readiness probe sends.
    `kafka_bootstrap` and `rest_url`: where it finds the brokers and its worker (in the cluster, the defaults)."""
    return {
        "connector.class": BUFFER_GUARD.class_name,
        "tasks.max": "1",
        "bootstrap.servers": kafka_bootstrap or kconf.bootstrap_servers(settings),
        "group": settings.config.archive_format.sink_group,
        "topics.regex": CHANGE_TOPIC_PATTERN,
        "capacity.bytes": str(settings.config.kafka_storage.bytes),
        "free.at": str(bconf.FREE_AT),
        "stop.at": str(bconf.STOP_AT),
        "resume.at": str(bconf.RESUME_AT),
        "check.interval.ms": str(bconf.CHECK_INTERVAL_MS),
        "connector": SOURCE_NAME,
        "rest.url": rest_url or f"http://localhost:{CONNECT.ports['rest']}",
        "rest.authorization.file": f"{rest_secrets_dir}/{cconf.REST_AUTHORIZATION_FILE}",
        "report.topic": bconf.REPORT_TOPIC,
        "report.replication.factor": str(settings.replication_factor),
    }


def table_include_list(settings: Settings, excluded: Iterable[str] | None = ()) -> str:
    """What `capture` names, less the tables the capture step left out, and the check rows of `make verify`."""
    return ",".join([*settings.capture.include_list(excluded or ()), re.escape(pgconf.MARKER_TABLE)])


def _exactly_once(settings: Settings) -> dict[str, str]:
    """With exactlyOnceSource: each batch the source polls, and its position, in one transaction;
    Connect refuses to start the source rather than run it without."""
    if not settings.config.exactly_once_source:
        return {}
    return {"exactly.once.support": "required", "transaction.boundary": "poll"}


def _exact_values(typed: bool) -> dict[str, str]:
    """Dates (±infinity, before 1582, and a snapshot's read as text), varbit's leading zeros, arrays
    of more dimensions than declared and numerics exactly, by our converter: a numeric typed as a
    decimal of its scale (NaN and ±Infinity carried by a header, see NonFiniteNumerics), or as
    PostgreSQL's text where records carry no types. Debezium's own decimal.handling.mode then
    applies only to what the converter leaves (money)."""
    return {"converters": "exact", "exact.type": EXACT_VALUES, "exact.numerics": "typed" if typed else "text",
            "decimal.handling.mode": "precise" if typed else "string",
            "snapshot.query.mode": "custom", "snapshot.query.mode.custom.name": EXACT_SNAPSHOT_QUERY}


def _typed_records(settings: Settings, registry_url: str | None) -> dict[str, str]:
    """With serialization avro, keys and values through the registry; otherwise, for an Iceberg
    archive, JSON with each change's schema in it, so that the sink creates typed columns (numeric
    as a decimal of its scale, not as text). With json, the JSONL archive keeps records bare."""
    if settings.config.serialization.registry:
        # The size limit still measures schemaless JSON: never smaller than the Avro it stands for.
        # Avro names hold letters, digits and _ only, and start with no digit: a column "Unit Price"
        # arrives as Unit_Price rather than stopping the source (the capture step leaves out a table
        # whose columns would then share a name).
        return {"field.name.adjustment.mode": "avro", "schema.name.adjustment.mode": "avro",
                **_exact_values(typed=True), **converters(settings, registry_url)}
    if not settings.config.serialization.schemas_in_records(settings.config.archive_format):
        return _exact_values(typed=False)
    return {
        **_exact_values(typed=True),
        "transforms.recordSizeLimit.schemas.enable": "true",  # the schema is part of each record's size
        **JSON_WITH_SCHEMAS,
    }


def converters(settings: Settings, registry_url: str | None = None) -> dict[str, str]:
    """How a connector writes or reads typed keys and values: Avro through the registry, or JSON
    with each record's schema in it."""
    if settings.config.serialization.registry:
        return cconf.avro_converters(settings, registry_url)
    return JSON_WITH_SCHEMAS


@dataclass(frozen=True)
class Catalog:
    """Where Iceberg's sink keeps its tables: a Glue database, the warehouse under the archive prefix."""

    database: str
    bucket: Bucket


def iceberg_table(database: str, table: str) -> str:
    """The Iceberg table of a captured table `schema.table`: `<database>.<schema>_<table>`, as
    ChangelogRow names it."""
    schema, name = table.split(".", 1)
    return f"{database}.{schema}_{name}".lower()


def iceberg_write_sizes(settings: Settings) -> dict[str, Memory]:
    """Parquet's sizes, from the worker's heap: a writer holds a row group in memory per open file
    (one per table and day written since the last commit), so a dozen must fit with room to spare."""
    heap = cconf.connect_heap(settings)
    row_group = Memory.mebibytes(max(4, min(32, heap.mib // 48)))
    return {"row_group": row_group, "target_file": Memory.mebibytes(row_group.mib * 16)}


def iceberg_sink(settings: Settings, catalog: Catalog, registry_url: str | None = None) -> dict[str, str]:
    """Apache Iceberg's sink: an append-only changelog table per captured table, committed with the
    offsets it has read, so that a restart neither loses nor repeats a change."""
    bucket = catalog.bucket
    sizes = iceberg_write_sizes(settings)
    table_props = "iceberg.tables.auto-create-props"
    config = {
        "connector.class": ICEBERG_SINK.class_name,
        "tasks.max": "1",
        "topics.regex": CHANGE_TOPIC_PATTERN,
        **converters(settings, registry_url),
        **HEADERS_AS_TEXT,
        # Each change becomes a row: the after-image (a delete's before-image), with _cdc.op (c, r,
        # u, d), _cdc.committed_at, _cdc.lsn, _cdc.topic/partition/offset and _cdc.table beside it;
        # _cdc.target names its Iceberg table.
        "transforms": "changelog",
        "transforms.changelog.type": CHANGELOG_ROW,
        "transforms.changelog.database": catalog.database,
        "iceberg.tables.dynamic-enabled": "true",
        "iceberg.tables.route-field": "_cdc.target",
        # A table created later in a captured schema gets its Iceberg table on its first change, and
        # a column added to it a column in that table: both typed by the task from the change's
        # schema, never by the sink's own auto-creation (which has no timestamp without time zone).
        "iceberg.tables.auto-create-enabled": "false",
        "iceberg.tables.evolve-schema-enabled": "true",
        "dataingestion.partition-by": settings.config.archive_partition_by,  # of _cdc.committed_at
        f"{table_props}.format-version": "2",
        f"{table_props}.write.format.default": "parquet",
        f"{table_props}.write.parquet.compression-codec": "zstd",
        f"{table_props}.write.parquet.row-group-size-bytes": str(sizes["row_group"].bytes),
        f"{table_props}.write.target-file-size-bytes": str(sizes["target_file"].bytes),
        "iceberg.control.topic": cconf.ICEBERG_CONTROL_TOPIC,
        "iceberg.control.commit.interval-ms": str(ICEBERG_COMMIT_INTERVAL_MS),
        "iceberg.catalog.catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
        "iceberg.catalog.warehouse": f"s3://{bucket.name}/{bucket.prefix}",
        "iceberg.catalog.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        "iceberg.catalog.client.region": bucket.region,
        # Credentials: the SDK's default chain, i.e. the worker's mounted key file (aws_environment).
        # The control topic's clients take the worker's own bootstrap servers.
        "errors.tolerance": "none",
        **cconf.client_overrides("consumer", cconf.sink_consumer(settings)),
    }
    if bucket.endpoint:
        config["iceberg.catalog.glue.endpoint"] = bucket.endpoint
        config["iceberg.catalog.s3.endpoint"] = bucket.endpoint
        config["iceberg.catalog.s3.path-style-access"] = "true"
    return config


def archive_sink(settings: Settings, bucket: Bucket, database: str | None = None,
                 secrets_dir: str = cconf.SECRETS_DIR, kafka_bootstrap: str | None = None,
                 registry_url: str | None = None) -> dict[str, str]:
    """The stack's archive sink: Iceberg's into the Glue database, or the JSONL sink."""
    if settings.config.archive_format.typed:
        assert database is not None, "an Iceberg archive needs its Glue database"
        return iceberg_sink(settings, Catalog(database, bucket), registry_url=registry_url)
    return s3_sink(settings, bucket, secrets_dir=secrets_dir, kafka_bootstrap=kafka_bootstrap, registry_url=registry_url)


def s3_sink(
    settings: Settings, bucket: Bucket, secrets_dir: str = cconf.SECRETS_DIR, kafka_bootstrap: str | None = None,
    registry_url: str | None = None,
) -> dict[str, str]:
    config = {
        "connector.class": S3_SINK.class_name,
        "tasks.max": "1",
        # A table created later in a captured schema reaches the archive with no `pulumi up`: its
        # topic is picked up at the consumer's next metadata refresh.
        "topics.regex": CHANGE_TOPIC_PATTERN,
        # Where the sink reads each topic's id, which names its objects: a new cluster's never
        # replace an old one's in a kept bucket.
        "kafka.bootstrap.servers": kafka_bootstrap or kconf.bootstrap_servers(settings),
        "s3.bucket": bucket.name,
        "s3.region": bucket.region,
        "s3.prefix": bucket.prefix,
        "aws.access.key.id": cconf.secret_placeholder(cconf.ACCESS_KEY_ID_FILE, secrets_dir),
        "aws.secret.access.key": cconf.secret_placeholder(cconf.SECRET_ACCESS_KEY_FILE, secrets_dir),
        "file.compression": "gzip",
        "file.max.records": "50000",
        "file.rotate.interval.ms": "30000",
        # A record the sink cannot write stops the task instead of being skipped: nothing is lost silently.
        "errors.tolerance": "none",
        **_jsonl_converters(settings, registry_url),
        **HEADERS_AS_TEXT,
        **cconf.client_overrides("consumer", cconf.sink_consumer(settings)),
    }
    if bucket.endpoint:
        config["s3.endpoint"] = bucket.endpoint
        config["s3.path.style.access"] = "true"
    return config


def _jsonl_converters(settings: Settings, registry_url: str | None) -> dict[str, str]:
    """With json, each record's JSON as the source wrote it: read as bytes, checked to be JSON and
    written as it is, rather than parsed into Connect's data and serialized again (a third of the
    worker's CPU and most of its garbage, in `make bench`'s profile). With avro, the typed records,
    which the sink writes as JSON with their types kept."""
    if settings.config.serialization.registry:
        return converters(settings, registry_url)
    return {"key.converter": BYTES_CONVERTER, "value.converter": BYTES_CONVERTER}
