"""`capture` on real processes: the capture step on a real PostgreSQL, through the SDK's provider
host; then the pipeline taking tables created later, a table added with 10,000 rows, and a table
removed, each change applied as `pulumi config set --path 'capture[N]' ...` and `pulumi up` apply it."""

import time
from collections import Counter
from decimal import Decimal

import grpc
import psycopg
import pytest

from components import postgres_config as pgconf
from components.capture import RESERVED
from connectors import configs
from tests.dataplane.conftest import tally
from tests.dataplane.kafka import wait_for
from tests.dataplane.pipeline import CAPTURE, SIGNAL, Pipeline, require_dataplane, stack_settings
from tests.dataplane.postgres import PostgresServer
from tests.providerhost import ProviderHost, connectors_of
from tests.stackgraph import run_stack

SETTINGS = stack_settings(brokers=1, capture=["inventory", "sales", "billing.accounts"])

pytestmark = pytest.mark.minutes(6.5)


@pytest.fixture(scope="module")
def server():
    with PostgresServer.initialized(SETTINGS) as pg:
        yield pg


def sql(server, statement, *params, user=pgconf.SUPERUSER):
    with psycopg.connect(server.dsn(user), autocommit=True) as conn:
        cursor = conn.execute(statement, params or None)
        return cursor.fetchall() if cursor.description else None


def captured(server, table):
    """(published, replica identity, readable by the CDC role) of `schema.table`."""
    schema, name = table.split(".")
    [(published,)] = sql(server, "SELECT EXISTS (SELECT FROM pg_publication_tables WHERE pubname = %s AND "
                                 "schemaname = %s AND tablename = %s)", pgconf.PUBLICATION, schema, name)
    [(identity,)] = sql(server, "SELECT relreplident FROM pg_class WHERE oid = %s::regclass", table)
    [(readable,)] = sql(server, "SELECT has_table_privilege(%s, %s::regclass, 'SELECT')", pgconf.CDC_ROLE, table)
    return published, identity, readable


def test_the_reserved_words_refused_in_capture_are_the_servers(server):
    rows = sql(server, "SELECT word FROM pg_get_keywords() WHERE catcode IN ('R', 'T')")
    assert {word for (word,) in rows} == RESERVED


def test_a_table_an_application_role_creates_later_in_a_captured_schema_is_captured_with_full_before_images(server):
    sql(server, "CREATE ROLE app LOGIN PASSWORD 'app-secret'; GRANT CREATE, USAGE ON SCHEMA sales TO app")
    with psycopg.connect(server.dsn("app", password="app-secret"), autocommit=True) as app:
        app.execute("CREATE TABLE sales.invoices (id bigint PRIMARY KEY, total numeric(10, 2))")
        app.execute("CREATE TABLE sales.copied AS SELECT 1 AS id")
    assert captured(server, "sales.invoices") == (True, "f", True)
    assert captured(server, "sales.copied") == (True, "f", True)


def test_a_named_table_created_later_is_published_and_its_neighbours_are_not(server):
    sql(server, "CREATE SCHEMA billing; CREATE TABLE billing.accounts (id int PRIMARY KEY); "
                "CREATE TABLE billing.internal (id int PRIMARY KEY)")
    assert captured(server, "billing.accounts") == (True, "f", True)
    assert captured(server, "billing.internal") == (False, "d", False)


def test_a_table_moved_into_a_captured_schema_is_captured_and_a_chosen_identity_is_kept(server):
    sql(server, "CREATE TABLE public.moved (id int PRIMARY KEY); ALTER TABLE public.moved SET SCHEMA sales")
    assert captured(server, "sales.moved") == (True, "f", True)
    sql(server, "CREATE TABLE sales.keyed (id int NOT NULL); CREATE UNIQUE INDEX keyed_id ON sales.keyed (id); "
                "ALTER TABLE sales.keyed REPLICA IDENTITY USING INDEX keyed_id")
    assert captured(server, "sales.keyed") == (True, "i", True)


def test_the_capture_step_through_the_provider_host(server):
    """Create, update and read as the engine drives them: a table added while the source streams is
    named for a snapshot; one with rows and no primary key is refused with nothing changed."""
    registered = connectors_of(run_stack("dev"))[CAPTURE]

    def declared(settings):
        return {**registered, "dsn": server.dsn(), "sql": pgconf.capture_sql(settings),
                "slot": settings.names.replication_slot}

    sql(server, "CREATE SCHEMA legacy; CREATE TABLE legacy.events (id int PRIMARY KEY); "
                "INSERT INTO legacy.events SELECT generate_series(1, 50); CREATE TABLE legacy.nokey (id int); "
                "INSERT INTO legacy.nokey VALUES (1); CREATE TABLE legacy.empty (id int)")
    with ProviderHost() as host:
        id_, state = host.up(CAPTURE, declared(SETTINGS))
        assert "sales.invoices" in state["published"] and "billing.accounts" in state["published"]
        assert state["snapshot"] == []  # no slot yet: the source's first snapshot takes every table
        sql(server, "SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", SETTINGS.names.replication_slot)
        try:
            wider = stack_settings(brokers=1, capture=["inventory", "sales", "billing.accounts", "legacy"])
            with pytest.raises(grpc.RpcError) as refused:
                host.update(CAPTURE, id_, state, declared(wider))
            assert "legacy.nokey holds rows but has no primary key" in refused.value.details()
            assert "nothing was changed" in refused.value.details()
            assert captured(server, "legacy.events")[0] is False
            sql(server, "ALTER TABLE legacy.nokey ADD PRIMARY KEY (id)")
            state = host.update(CAPTURE, id_, state, declared(wider))
            # Only the tables newly published that hold rows; the empty one streams from its first row.
            assert state["snapshot"] == ["legacy.events", "legacy.nokey"]
            assert captured(server, "legacy.events") == (True, "f", True)
            _, refreshed = host.read(CAPTURE, id_, state, declared(wider))
            assert refreshed["published"] == state["published"]
            # Removed again: out of the publication, and the CDC role may no longer read it.
            state = host.update(CAPTURE, id_, state, declared(SETTINGS))
            assert captured(server, "legacy.events") == (False, "f", False) and state["snapshot"] == []
            host.delete(CAPTURE, id_, state)
            assert captured(server, "sales.invoices")[0] is True  # the publication goes with the database
        finally:
            sql(server, "SELECT pg_drop_replication_slot(%s)", SETTINGS.names.replication_slot)


# -- the whole pipeline -------------------------------------------------------------------------

ROWS = 10_000


@pytest.fixture(scope="module")
def pipeline():
    require_dataplane()
    running = Pipeline(stack_settings(brokers=1, capture=["inventory", "sales"])).start()
    try:
        # A table outside `capture`, filled before it is added: its rows predate the stream.
        running.sql(f"CREATE SCHEMA billing; CREATE TABLE billing.accounts (id bigint PRIMARY KEY, "
                    f"owner text NOT NULL, balance numeric(12, 2) NOT NULL); INSERT INTO billing.accounts "
                    f"SELECT n, 'owner-' || n, n * 1.25 FROM generate_series(1, {ROWS}) AS n")
        running.deploy_connectors()
        yield running
    finally:
        running.stop()


def archived(pipeline, topic):
    return [record["value"] for record in pipeline.s3_records() if record["topic"] == topic and record["value"]]


def row_id(event):
    return (event["after"] or event["before"])["id"]


def exact(number) -> Decimal:
    """An archived numeric as the exact decimal it stands for: a number in typed JSON lines (avro), its
    text in Debezium's JSON (json)."""
    return Decimal(str(number))


def test_a_table_created_after_start_in_a_captured_schema_reaches_the_archive_with_no_up(pipeline):
    pipeline.sql("CREATE TABLE sales.invoices (id bigint PRIMARY KEY, customer text NOT NULL, "
                 "total numeric(10, 2) NOT NULL, issued date NOT NULL DEFAULT current_date)")
    pipeline.sql("INSERT INTO sales.invoices (id, customer, total) VALUES (1, 'ada', 10.00), (2, 'alan', 20.00)")
    pipeline.sql("UPDATE sales.invoices SET total = 12.50 WHERE id = 1")
    pipeline.sql("DELETE FROM sales.invoices WHERE id = 2")
    events = wait_for(lambda: (found := archived(pipeline, "cdc.sales.invoices")) and len(found) >= 4 and found,
                      180, "sales.invoices in the archive", pipeline.connect.log, interval=3)
    # In order per row (a row's changes share its key, and so its partition).
    by_row = {key: [event for event in events if row_id(event) == key] for key in (1, 2)}
    assert [event["op"] for event in by_row[1]] == ["c", "u"] and [event["op"] for event in by_row[2]] == ["c", "d"]
    update, delete = by_row[1][1], by_row[2][1]
    # Full before-images, as for the tables captured from the start.
    assert {**update["before"], "total": None} == {**update["after"], "total": None}
    assert exact(update["before"]["total"]) == Decimal("10.00") and exact(update["after"]["total"]) == Decimal("12.50")
    assert update["before"]["customer"] == "ada"
    assert delete["before"]["customer"] == "alan" and exact(delete["before"]["total"]) == Decimal("20.00")


BURST_TABLES, BURST_ROWS = 12, 3000


def test_tables_created_under_load_each_arrive_whole_from_their_first_burst(pipeline):
    """Each new table's first change is a burst of thousands of rows to a topic created that moment:
    the case in which a producer with several requests in flight stalls for ever on Kafka before 4.5
    (KAFKA-15591). Every row must arrive, once."""
    for n in range(BURST_TABLES):
        pipeline.sql(f"CREATE TABLE sales.burst_{n} (id bigint PRIMARY KEY, payload text NOT NULL)")
        pipeline.sql(f"INSERT INTO sales.burst_{n} SELECT i, repeat('x', 200) FROM generate_series(1, {BURST_ROWS}) AS i")
    topics = [f"cdc.sales.burst_{n}" for n in range(BURST_TABLES)]

    def ids_per_topic():
        found = {topic: Counter() for topic in topics}
        for record in pipeline.s3_records():
            if record["topic"] in found and record["value"]:
                found[record["topic"]][row_id(record["value"])] += 1
        return found

    found = wait_for(lambda: (ids := ids_per_topic()) and all(len(ids[t]) >= BURST_ROWS for t in topics) and ids,
                     300, "every burst table whole in the archive", pipeline.connect.log, interval=5)
    committed = BURST_TABLES * BURST_ROWS
    archived_rows = sum(len(ids) for ids in found.values())
    lost = committed - archived_rows
    duplicates = sum(count - 1 for ids in found.values() for count in ids.values())
    tally(f"new tables under load: committed {committed}, archived {archived_rows}, lost {lost}, duplicates {duplicates}")
    assert lost == 0 and duplicates == 0
    assert all(set(ids) == set(range(1, BURST_ROWS + 1)) for ids in found.values())


def test_a_table_added_to_capture_arrives_whole_and_nothing_else_is_snapshotted_again(pipeline):
    reads_before = pipeline.snapshot_reads()
    assert "cdc.billing.accounts" not in reads_before and reads_before["cdc.inventory.customers"] == 3
    # `pulumi config set --path 'capture[2]' billing.accounts` and `pulumi up`:
    started = time.monotonic()
    updated = pipeline.update_stack(stack_settings(brokers=1, capture=["inventory", "sales", "billing.accounts"]))
    applied = time.monotonic() - started
    assert updated == [CAPTURE, configs.SOURCE_NAME, SIGNAL]
    assert pipeline.state[CAPTURE]["snapshot"] == ["billing.accounts"]
    # Changes go on while the snapshot runs, in the new table and in the others.
    for n in range(1, 101):
        pipeline.sql("INSERT INTO sales.invoices (id, customer, total) VALUES (%s, 'during', 1.00)", 1000 + n)
        if n % 10 == 0:
            pipeline.sql("UPDATE billing.accounts SET balance = balance + 1000 WHERE id = %s", n)

    def whole():
        accounts = archived(pipeline, "cdc.billing.accounts")
        return accounts if len({row_id(event) for event in accounts}) >= ROWS else None

    accounts = wait_for(whole, 300, f"{ROWS} rows of billing.accounts in the archive", pipeline.connect.log, interval=5)
    snapshot_seconds = time.monotonic() - started
    ops = Counter(event["op"] for event in accounts)
    pipeline.sql("UPDATE billing.accounts SET owner = 'after the snapshot' WHERE id = 1")
    later = wait_for(lambda: [e for e in archived(pipeline, "cdc.billing.accounts")
                              if e["op"] == "u" and e["after"]["owner"] == "after the snapshot"] or None,
                     120, "a change after the snapshot", pipeline.connect.log, interval=3)
    # Each row's last archived state is the database's.
    final = {}
    for event in archived(pipeline, "cdc.billing.accounts"):
        final[row_id(event)] = event["after"]
    rows = {row[0]: row for row in pipeline.sql("SELECT id, owner, balance FROM billing.accounts")}
    lost = [key for key in rows if key not in final]
    wrong = [key for key, (_, owner, balance) in rows.items()
             if key in final and (final[key]["owner"], exact(final[key]["balance"])) != (owner, balance)]
    duplicates = sum(n - 1 for n in Counter(row_id(e) for e in accounts if e["op"] == "r").values())
    invoices = [e for e in archived(pipeline, "cdc.sales.invoices") if e["op"] == "c" and row_id(e) > 1000]
    tally(f"billing.accounts added: `up` applied in {applied:.1f}s, {ROWS} rows archived {snapshot_seconds:.1f}s "
          f"after the `up` started; committed {len(rows)} / archived {len(final)} / lost {len(lost)} / "
          f"wrong {len(wrong)} / duplicates {duplicates}; ops {dict(ops)}")
    assert lost == [] and wrong == [] and duplicates == 0 and len(later) == 1
    assert ops["r"] >= ROWS - 10  # read by the snapshot (a row changed meanwhile may arrive as its update)
    assert sorted(row_id(e) for e in invoices) == list(range(1001, 1101))  # the other tables went on, in order
    reads_after = pipeline.snapshot_reads()
    assert {topic: n for topic, n in reads_after.items() if topic != "cdc.billing.accounts"} == \
        {topic: n for topic, n in reads_before.items()}, "another table was snapshotted again"


def test_a_table_removed_from_capture_stops_and_keeps_its_topic_and_archive(pipeline):
    kept = archived(pipeline, "cdc.sales.invoices")
    updated = pipeline.update_stack(stack_settings(brokers=1, capture=["inventory", "billing.accounts"]))
    assert updated[:2] == [CAPTURE, configs.SOURCE_NAME]
    pipeline.sql("INSERT INTO sales.invoices (id, customer, total) VALUES (9999, 'after removal', 1.00)")
    pipeline.sql("INSERT INTO inventory.customers (email, full_name) VALUES ('after-removal@capture.test', 'Later')")
    # The later change of a captured table arrives; the earlier one of the removed table never does.
    wait_for(lambda: any((e["after"] or {}).get("email") == "after-removal@capture.test"
                         for e in archived(pipeline, "cdc.inventory.customers")),
             180, "the change after the removal", pipeline.connect.log, interval=3)
    invoices = archived(pipeline, "cdc.sales.invoices")
    assert 9999 not in {row_id(event) for event in invoices}
    assert invoices == kept  # what it archived before stays
    coverage = pipeline.archive_coverage()
    print("\n" + "\n".join(partition.describe() for partition in coverage))
    assert coverage and all(partition.ok for partition in coverage)
    assert "cdc.sales.invoices" in {partition.partition.topic for partition in coverage}
