"""archiveFormat iceberg on real processes: Debezium → Kafka → Apache Iceberg's sink → moto's S3 and
Glue, with IAM enforced and the sink on its own least-privileged key; read back with pyiceberg.

The pipeline runs with exactlyOnceSource, the configuration an Iceberg archive is meant for: the
source writes its changes and its position in one Kafka transaction, and Iceberg's sink commits its
offsets with its data files. The fault tests commit rows while a part of the pipeline fails and
comes back, then print committed / archived / lost / duplicates, the duplicates split into Kafka
records the sink wrote twice and changes the source sent to Kafka twice. The goal is exactly once:
no row lost, none repeated.
"""

import json
import time
from collections import Counter
from decimal import Decimal

import pytest
from datetime import date, datetime, time as clock, timezone

from pyiceberg.types import (BinaryType, BooleanType, DateType, DecimalType, DoubleType, FloatType, IntegerType,
                             LongType, StringType, TimestampType, TimestamptzType, TimeType)

from components import postgres_config as pgconf
from connectors import configs
from operations import smoke
from connectors.provider import root_cause
from harness.tally import tally
from tests.dataplane.every_type import (EVERY_TYPE_TYPES, NOT_IN_ICEBERG, TYPE_CASES, every_type_statements,
                                        in_iceberg, same)
from harness.dataplane.kafka import wait_for
from harness.dataplane.pipeline import Pipeline, deployed, load_through, stack_settings

TYPED = "inventory.typed_orders"
NOT_NULL = "NOT NULL in the source table: null only in a TRUNCATE's row (op t)"  # ChangelogRow.NOT_NULL
ROWS = 3000

pytestmark = pytest.mark.minutes(11)


EMPTIED = "inventory.emptied"
EVERY_TYPE = "sales.every_type"


@pytest.fixture(scope="module")
def pipeline():
    # JSON with a schema in every record (whose size the limit test counts); Iceberg with avro is in test_avro.
    for running in deployed(stack_settings(brokers=3, archiveFormat="iceberg", exactlyOnceSource="true",
                                           serialization="json", capture=["inventory", "sales"])):
        # The truncate test's changes, made at once: committed to Iceberg while the tests before it run.
        running.sql(f"CREATE TABLE {EMPTIED} (id int PRIMARY KEY, label text NOT NULL)")
        running.sql(f"INSERT INTO {EMPTIED} SELECT n, 'before ' || n FROM generate_series(1, 10) AS n")
        running.sql(f"TRUNCATE {EMPTIED}")
        running.sql(f"INSERT INTO {EMPTIED} VALUES (11, 'after'), (12, 'after')")
        for statement in [EVERY_TYPE_TYPES, *every_type_statements(EVERY_TYPE, NOT_IN_ICEBERG)]:
            running.sql(statement)
        yield running


def rows_by_op(rows: list[dict]) -> list[tuple[str, int]]:
    return [(row["_cdc"]["op"], row["id"]) for row in sorted(rows, key=lambda row: row["_cdc"]["lsn"])]


def test_a_table_created_later_arrives_as_a_typed_changelog_table(pipeline):
    pipeline.sql(f"""CREATE TABLE {TYPED} (
        id bigint PRIMARY KEY, price numeric(10,2) NOT NULL, quantity integer NOT NULL, paid boolean NOT NULL,
        details jsonb, placed_at timestamptz NOT NULL, due_at timestamp, ships_on date, cutoff time,
        ratio numeric, rank smallint, weight real, score double precision, token uuid, blob bytea, note text)""")
    pipeline.sql(f"INSERT INTO {TYPED} VALUES (1, 12345678.91, 3, false, '{{\"gift\": true}}', "
                 "'2026-11-26 10:00:00.123456+02', '2026-12-01 09:30:00.654321', '2026-12-02', '17:45:00.5', "
                 "3.14159265358979323846, 7, 1.5, 2.25, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff10', 'ü'), "
                 "(2, 0.10, 1, true, NULL, '2026-11-26 11:00:00+00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
                 "NULL, NULL, NULL)")
    pipeline.sql(f"UPDATE {TYPED} SET paid = true, price = 12345678.90 WHERE id = 1")
    pipeline.sql(f"DELETE FROM {TYPED} WHERE id = 2")
    [(lsn_after,)] = pipeline.sql("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")

    rows = wait_for(lambda: (found := pipeline.iceberg_rows(TYPED)) and len(found) >= 4 and found, 240,
                    f"four changes of {TYPED} in its Iceberg table", pipeline.connect.log, 5)
    assert rows_by_op(rows) == [("c", 1), ("c", 2), ("u", 1), ("d", 2)]

    table = pipeline.iceberg_catalog().load_table(configs.iceberg_table(pipeline.archive.glue_database, TYPED))
    types = {field.name: field for field in table.schema().fields}
    print(f"\n{TYPED}: {table.schema()}")
    # Every column may be null (a TRUNCATE's row has no values); NOT NULL is in its doc.
    assert types["id"].field_type == LongType() and not types["id"].required and types["id"].doc == NOT_NULL
    assert types["quantity"].field_type == IntegerType() and types["paid"].field_type == BooleanType()
    assert types["price"].field_type == DecimalType(10, 2), "numeric(10,2) keeps its precision and scale"
    assert types["details"].field_type == StringType() and not types["details"].required
    assert types["placed_at"].field_type == TimestamptzType()
    assert types["due_at"].field_type == TimestampType(), "a timestamp without time zone stays one"
    assert types["ships_on"].field_type == DateType() and types["cutoff"].field_type == TimeType()
    assert types["ratio"].field_type == StringType(), "a numeric without scale: its exact text"
    assert types["rank"].field_type == IntegerType() and types["weight"].field_type == FloatType()
    assert types["score"].field_type == DoubleType() and types["token"].field_type == StringType()
    assert types["blob"].field_type == BinaryType() and types["note"].field_type == StringType()
    cdc = {field.name: field.field_type for field in types["_cdc"].field_type.fields}
    for in_headers in (cdc.pop("nonfinite"), cdc.pop("arrays")):
        assert (in_headers.key_type, in_headers.value_type) == (StringType(), StringType())
    assert cdc == {"op": StringType(), "committed_at": TimestamptzType(), "appended_at": TimestamptzType(),
                   "lsn": LongType(), "topic": StringType(),
                   "partition": IntegerType(), "offset": LongType(), "table": StringType(), "target": StringType()}
    # Partitioned by the day the change was committed.
    [partition] = table.spec().fields
    assert str(partition.transform) == "day"
    assert table.schema().find_column_name(partition.source_id) == "_cdc.committed_at"
    assert table.properties["write.parquet.compression-codec"] == "zstd"

    by_change = {(row["_cdc"]["op"], row["id"]): row for row in rows}
    first = by_change[("c", 1)]
    assert first["price"] == Decimal("12345678.91") and first["details"] == '{"gift": true}'
    assert first["placed_at"] == datetime(2026, 11, 26, 8, 0, 0, 123456, tzinfo=timezone.utc)
    assert first["due_at"] == datetime(2026, 12, 1, 9, 30, 0, 654321)
    assert first["ships_on"] == date(2026, 12, 2) and first["cutoff"] == clock(17, 45, 0, 500000)
    assert first["ratio"] == "3.14159265358979323846"
    assert (first["rank"], first["weight"], first["score"]) == (7, 1.5, 2.25)
    assert first["token"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" and first["blob"] == b"\x00\xff\x10"
    assert first["note"] == "ü"
    assert by_change[("u", 1)]["price"] == Decimal("12345678.90") and by_change[("u", 1)]["paid"] is True
    # A delete keeps the row as it was (the table's replica identity is FULL).
    deleted = by_change[("d", 2)]
    assert (deleted["price"], deleted["quantity"], deleted["paid"]) == (Decimal("0.10"), 1, True)
    change = deleted["_cdc"]
    assert change["table"] == TYPED and change["topic"] == configs.change_topic(TYPED)
    assert 0 < change["lsn"] <= lsn_after and change["partition"] in range(configs.TOPIC_PARTITIONS)
    assert abs(change["committed_at"] - datetime.now(timezone.utc)).total_seconds() < 600
    assert change["committed_at"] <= change["appended_at"], "Kafka appends a change after its commit"

    # A column added later becomes a typed column of the same table.
    pipeline.sql(f"ALTER TABLE {TYPED} ADD COLUMN refunded_at timestamp")
    pipeline.sql(f"INSERT INTO {TYPED} (id, price, quantity, paid, placed_at, refunded_at) "
                 "VALUES (3, 1.00, 1, true, now(), '2026-12-24 12:00:00')")
    # NaN and ±Infinity (checked below), committed with it.
    pipeline.sql(f"INSERT INTO {TYPED} (id, price, quantity, paid, placed_at, ratio) "
                 "VALUES (4, 'NaN', 1, true, now(), '-Infinity')")
    wait_for(lambda: {3, 4} <= {row["id"] for row in pipeline.iceberg_rows(TYPED)}, 240,
             "the rows with the new column and with NaN", pipeline.connect.log, 5)
    table.refresh()
    assert table.schema().find_field("refunded_at").field_type == TimestampType()
    [added] = [row for row in pipeline.iceberg_rows(TYPED) if row["id"] == 3]
    assert added["refunded_at"] == datetime(2026, 12, 24, 12, 0)

    # NaN and ±Infinity: in a text column (numeric without scale) as PostgreSQL writes them; a decimal
    # column holds none of them, so the row says which in _cdc.nonfinite, even for a NOT NULL column.
    [special] = [row for row in pipeline.iceberg_rows(TYPED) if row["id"] == 4]
    assert (special["price"], special["ratio"], special["_cdc"]["nonfinite"]) == (None, "-Infinity", [("price", "NaN")])


def test_a_truncate_is_a_row_of_the_changelog_and_a_replay_gives_what_postgres_holds(pipeline):
    table = EMPTIED  # filled, emptied and filled again by the fixture
    rows = wait_for(lambda: (found := pipeline.iceberg_rows(table)) and len(found) >= 13 and found, 240,
                    f"13 changes of {table} in its Iceberg table", pipeline.connect.log, 5)
    [truncate] = [row for row in rows if row["_cdc"]["op"] == "t"]
    assert truncate["id"] is None and truncate["label"] is None and truncate["_cdc"]["table"] == table
    replay: dict[int, str] = {}
    for row in sorted(rows, key=lambda row: row["_cdc"]["lsn"]):
        if row["_cdc"]["op"] == "t":
            replay.clear()
        else:
            replay[row["id"]] = row["label"]
    live = dict(pipeline.sql(f"SELECT id, label FROM {table}"))
    lost, wrong = len(live.keys() - replay.keys()), len(set(replay.items()) - set(live.items()))
    tally(f"iceberg truncate: committed {len(live)} rows after 10 and a TRUNCATE, replayed {len(replay)}, "
          f"lost {lost}, wrong {wrong}, duplicates {len(rows) - 13}")
    assert replay == live == {11: "after", 12: "after"} and len(rows) == 13


def test_the_demo_tables_snapshot_is_in_iceberg(pipeline):
    customers = pipeline.sql("SELECT count(*) FROM inventory.customers")[0][0]
    rows = wait_for(lambda: (found := pipeline.iceberg_rows("inventory.customers")) and len(found) >= customers
                    and found, 240, "the customers' snapshot", pipeline.connect.log, 5)
    assert Counter(row["_cdc"]["op"] for row in rows)["r"] >= customers


def test_make_verify_and_make_status_follow_a_marker_into_its_iceberg_table(pipeline):
    report = smoke.check(pipeline.endpoints(), s3_timeout=180)
    print(f"\nmake verify:\n{report}")
    assert report.ok
    marker_table = configs.iceberg_table(pipeline.archive.glue_database, pgconf.MARKER_TABLE)
    assert any(line.startswith(f"✔ Iceberg: in {marker_table}") for line in report.lines)
    assert any("connector iceberg-sink RUNNING" in line for line in report.lines)
    status = smoke.status(pipeline.endpoints())
    assert status.ok and any("replication slot" in line for line in status.lines)


def inserts(pipeline: Pipeline, label: str) -> list[dict]:
    return [row for row in pipeline.iceberg_rows("inventory.customers")
            if row["_cdc"]["op"] in ("c", "r") and row["email"].startswith(f"{label}-")]


def archived(pipeline: Pipeline, label: str) -> Counter:
    return Counter(row["email"] for row in inserts(pipeline, label))


def run_with_fault(pipeline: Pipeline, label: str, fault) -> None:
    load = load_through(pipeline, label, fault, ROWS)
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
        records = Counter((row["_cdc"]["topic"], row["_cdc"]["partition"], row["_cdc"]["offset"]) for row in rows)
        rewritten = sum(count - 1 for count in records.values())
        tally(f"iceberg {label}: committed {len(committed)}, archived {len(committed & set(seen))}, "
              f"lost {lost}, duplicates {duplicates} (Kafka records written twice by the sink: {rewritten}; "
              f"changes the source sent twice: {duplicates - rewritten}), load retries {load.retries}")
    assert lost == 0
    assert rewritten == 0, "Iceberg's sink commits offsets with its files: no Kafka record may land twice"
    assert duplicates == 0, "the source's changes and offsets go in one transaction: none may come twice"


def test_connect_worker_killed_mid_stream(pipeline):
    run_with_fault(pipeline, "connect-killed", pipeline.kill_and_restart_connect)


def test_one_of_three_brokers_killed_mid_stream(pipeline):
    run_with_fault(pipeline, "broker-killed", pipeline.kill_and_restart_broker)


def test_postgres_restarted_mid_stream(pipeline):
    run_with_fault(pipeline, "postgres-restarted", pipeline.pg.restart)


def test_a_row_whose_schema_takes_it_over_max_record_bytes_stops_the_source_naming_it(pipeline):
    """With schemas embedded, a record is its row plus its schema: a row just under maxRecordBytes as
    bare JSON goes over it with its schema, and must stop the source at the size check (naming the
    table, the key and the setting), not at the producer's RecordTooLargeException. Runs last: the
    source stays stopped at that row."""
    limit = pipeline.settings.config.max_record_bytes.bytes
    size = limit - configs.RECORD_FRAMING - 1200  # bare JSON under the check; with its schema (~3 KB) over
    [(row,)] = pipeline.sql("INSERT INTO inventory.customers (email, full_name) VALUES ('schema@size.test', "
                            "repeat('s', %s)) RETURNING id", size)
    task = wait_for(pipeline.failed_source_task, 120, "the source task to stop at the row",
                    pipeline.connect.log)
    cause = root_cause(task["trace"])
    print(f"\nsource FAILED: {cause[:300]}")
    assert "cdc.inventory.customers" in cause and f"id={row}" in cause and "maxRecordBytes" in cause


def test_one_row_of_every_type_in_its_iceberg_table(pipeline):
    """The row of every type (tests/dataplane/every_type.py) in its Iceberg table: each value typed as
    Iceberg can hold it, and what no column of its type holds named in _cdc (a decimal's NaN, an
    array of more dimensions than declared)."""
    rows = wait_for(lambda: iceberg_values(pipeline, EVERY_TYPE) or None, 240, "the row of every type in Iceberg",
                    pipeline.connect.log, 5)
    row = rows[0]
    cases = [(n, case) for n, case in enumerate(TYPE_CASES) if n not in NOT_IN_ICEBERG]
    lost = [f"c{n}" for n, _ in cases if f"c{n}" not in row]
    wrong = {f"c{n} {kind} {value}": f"holds {row[f'c{n}']!r}, not {in_iceberg(kind, value, expected)!r}"
             for n, (kind, value, expected) in cases
             if f"c{n}" in row and not same(row[f"c{n}"], in_iceberg(kind, value, expected))}
    print("\n".join(f"{case}: {found}" for case, found in wrong.items()))
    tally(f"every type in Iceberg: committed {len(cases)} values, archived {len(cases) - len(lost)}, lost {len(lost)}, "
          f"wrong {len(wrong)}, duplicates {len(rows) - 1}")
    assert (lost, wrong, len(rows)) == ([], {}, 1)
    [decimal_nan] = [n for n, (kind, value, _) in cases if (kind, value) == ("numeric(10,2)", "'NaN'")]
    assert row["_cdc"]["nonfinite"] == [(f"c{decimal_nan}", "NaN")]
    unheld = {f"c{n}": expected for n, (kind, value, expected) in cases
              if in_iceberg(kind, value, expected) is None and isinstance(expected, list)}
    assert {column: json.loads(array) for column, array in row["_cdc"]["arrays"]} == unheld


def iceberg_values(pipeline, table: str) -> list[dict]:
    """The rows of a changelog table, each column as Python reads it, or where Python's types cannot
    hold the value (a year before 1 or after 9999) as the number Iceberg stores (days, microseconds)."""
    import pyarrow as pa
    from pyiceberg.exceptions import NoSuchTableError

    try:
        data = pipeline.iceberg_catalog().load_table(configs.iceberg_table(pipeline.archive.glue_database, table))
    except NoSuchTableError:
        return []
    arrow = data.scan().to_arrow()
    columns = {}
    for name in arrow.column_names:
        column = arrow.column(name)
        try:
            columns[name] = column.to_pylist()
        except (OverflowError, ValueError):
            stored = pa.int32() if pa.types.is_date(column.type) else pa.int64()
            columns[name] = [("stored", number) for number in column.cast(stored).to_pylist()]
    return [{name: values[i] for name, values in columns.items()} for i in range(arrow.num_rows)]
