"""`capture` on real processes: the capture step on a real PostgreSQL, through the SDK's provider
host; then the pipeline taking tables created later, a table added with 10,000 rows, and a table
removed, each change applied as `pulumi config set --path 'capture[N]' ...` and `pulumi up` apply it."""

import json
import time
from collections import Counter
from decimal import Decimal

import grpc
import psycopg
import pytest

from components import postgres_config as pgconf
from components.capture import RESERVED
from connectors import configs
from operations import smoke
from harness.tally import tally
from tests.dataplane.every_type import EVERY_TYPE_TYPES, TYPE_CASES, every_type_statements, same
from harness.dataplane.kafka import wait_for
from harness.dataplane.pipeline import CAPTURE, SIGNAL, Pipeline, require_dataplane, stack_settings
from harness.dataplane.postgres import PostgresServer
from harness.providerhost import ProviderHost, connectors_of
from harness.stackgraph import run_stack

SETTINGS = stack_settings(brokers=1, capture=["inventory", "sales", "billing.accounts"])

pytestmark = pytest.mark.minutes(8)


@pytest.fixture(scope="module")
def server():
    with PostgresServer.initialized(SETTINGS) as pg:
        yield pg


def sql(server, statement, *params, user=pgconf.SUPERUSER):
    with psycopg.connect(server.dsn(user), autocommit=True) as conn:
        cursor = conn.execute(statement, params or None)
        return cursor.fetchall() if cursor.description else None


def captured(server, table):
    """(published, replica identity, readable by the CDC role) of `schema.table`, as SQL names it."""
    [(published,)] = sql(server, "SELECT EXISTS (SELECT FROM pg_publication_rel r JOIN pg_publication p ON "
                                 "p.oid = r.prpubid WHERE p.pubname = %s AND r.prrelid = %s::regclass)",
                         pgconf.PUBLICATION, table)
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


def uncaptured(server):
    """{relation: why} of what `capture` names and the database leaves out, as the capture step reports it."""
    return {relation: reason for relation, reason in sql(server, "SELECT relation, reason FROM cdc.not_captured()")}


def test_no_statement_the_owner_may_run_in_a_captured_schema_is_refused_because_of_capture(server):
    """What PostgreSQL accepts without the pipeline, it accepts with it: a table that cannot be published
    (unlogged) or would refuse its owner's UPDATE and DELETE once published (REPLICA IDENTITY NOTHING) is
    left out and reported, whoever creates or alters it."""
    sql(server, "GRANT CREATE, USAGE ON SCHEMA sales TO app")
    with psycopg.connect(server.dsn("app", password="app-secret"), autocommit=True) as app:
        app.execute("CREATE UNLOGGED TABLE sales.scratch (id int PRIMARY KEY, note text)")
        app.execute("INSERT INTO sales.scratch VALUES (1, 'a'); UPDATE sales.scratch SET note = 'b'")
        app.execute("CREATE TABLE sales.identityless (id int PRIMARY KEY, note text)")
        app.execute("ALTER TABLE sales.identityless REPLICA IDENTITY NOTHING")
        app.execute("INSERT INTO sales.identityless VALUES (1, 'a'); UPDATE sales.identityless SET note = 'b'; "
                    "DELETE FROM sales.identityless")
        app.execute("CREATE TEMPORARY TABLE session_only (id int)")
        app.execute("CREATE MATERIALIZED VIEW sales.totals AS SELECT count(*) AS n FROM sales.scratch")
    sql(server, "CREATE FOREIGN DATA WRAPPER elsewhere; CREATE SERVER far FOREIGN DATA WRAPPER elsewhere; "
                "CREATE FOREIGN TABLE sales.remote (id int) SERVER far")
    # A captured table whose owner later sets NOTHING leaves the publication in the same statement.
    sql(server, "CREATE TABLE sales.later (id int PRIMARY KEY, note text)")
    assert captured(server, "sales.later") == (True, "f", True)
    sql(server, "ALTER TABLE sales.later REPLICA IDENTITY NOTHING; UPDATE sales.later SET note = 'x'")
    assert captured(server, "sales.later") == (False, "n", False)
    reasons = uncaptured(server)
    assert reasons["sales.scratch"].startswith("unlogged") and "SET LOGGED" in reasons["sales.scratch"]
    assert reasons["sales.identityless"].startswith("REPLICA IDENTITY NOTHING")
    assert "REPLICA IDENTITY DEFAULT" in reasons["sales.later"]
    assert reasons["sales.totals"].startswith("a materialized view") and reasons["sales.remote"].startswith("a foreign")
    assert not any("session_only" in relation for relation in reasons)
    for table in ("sales.scratch", "sales.identityless"):
        assert captured(server, table)[0] is False and captured(server, table)[2] is False
    # Set back, it is captured again, with full before-images.
    sql(server, "ALTER TABLE sales.later REPLICA IDENTITY DEFAULT")
    assert captured(server, "sales.later") == (True, "f", True) and "sales.later" not in uncaptured(server)
    sql(server, "ALTER TABLE sales.scratch SET LOGGED")
    assert captured(server, "sales.scratch") == (True, "f", True)


def test_a_table_with_a_column_declared_of_more_than_one_dimension_is_left_out(server):
    """Debezium reads arrays of one dimension: a column declared int[][] would arrive as nulls."""
    sql(server, "CREATE TABLE sales.grid (id int PRIMARY KEY, cells int[])")
    assert captured(server, "sales.grid") == (True, "f", True)
    sql(server, "ALTER TABLE sales.grid ADD COLUMN layers text[][][]")
    assert captured(server, "sales.grid")[0] is False
    assert "column layers is declared with 3 dimensions (text[][][])" in uncaptured(server)["sales.grid"]
    sql(server, "ALTER TABLE sales.grid DROP COLUMN layers")
    assert captured(server, "sales.grid") == (True, "f", True)


def test_a_table_with_an_array_debezium_does_not_read_is_left_out(server):
    """Debezium gives an array of money, names, bit strings, xml or points no schema: the column would
    be missing from every change. An array of intervals our converter reads."""
    sql(server, "CREATE TABLE sales.ledger (id int PRIMARY KEY, amounts money[], spans interval[])")
    assert captured(server, "sales.ledger")[0] is False
    assert "column amounts is an array of money, which Debezium does not read" in uncaptured(server)["sales.ledger"]
    sql(server, "ALTER TABLE sales.ledger DROP COLUMN amounts")
    assert captured(server, "sales.ledger") == (True, "f", True)


def test_a_table_whose_unchanged_long_values_would_arrive_as_placeholders_is_left_out(server):
    """REPLICA IDENTITY USING INDEX, kept as the owner set it: an update that leaves a TOASTed value as it
    was carries no value for it. With only short columns the table is captured."""
    sql(server, "CREATE TABLE sales.documents (id int NOT NULL, body text); "
                "CREATE UNIQUE INDEX documents_id ON sales.documents (id); "
                "ALTER TABLE sales.documents REPLICA IDENTITY USING INDEX documents_id")
    assert captured(server, "sales.documents")[0] is False
    assert "REPLICA IDENTITY FULL" in uncaptured(server)["sales.documents"]
    sql(server, "ALTER TABLE sales.documents REPLICA IDENTITY FULL")
    assert captured(server, "sales.documents") == (True, "f", True)
    # Short columns only: captured with the owner's index; that index dropped, it leaves at once.
    sql(server, "CREATE TABLE sales.counters (id int NOT NULL, hits int); CREATE UNIQUE INDEX counters_id "
                "ON sales.counters (id); ALTER TABLE sales.counters REPLICA IDENTITY USING INDEX counters_id; "
                "INSERT INTO sales.counters VALUES (1, 0)")
    assert captured(server, "sales.counters") == (True, "i", True)
    sql(server, "DROP INDEX sales.counters_id; UPDATE sales.counters SET hits = 1; DELETE FROM sales.counters")
    assert captured(server, "sales.counters")[0] is False
    assert "that index was dropped" in uncaptured(server)["sales.counters"]
    # The one statement PostgreSQL refuses on a published table: SET UNLOGGED. Out of the publication
    # first (as the README says), it succeeds and the table stays out.
    sql(server, "CREATE TABLE sales.to_unlog (id int PRIMARY KEY)")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="part of a publication"):
        sql(server, "ALTER TABLE sales.to_unlog SET UNLOGGED")
    sql(server, f"ALTER PUBLICATION {pgconf.PUBLICATION} DROP TABLE sales.to_unlog; ALTER TABLE sales.to_unlog SET UNLOGGED")
    assert captured(server, "sales.to_unlog")[0] is False and uncaptured(server)["sales.to_unlog"].startswith("unlogged")


def test_names_that_would_merge_or_split_are_left_out_with_their_reasons(server):
    for statement in ('CREATE TABLE sales."Order Items" (id int PRIMARY KEY)',
                      'CREATE TABLE sales."Order_Items" (id int PRIMARY KEY)',
                      'CREATE TABLE sales.order_items (id int PRIMARY KEY)',
                      'CREATE TABLE sales."order.items" (id int PRIMARY KEY)',
                      'CREATE TABLE sales.prices ("Unit Price" numeric, "Unit_Price" numeric)',
                      'CREATE TABLE sales.factors ("2fa" boolean, "_2fa" boolean)'):
        sql(server, statement)
    reasons = uncaptured(server)
    assert "letters, digits and _" in reasons['sales."Order Items"']
    assert "letters, digits and _" in reasons['sales."order.items"']
    assert "sales_order_items is already sales.\"Order_Items\"'s" in reasons["sales.order_items"]
    assert 'columns "Unit Price", "Unit_Price" would all be named Unit_Price' in reasons["sales.prices"]
    assert 'columns "2fa", _2fa would all be named _2fa' in reasons["sales.factors"]  # as Debezium names them
    assert captured(server, 'sales."Order_Items"')[0] is True


def test_a_partitioned_table_is_captured_partition_by_partition_and_one_outside_capture_is_named(server):
    sql(server, "CREATE TABLE sales.readings (id int, taken date, PRIMARY KEY (id, taken)) PARTITION BY RANGE (taken); "
                "CREATE TABLE sales.readings_2025 PARTITION OF sales.readings FOR VALUES FROM ('2025-01-01') TO ('2026-01-01'); "
                "CREATE SCHEMA archive2024; CREATE TABLE archive2024.readings_2024 PARTITION OF sales.readings "
                "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01'); "
                "INSERT INTO sales.readings VALUES (1, '2024-03-01'), (2, '2025-03-01'); UPDATE sales.readings SET id = id + 10")
    assert captured(server, "sales.readings_2025") == (True, "f", True)
    assert captured(server, "archive2024.readings_2024")[0] is False
    assert "archive2024.readings_2024 is in a schema `capture` does not name" in uncaptured(server)["sales.readings"]


def test_the_capture_step_through_the_provider_host(server):
    """Create, update and read as the engine drives them: a table added while the source streams is
    named for a snapshot; one with rows and no primary key is refused with nothing changed, and so is
    one holding a day the JDBC driver's calendar lacks, which the incremental snapshot would move."""
    registered = connectors_of(run_stack("dev"))[CAPTURE]

    def declared(settings):
        return {**registered, "dsn": server.dsn(), "sql": pgconf.capture_sql(settings),
                "slot": settings.names.replication_slot}

    sql(server, "CREATE SCHEMA legacy; CREATE TABLE legacy.events (id int PRIMARY KEY); "
                "INSERT INTO legacy.events SELECT generate_series(1, 50); CREATE TABLE legacy.nokey (id int); "
                "INSERT INTO legacy.nokey VALUES (1); CREATE TABLE legacy.empty (id int); "
                "CREATE TABLE legacy.reform (id int PRIMARY KEY, proposed date, adopted date, noted date); "
                "INSERT INTO legacy.reform VALUES (1, '1582-02-24', '1582-10-15', '1582-10-04'), "
                "(2, '1582-10-05', '1582-10-15', NULL), (3, NULL, NULL, '1582-10-14')")
    with ProviderHost() as host:
        id_, state = host.up(CAPTURE, declared(SETTINGS))
        assert "sales.invoices" in state["published"] and "billing.accounts" in state["published"]
        assert state["snapshot"] == []  # no slot yet: the source's first snapshot takes every table
        # What the database leaves out, for the source's include list and for people.
        assert {"sales.Order Items", "sales.identityless", "sales.readings"} <= set(state["excluded"])
        assert any(line.startswith("sales.identityless: REPLICA IDENTITY NOTHING") for line in state["uncaptured"])
        sql(server, "SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", SETTINGS.names.replication_slot)
        try:
            wider = stack_settings(brokers=1, capture=["inventory", "sales", "billing.accounts", "legacy"])
            with pytest.raises(grpc.RpcError) as refused:
                host.update(CAPTURE, id_, state, declared(wider))
            assert "legacy.nokey holds rows but has no primary key" in refused.value.details()
            assert "nothing was changed" in refused.value.details()
            assert captured(server, "legacy.events")[0] is False
            sql(server, "ALTER TABLE legacy.nokey ADD PRIMARY KEY (id)")
            with pytest.raises(grpc.RpcError) as refused:
                host.update(CAPTURE, id_, state, declared(wider))
            assert "legacy.reform holds dates from 1582-10-05 to 1582-10-14 in proposed, noted." \
                in refused.value.details()
            assert "nothing was changed" in refused.value.details()
            assert captured(server, "legacy.events")[0] is False
            sql(server, "UPDATE legacy.reform SET proposed = NULL, noted = NULL WHERE id > 1")
            state = host.update(CAPTURE, id_, state, declared(wider))
            # Only the tables newly published that hold rows; the empty one streams from its first row.
            assert state["snapshot"] == ["legacy.events", "legacy.nokey", "legacy.reform"]
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
        # Tables the database cannot capture, with rows, beside one it can: the source's first snapshot
        # must take the one and leave the others, rather than fail for every table.
        running.sql(SHAPES_BEFORE_START)
        for statement in [EVERY_TYPE_TYPES, *every_type_statements("sales.every_type_snapshot")]:
            running.sql(statement)
        running.deploy_connectors()
        for statement in [*SHAPE_STATEMENTS, *every_type_statements("sales.every_type")]:
            running.sql(statement)
        yield running
    finally:
        running.stop()


SHAPES_BEFORE_START = """
CREATE SCHEMA sales;
CREATE UNLOGGED TABLE sales.scratch (id int PRIMARY KEY); INSERT INTO sales.scratch VALUES (1), (2);
CREATE TABLE sales."Order Items" (id int PRIMARY KEY, item text); INSERT INTO sales."Order Items" VALUES (1, 'spaced');
CREATE TABLE sales."Order_Items" (id int PRIMARY KEY, item text); INSERT INTO sales."Order_Items" VALUES (1, 'underscored');
CREATE TABLE sales.identityless (id int PRIMARY KEY, note text); INSERT INTO sales.identityless VALUES (1, 'a');
ALTER TABLE sales.identityless REPLICA IDENTITY NOTHING;
CREATE TABLE sales.truncated (id int PRIMARY KEY); INSERT INTO sales.truncated SELECT generate_series(1, 10);
CREATE TABLE sales.matrices (id int PRIMARY KEY, m int[][]); INSERT INTO sales.matrices VALUES (1, '{{1,2},{3,4}}');
"""

# The applications' own statements on those tables, and new shapes: run as soon as the source streams
# (each would raise if PostgreSQL refused it), so that the archive has them by the time their test reads it.
SHAPE_STATEMENTS = [
    "TRUNCATE sales.truncated", "INSERT INTO sales.truncated VALUES (11), (12)",
    "INSERT INTO sales.scratch VALUES (3)", "UPDATE sales.identityless SET note = 'b'",
    "DELETE FROM sales.identityless",
    'INSERT INTO sales."Order Items" VALUES (2, \'spaced\')',
    'INSERT INTO sales."Order_Items" VALUES (2, \'underscored\')',
    'CREATE TABLE sales.lines (id int PRIMARY KEY, "Unit Price" numeric(10, 2), "2fa" boolean)',
    "INSERT INTO sales.lines VALUES (1, 2.50, true), (2, 3.75, false)",
    "CREATE TABLE sales.readings (id int, taken date, PRIMARY KEY (id, taken)) PARTITION BY RANGE (taken)",
    "CREATE TABLE sales.readings_2025 PARTITION OF sales.readings FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')",
    "CREATE SCHEMA elsewhere; CREATE TABLE elsewhere.readings_2024 PARTITION OF sales.readings "
    "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
    "INSERT INTO sales.readings VALUES (1, '2024-03-01'), (2, '2025-03-01'), (3, '2025-04-01')",
]


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


def by_lsn(events):
    """A table's archived events in the order the database committed them: the snapshot's reads
    first, then each change by its position in the WAL (across the topic's partitions: a TRUNCATE
    has no key, so it may sit in another partition than the rows it empties)."""
    return sorted(events, key=lambda event: (event["op"] != "r", event["source"]["lsn"] or 0))


def replayed(events):
    """The rows a reader rebuilds from a table's archive: what PostgreSQL must hold."""
    rows = {}
    for event in by_lsn(events):
        if event["op"] == "t":
            rows.clear()
        elif event["op"] == "d":
            rows.pop(event["before"]["id"], None)
        else:
            rows[event["after"]["id"]] = event["after"]
    return rows


def test_tables_of_every_shape_leave_the_database_free_and_the_archive_exact(pipeline):
    """Each shape from the first snapshot on: what is captured arrives exactly (a TRUNCATE as an event, a
    column name Avro does not allow adjusted), what is not is named by `make status` and never merged into
    another table's topic; the application's own statements (SHAPE_STATEMENTS, run by the fixture) all
    succeeded."""
    relations = {"cdc.sales.truncated": "sales.truncated", "cdc.sales.Order_Items": 'sales."Order_Items"',
                 "cdc.sales.lines": "sales.lines", "cdc.sales.readings_2025": "sales.readings_2025"}
    live = {topic: {row[0]: row for row in pipeline.sql(f"SELECT * FROM {relation}")}
            for topic, relation in relations.items()}
    wait_for(lambda: all({row_id(e) for e in archived(pipeline, topic) if e["op"] != "t"} >= rows.keys()
                         for topic, rows in live.items()),
             180, "every captured shape in the archive", pipeline.connect.log, interval=3)
    committed = archived_rows = lost = wrong = duplicates = 0
    for topic, rows in live.items():
        events = archived(pipeline, topic)
        rebuilt = replayed(events)
        committed += len(rows)
        archived_rows += len(rebuilt)
        lost += len(rows.keys() - rebuilt.keys())
        wrong += len(rebuilt.keys() - rows.keys())
        duplicates += sum(n - 1 for n in Counter((e["op"], row_id(e)) for e in events if e["op"] != "t").values())
    lines = archived(pipeline, "cdc.sales.lines")
    wrong += sum(1 for e in lines if (e["after"]["Unit_Price"], e["after"]["_2fa"]) not in
                 ((Decimal("2.50"), True), (Decimal("3.75"), False)))
    truncates = [e for e in archived(pipeline, "cdc.sales.truncated") if e["op"] == "t"]
    merged = [e for e in archived(pipeline, "cdc.sales.Order_Items") if e["after"]["item"] != "underscored"]
    tally(f"table shapes: committed {committed}, archived {archived_rows}, lost {lost}, wrong {wrong + len(merged)}, "
          f"duplicates {duplicates}; truncates {len(truncates)}")
    assert (lost, wrong, merged, duplicates, len(truncates)) == (0, 0, [], 0, 1)
    assert replayed(archived(pipeline, "cdc.sales.truncated")).keys() == {11, 12}
    # What is not captured has no topic, and `make status` names it and why.
    topics = {record["topic"] for record in pipeline.s3_records()}
    assert not {"cdc.sales.scratch", "cdc.sales.identityless", "cdc.elsewhere.readings_2024", "cdc.sales.matrices"} & topics
    # A table that became uncapturable after the last `up` is still in the source's include list:
    # `make status` says so, and `pulumi refresh` and `pulumi up` take it out.
    pipeline.sql("CREATE UNLOGGED TABLE sales.unlogged_later (id int PRIMARY KEY)")
    stale = smoke.status(pipeline.endpoints())
    assert not stale.ok and any("sales.unlogged_later is left out, but the source's include list still takes it"
                                in line for line in stale.lines), stale
    pipeline.refresh_capture()
    assert pipeline.update_stack(pipeline.settings) == [configs.SOURCE_NAME]
    report = smoke.status(pipeline.endpoints())
    print(report)
    notes = [line for line in report.lines if line.startswith("! not captured: ")]
    for relation, why in (("sales.scratch", "unlogged"), ("sales.identityless", "REPLICA IDENTITY NOTHING"),
                          ('sales."Order Items"', "letters, digits and _"), ("sales.unlogged_later", "unlogged"),
                          ("sales.matrices", "column m is declared with 2 dimensions (integer[][])"),
                          ("sales.readings", "elsewhere.readings_2024 is in a schema `capture` does not name")):
        assert any(line.startswith(f"! not captured: {relation}: ") and why in line for line in notes), (relation, notes)
    assert report.ok, report


# The same row read twice: by the first snapshot (through the JDBC driver) and from the stream.
EVERY_TYPE_TABLES = {"sales.every_type_snapshot": "r", "sales.every_type": "c"}


@pytest.mark.parametrize("table", EVERY_TYPE_TABLES)
def test_one_row_of_every_type_arrives_exactly(pipeline, table):
    """A row holding every PostgreSQL type a user may have, edge values included (NaN, ±infinity, 24:00,
    44 BC, the days 1582-10-05 to 14, arrays of more dimensions than declared, an interval of months
    and one of 178 million years), read by the snapshot and from the stream: each value the archive
    holds as PostgreSQL had it."""
    topic = f"cdc.{table}"
    [event] = wait_for(lambda: archived(pipeline, topic) or None, 180, "the row of every type",
                       pipeline.connect.log, interval=3)
    assert event["op"] == EVERY_TYPE_TABLES[table]
    row = event["after"]
    lost = [f"c{n}" for n in range(len(TYPE_CASES)) if f"c{n}" not in row]
    wrong = {f"c{n} {kind} {value}": f"archived {row[f'c{n}']!r}, not {expected!r}"
             for n, (kind, value, expected) in enumerate(TYPE_CASES) if not same(row.get(f"c{n}", expected), expected)}
    print("\n".join(f"{case}: {found}" for case, found in wrong.items()))
    tally(f"every type ({table}): committed {len(TYPE_CASES)} values, archived {len(TYPE_CASES) - len(lost)}, "
          f"lost {len(lost)}, wrong {len(wrong)}, duplicates {len(archived(pipeline, topic)) - 1}")
    assert (lost, wrong) == ([], {})


def test_a_blocking_snapshot_reads_every_date_as_postgresql_writes_it(pipeline):
    """A re-snapshot by hand of a table holding a day the JDBC driver's calendar lacks takes a blocking
    snapshot (docs/operations.md), which reads whole tables through our snapshot query: dates as text."""
    pipeline.sql("CREATE TABLE sales.reform (id int PRIMARY KEY, adopted date)")
    pipeline.sql("INSERT INTO sales.reform VALUES (1, '1582-10-10'), (2, '0044-03-15 BC'), (3, '1582-10-20')")
    pipeline.sql(f"INSERT INTO {pgconf.SIGNAL_TABLE} (id, type, data) VALUES ('blocking-reform', 'execute-snapshot', %s)",
                 json.dumps({"type": "blocking", "data-collections": ["sales\\.reform"]}))
    events = wait_for(lambda: len(found := archived(pipeline, "cdc.sales.reform")) >= 6 and found, 180,
                      "sales.reform streamed and snapshotted", pipeline.connect.log, interval=3)
    expected = {1: "1582-10-10", 2: "-0043-03-15", 3: "1582-10-20"}  # ISO's year -43 is 44 BC
    streamed = [event for event in events if event["op"] == "c"]
    reads = {row_id(event): event["after"]["adopted"] for event in events if event["op"] == "r"}
    tally(f"blocking snapshot: committed 3 dates, streamed {len(streamed)}, read {len(reads)}, "
          f"wrong {sum(reads.get(key) != day for key, day in expected.items())}")
    assert (len(streamed), reads) == (3, expected)


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
