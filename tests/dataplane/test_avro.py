"""serialization avro on real processes: Debezium writes through Apicurio's converter (ours on top,
for the logical types), each archive sink reads through it, and a consumer outside Connect
(Confluent's Python client, fastavro underneath) decodes the change records with the schemas it
fetches by id from the registry's Confluent-compatible API.

The registry is the real Apicurio Registry server (tests/dataplane/registry.py), in the version
Maven Central builds; tests/test_registry_versions.py says what differs for these calls in the
version the cluster runs.
"""

import json
import os
import re
import subprocess
import time
from datetime import date, datetime, time as clock
from decimal import Decimal
from uuid import UUID

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from pyiceberg.types import DateType, DecimalType, LongType, StringType, TimestampType, TimeType

from components import connect_config as cconf
from connectors import configs
from operations import smoke
from connectors.provider import root_cause
from tests import docs
from harness.dataplane.kafka import wait_for
from harness.dataplane.pipeline import Pipeline, require_dataplane, run_with_fault, stack_settings
from harness.dataplane.registry import CALLS

TABLE = "inventory.priced_items"
TOPIC = configs.change_topic(TABLE)

pytestmark = pytest.mark.minutes(7)  # the jsonl pipeline; the iceberg one takes 5


@pytest.fixture(scope="module", params=["jsonl", "iceberg"])
def pipeline(request):
    require_dataplane()
    running = Pipeline(stack_settings(brokers=1, serialization="avro", archiveFormat=request.param)).start()
    try:
        running.deploy_connectors()
        running.sql(f"""CREATE TABLE {TABLE} (
            id bigint PRIMARY KEY, price numeric(10,2) NOT NULL, quantity integer NOT NULL,
            due_at timestamp(6), ships_on date, cutoff time, placed_at timestamptz, token uuid, details jsonb,
            note text)""")
        running.sql(f"INSERT INTO {TABLE} VALUES (1, 12345678.91, 3, '2026-12-01 09:30:00.654321', '2026-12-02', "
                    "'17:45:00.5', '2026-11-26 10:00:00.123456+02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', "
                    "'{\"gift\": true}', 'first')")
        yield running
    finally:
        running.stop()


def decoded(pipeline: Pipeline, topic: str = TOPIC, wanted: int = 1, timeout: float = 120) -> list[dict]:
    """Every value in `topic` from its start, decoded as a Confluent client downstream decodes it:
    the id from each record's framing, the schema from the registry's Confluent-compatible API."""
    registry = SchemaRegistryClient({"url": pipeline.registry.confluent_url})
    values = AvroDeserializer(registry)
    consumer = Consumer({"bootstrap.servers": pipeline.kafka.bootstrap, "group.id": f"outside-{time.monotonic_ns()}",
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    consumer.assign([TopicPartition(topic, partition, 0) for partition in range(configs.TOPIC_PARTITIONS)])
    found: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < wanted and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None or message.error() or message.value() is None:
                continue
            assert message.value()[0] == 0, "Confluent's framing: a zero byte, then the schema's id"
            found.append(values(message.value(), SerializationContext(topic, MessageField.VALUE)))
    finally:
        consumer.close()
    assert len(found) >= wanted, f"{len(found)} of {wanted} records of {topic} within {timeout} s"
    return found


def archived_row(pipeline: Pipeline, row_id: int, timeout: float = 180) -> dict:
    """Row `row_id`'s latest archived image: the JSONL record's after, or the Iceberg row."""
    def latest():
        if pipeline.settings.config.archive_format.typed:
            rows = [row for row in pipeline.iceberg_rows(TABLE) if row["id"] == row_id]
            return max(rows, key=lambda row: row["_cdc"]["lsn"]) if rows else None
        records = [record["value"]["after"] for record in pipeline.s3_records()
                   if record["topic"] == TOPIC and record["value"] and (record["value"]["after"] or {}).get("id") == row_id]
        return records[-1] if records else None
    found: list[dict] = []
    wait_for(lambda: bool(found.append(latest()) or found[-1]), timeout, f"row {row_id} of {TABLE} in the archive")
    return found[-1]


def test_a_change_record_decodes_outside_connect_with_its_types(pipeline):
    [change] = decoded(pipeline)
    after = change["after"]
    assert after["price"] == Decimal("12345678.91")  # Avro decimal(10, 2): exact
    assert after["due_at"] == datetime(2026, 12, 1, 9, 30, 0, 654321)  # local-timestamp-micros: no zone
    assert after["ships_on"] == date(2026, 12, 2)
    assert after["cutoff"] == clock(17, 45, 0, 500000)
    assert after["token"] == UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    assert after["placed_at"] == "2026-11-26T08:00:00.123456Z"  # timestamptz: Debezium's ISO text, in UTC
    assert after["details"] == '{"gift": true}' and after["quantity"] == 3
    assert change["op"] == "c" and change["source"]["table"] == "priced_items"

    schema = pipeline.registry.versions(f"{TOPIC}-value")[-1]
    # The row's record is defined where first used, in `before` (`after` names it).
    value_fields = {f["name"]: f["type"] for f in next(f for f in schema["fields"] if f["name"] == "before")["type"][1]["fields"]}
    # Every numeric may be null in the change (NaN travels beside it, in a header), NOT NULL or not.
    null, price = value_fields["price"]
    assert null == "null" and price["logicalType"] == "decimal" and (price["precision"], price["scale"]) == (10, 2)
    assert value_fields["due_at"][1]["logicalType"] == "local-timestamp-micros"
    assert value_fields["ships_on"][1]["logicalType"] == "date"
    assert value_fields["token"][1]["logicalType"] == "uuid"

    calls = set(pipeline.registry.calls)
    print(f"\nregistry calls: {sorted(calls)}")
    # Only calls tests/dataplane/test_registry_versions.py compares, each answered as there.
    assert {(method, path) for method, path, _ in calls} <= set(CALLS)
    assert {status for method, path, status in calls} == {200, 404}
    assert {(method, path) for method, path, status in calls if status == 404} == {c for c, why in CALLS.items() if why is None}


def test_the_archive_keeps_the_types(pipeline):
    row = archived_row(pipeline, 1)
    if pipeline.settings.config.archive_format.typed:
        table = pipeline.iceberg_catalog().load_table(configs.iceberg_table(pipeline.archive.glue_database, TABLE))
        types = {field.name: field.field_type for field in table.schema().fields}
        assert types["price"] == DecimalType(10, 2) and types["quantity"] != StringType()
        assert (types["due_at"], types["ships_on"], types["cutoff"]) == (TimestampType(), DateType(), TimeType())
        assert row["price"] == Decimal("12345678.91") and row["due_at"] == datetime(2026, 12, 1, 9, 30, 0, 654321)
        assert row["ships_on"] == date(2026, 12, 2) and row["cutoff"] == clock(17, 45, 0, 500000)
    else:
        # JSON with the types kept: the decimal an exact number, time as ISO-8601 text.
        assert row["price"] == Decimal("12345678.91") and isinstance(row["price"], Decimal)
        assert row["due_at"] == "2026-12-01T09:30:00.654321" and row["ships_on"] == "2026-12-02"
        assert row["cutoff"] == "17:45:00.5" and row["token"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        assert row["placed_at"] == "2026-11-26T08:00:00.123456Z" and row["quantity"] == 3


def test_an_added_column_and_a_widened_type_register_new_compatible_versions(pipeline):
    pipeline.sql(f"ALTER TABLE {TABLE} ADD COLUMN discount numeric(5,2)")
    pipeline.sql(f"INSERT INTO {TABLE} (id, price, quantity, discount) VALUES (2, 9.99, 1, 0.50)")
    pipeline.sql(f"ALTER TABLE {TABLE} ALTER COLUMN quantity TYPE bigint")
    pipeline.sql(f"INSERT INTO {TABLE} (id, price, quantity) VALUES (3, 1.00, 5000000000)")
    # In commit order: the rows' keys put them in different partitions, read in no particular order.
    changes = sorted(decoded(pipeline, wanted=3), key=lambda change: change["source"]["lsn"])
    assert [change["after"]["id"] for change in changes[:3]] == [1, 2, 3]
    assert changes[1]["after"]["discount"] == Decimal("0.50") and changes[2]["after"]["quantity"] == 5_000_000_000

    versions = pipeline.registry.versions(f"{TOPIC}-value")
    assert len(versions) == 3, [v["name"] for v in versions]  # the first, + discount, quantity as long
    assert pipeline.registry.refused == []
    assert archived_row(pipeline, 3)["quantity"] == 5_000_000_000
    assert archived_row(pipeline, 2)["discount"] == Decimal("0.50")
    if pipeline.settings.config.archive_format.typed:
        table = pipeline.iceberg_catalog().load_table(configs.iceberg_table(pipeline.archive.glue_database, TABLE))
        assert table.schema().find_field("quantity").field_type == LongType()


# The source's refusal does not depend on the archive format: shown once, with jsonl.
@pytest.mark.parametrize("pipeline", ["jsonl"], indirect=True)
def test_an_incompatible_change_stops_the_source_naming_the_rule_and_loses_nothing(pipeline):
    pipeline.sql(f"ALTER TABLE {TABLE} ALTER COLUMN note TYPE integer USING 0")  # text → int: old records unreadable
    [(before_change,)] = pipeline.sql("SELECT pg_current_wal_lsn()")
    pipeline.sql(f"INSERT INTO {TABLE} (id, price, quantity, note) VALUES (4, 2.00, 1, 7)")
    failed = []
    wait_for(lambda: bool(failed.append(pipeline.failed_source_task()) or failed[-1]), 120, "the source task to fail")
    trace = failed[-1]["trace"]
    # The registry names the subject, and make status what to do.
    assert "RuleViolationException" in trace and f"{TOPIC}-value" in trace, root_cause(trace)
    assert "Schema changes and the compatibility rule" in root_cause(trace)
    assert len(pipeline.registry.versions(f"{TOPIC}-value")) == 3 and len(pipeline.registry.refused) == 1
    print(f"\nthe source stopped: {root_cause(trace)}")
    # Row 4 is not in Kafka, and not lost: the slot has not confirmed it, so the source reads it
    # again once it can (the README's recovery).
    consumer = Consumer({"bootstrap.servers": pipeline.kafka.bootstrap, "group.id": "watermarks"})
    try:
        in_topic = sum(high - low for low, high in (consumer.get_watermark_offsets(TopicPartition(TOPIC, partition))
                                                   for partition in range(configs.TOPIC_PARTITIONS)))
    finally:
        consumer.close()
    assert in_topic == 3
    [(confirmed,)] = pipeline.sql("SELECT confirmed_flush_lsn <= %s::pg_lsn FROM pg_replication_slots WHERE slot_name = %s",
                                  before_change, pipeline.settings.names.replication_slot)
    assert confirmed

    # The README's way through: a rule of the subject's own for the moment, the source restarted.
    relax, restart, restore = readme_recovery_commands()
    for command in (relax, restart):
        run_command(pipeline, command)
    assert archived_row(pipeline, 4)["note"] == 7
    run_command(pipeline, restore)
    assert len(pipeline.registry.versions(f"{TOPIC}-value")) == 4 and pipeline.registry.rules(f"{TOPIC}-value") == []
    assert pipeline.failed_source_task() is None


def test_make_verify_follows_a_marker_row_through_avro_to_the_archive(pipeline):
    report = smoke.check(pipeline.endpoints(), s3_timeout=180)
    print("\n" + str(report))
    assert report.ok, str(report)


def readme_recovery_commands() -> list[str]:
    """The curl lines of docs/avro.md's section on the compatibility rule, in order."""
    [block] = re.findall(r"```sh\n(.*?)```", docs.section("docs/avro.md", "Schema changes and the compatibility rule"),
                         re.S)
    return [line for line in block.splitlines() if line.startswith("curl ")]


def run_command(pipeline: Pipeline, command: str) -> None:
    """A README command as a user runs it, with the harness's registry, Connect and table."""
    env = {**os.environ, "REGISTRY": pipeline.registry.url, "SUBJECT": f"{TOPIC}-value",
           "CONNECT": pipeline.connect.url, "AUTH": ":".join(pipeline.connect.auth)}
    result = subprocess.run(["bash", "-c", f"{command} --fail-with-body"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, f"{command}\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("pipeline", ["jsonl"], indirect=True)
def test_the_registry_away_while_new_schemas_come_and_connect_restarts_loses_nothing(pipeline):
    """The registry's pod restarting under load, while a new table appears (a schema to register)
    and Connect restarts (every schema to fetch again): the converters wait for it, nothing is lost.
    Away for 150 s, longer than any other wait of the worker's: the pipeline comes back by itself.
    Their wait does not depend on the archive format: shown once, with jsonl."""

    def registry_away() -> None:
        pipeline.registry.stop_server()
        try:
            pipeline.sql("CREATE TABLE inventory.born_in_outage (id bigint PRIMARY KEY, due_at timestamp)")
            pipeline.sql("INSERT INTO inventory.born_in_outage VALUES (1, '2026-11-26 12:00:00')")
            pipeline.kill_and_restart_connect()
            time.sleep(150)
            assert pipeline.failed_source_task() is None, "the source gave up on the registry"
        finally:
            pipeline.registry.start_server()

    run_with_fault(pipeline, "registry-away", registry_away, rows=1500)
    assert pipeline.failed_source_task() is None
    wait_for(lambda: any(record["topic"] == "cdc.inventory.born_in_outage" for record in pipeline.s3_records()), 180,
             "the table created while the registry was away, in the archive")


# Tables a stack may capture, each a key and a value subject: five times what the demo has.
MEASURED_SUBJECTS = 200


@pytest.mark.parametrize("pipeline", ["jsonl"], indirect=True)
def test_the_registry_holds_many_tables_schemas_within_its_memory(pipeline, record_property):
    """The real server's resident memory, run with the pod's JVM options, once it holds the schemas
    of MEASURED_SUBJECTS subjects (each a copy of this module's table's, renamed), against the pod's
    limit (schemaRegistryMemory): what sizes that limit."""
    template = pipeline.registry.versions(f"{TOPIC}-value")[-1]
    for number in range(MEASURED_SUBJECTS):
        schema = {**template, "name": f"Envelope{number}", "namespace": f"cdc.measured.table_{number}"}
        pipeline.registry.register(f"cdc.measured.table_{number}-value", json.dumps(schema))
    rss = pipeline.registry.rss_mib()
    limit = pipeline.settings.config.schema_registry_memory
    heap = cconf.schema_registry_heap(pipeline.settings)
    line = (f"registry memory: {MEASURED_SUBJECTS} more subjects; resident {rss:.0f} MiB of its {limit.mib} MiB "
            f"limit (heap {heap.mib} MiB)")
    print(f"\n{line}")
    record_property("tally", line)
    assert rss < limit.mib
