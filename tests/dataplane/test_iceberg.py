"""archiveFormat iceberg on real processes: Debezium → Kafka → Apache Iceberg's sink → moto's S3 and
Glue, with IAM enforced and the sink on its own least-privileged key; read back with pyiceberg.

The fault tests commit rows while a part of the pipeline fails and comes back, then print
committed / archived / lost / duplicates. Iceberg's sink commits its offsets with its data files, so
it never writes one Kafka record twice: a row may still repeat when the source, killed before it
committed its own offsets, sends a change to Kafka again (a second record, a later offset). Those are
counted apart: exactly once end to end needs the source's exactly-once support too.
"""

import time
from collections import Counter
from decimal import Decimal

import pytest
from pyiceberg.types import BooleanType, DecimalType, IntegerType, LongType, StringType, TimestamptzType

from connectors import configs
from tests.dataplane.kafka import wait_for
from tests.dataplane.pipeline import Pipeline, require_dataplane, stack_settings
from tests.dataplane.test_faults import Load

TYPED = "inventory.typed_orders"
ROWS = 3000


@pytest.fixture(scope="module")
def pipeline():
    require_dataplane()
    running = Pipeline(stack_settings(brokers=3, archiveFormat="iceberg")).start()
    try:
        running.deploy_connectors()
        yield running
    finally:
        running.stop()


def rows_by_op(rows: list[dict]) -> list[tuple[str, int]]:
    return [(row["_cdc"]["op"], row["id"]) for row in sorted(rows, key=lambda row: row["_cdc"]["offset"])]


def test_a_table_created_later_arrives_as_a_typed_changelog_table(pipeline):
    pipeline.sql(f"""CREATE TABLE {TYPED} (
        id bigint PRIMARY KEY, price numeric(10,2) NOT NULL, quantity integer NOT NULL, paid boolean NOT NULL,
        details jsonb, placed_at timestamptz NOT NULL)""")
    pipeline.sql(f"INSERT INTO {TYPED} VALUES (1, 12345678.91, 3, false, '{{\"gift\": true}}', "
                 "'2026-11-26 10:00:00.123456+00'), (2, 0.10, 1, true, NULL, '2026-11-26 11:00:00+00')")
    pipeline.sql(f"UPDATE {TYPED} SET paid = true, price = 12345678.90 WHERE id = 1")
    pipeline.sql(f"DELETE FROM {TYPED} WHERE id = 2")

    rows = wait_for(lambda: (found := pipeline.iceberg_rows(TYPED)) and len(found) >= 4 and found, 240,
                    f"four changes of {TYPED} in its Iceberg table", pipeline.connect.log, 5)
    assert rows_by_op(rows) == [("I", 1), ("I", 2), ("U", 1), ("D", 2)]

    table = pipeline.iceberg_catalog().load_table(configs.iceberg_table(
        configs.Catalog(pipeline.archive.glue_database, None), TYPED))
    types = {field.name: field.field_type for field in table.schema().fields}
    print(f"\n{TYPED}: {table.schema()}")
    assert types["id"] == LongType() and types["quantity"] == IntegerType() and types["paid"] == BooleanType()
    assert isinstance(types["price"], DecimalType) and types["price"].scale == 2
    assert types["details"] == StringType()
    cdc = {field.name: field.field_type for field in types["_cdc"].fields}
    assert cdc["ts"] == TimestamptzType() and cdc["op"] == StringType() and cdc["offset"] == LongType()
    # Partitioned by the day of the change.
    [partition] = table.spec().fields
    assert str(partition.transform) == "day" and table.schema().find_column_name(partition.source_id) == "_cdc.ts"
    assert table.properties["write.parquet.compression-codec"] == "zstd"

    by_change = {(row["_cdc"]["op"], row["id"]): row for row in rows}
    assert by_change[("I", 1)]["price"] == Decimal("12345678.91")
    assert by_change[("U", 1)]["price"] == Decimal("12345678.90") and by_change[("U", 1)]["paid"] is True
    assert by_change[("I", 1)]["details"] == '{"gift": true}'
    # A delete keeps the row as it was (the table's replica identity is FULL).
    deleted = by_change[("D", 2)]
    assert (deleted["price"], deleted["quantity"], deleted["paid"]) == (Decimal("0.10"), 1, True)
    assert deleted["_cdc"]["source"] == TYPED and deleted["_cdc"]["key"] == {"id": 2}


def test_the_demo_tables_snapshot_is_in_iceberg(pipeline):
    customers = pipeline.sql("SELECT count(*) FROM inventory.customers")[0][0]
    rows = wait_for(lambda: (found := pipeline.iceberg_rows("inventory.customers")) and len(found) >= customers
                    and found, 240, "the customers' snapshot", pipeline.connect.log, 5)
    assert Counter(row["_cdc"]["op"] for row in rows)["I"] >= customers


def inserts(pipeline: Pipeline, label: str) -> list[dict]:
    return [row for row in pipeline.iceberg_rows("inventory.customers")
            if row["_cdc"]["op"] == "I" and row["email"].startswith(f"{label}-")]


def archived(pipeline: Pipeline, label: str) -> Counter:
    return Counter(row["email"] for row in inserts(pipeline, label))


def run_with_fault(pipeline: Pipeline, label: str, fault) -> None:
    load = Load(pipeline, label, ROWS)
    load.start()
    load.wait_for(ROWS // 3)
    fault()
    load.join(timeout=600)
    assert not load.is_alive(), "the load did not finish"
    committed = set(load.committed)
    try:
        wait_for(lambda: committed <= set(archived(pipeline, label)), 300,
                 f"all {len(committed)} rows of '{label}' in Iceberg", pipeline.connect.log, 5)
        time.sleep(configs.ICEBERG_COMMIT_INTERVAL_MS / 1000 * 2)  # a late duplicate would land by now
    finally:
        rows = inserts(pipeline, label)
        seen = Counter(row["email"] for row in rows)
        lost = len(committed - set(seen))
        duplicates = sum(count - 1 for count in seen.values())
        # A row's key decides its partition, so one Kafka record is one (id, offset).
        records = Counter((row["id"], row["_cdc"]["offset"]) for row in rows)
        rewritten = sum(count - 1 for count in records.values())
        print(f"\niceberg {label}: committed {len(committed)}, archived {len(committed & set(seen))}, "
              f"lost {lost}, duplicates {duplicates} (Kafka records written twice by the sink: {rewritten}; "
              f"changes the source sent twice: {duplicates - rewritten}), load retries {load.retries}")
    assert lost == 0
    assert rewritten == 0, "Iceberg's sink commits offsets with its files: no Kafka record may land twice"


def test_connect_worker_killed_mid_stream(pipeline):
    def fault():
        pipeline.connect.kill()
        time.sleep(3)
        pipeline.connect.start()

    run_with_fault(pipeline, "connect-killed", fault)


def test_one_of_three_brokers_killed_mid_stream(pipeline):
    def fault():
        pipeline.kafka.kill(1)
        time.sleep(10)
        pipeline.kafka.restart_node(1)

    run_with_fault(pipeline, "broker-killed", fault)


def test_postgres_restarted_mid_stream(pipeline):
    run_with_fault(pipeline, "postgres-restarted", pipeline.pg.restart)
