"""The PostgreSQL tier's settings, init SQL and capture step, run on a real server."""

import os
import signal
import subprocess
import time
from dataclasses import replace

import psycopg
import pytest

from components import postgres_config as pgconf
from components.quantity import Memory
from components.stack import parse_settings
from tests.dataplane.pgoutput import inserts
from harness.dataplane.postgres import PostgresServer

SETTINGS = parse_settings("data-ingestion", "dev", {})


@pytest.fixture(scope="module")
def server():
    with PostgresServer.initialized(SETTINGS) as pg:
        yield pg


def connect(server, user=pgconf.SUPERUSER, **kwargs):
    return psycopg.connect(server.dsn(user), autocommit=True, **kwargs)


def catalog_state(server):
    """Everything init.sql and the capture step create, as the catalog sees it."""
    with connect(server) as conn:
        return {
            "roles": conn.execute(
                "SELECT rolname, rolsuper, rolreplication, rolcanlogin, rolcreatedb, rolcreaterole "
                "FROM pg_roles WHERE rolname = %s", (pgconf.CDC_ROLE,)).fetchall(),
            "tables": conn.execute(
                "SELECT schemaname, tablename FROM pg_tables WHERE schemaname IN ('inventory', 'cdc') ORDER BY 1, 2"
            ).fetchall(),
            "publication": conn.execute(
                "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s ORDER BY 1, 2",
                (pgconf.PUBLICATION,)).fetchall(),
            "publications": conn.execute("SELECT count(*) FROM pg_publication").fetchone(),
            "heartbeat": conn.execute("SELECT id FROM cdc.heartbeat").fetchall(),
            "demo rows": conn.execute("SELECT (SELECT count(*) FROM inventory.customers), "
                                      "(SELECT count(*) FROM inventory.orders)").fetchall(),
            "event triggers": conn.execute("SELECT evtname, evtevent, evtenabled FROM pg_event_trigger").fetchall(),
            "grants": conn.execute(
                "SELECT table_schema, table_name, privilege_type FROM information_schema.role_table_grants "
                "WHERE grantee = %s ORDER BY 1, 2, 3", (pgconf.CDC_ROLE,)).fetchall(),
        }


def test_the_server_runs_with_the_rendered_settings(server):
    with connect(server) as conn:
        show = lambda name: conn.execute(f"SHOW {name}").fetchone()[0]  # noqa: E731
        assert show("wal_level") == "logical"
        assert show("max_slot_wal_keep_size") == "2560MB"
        assert show("shared_buffers") == "192MB"
        assert show("max_connections") == "50"


def test_the_cdc_role_logs_in_with_its_password_and_is_no_superuser(server):
    with connect(server, pgconf.CDC_ROLE) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == pgconf.CDC_ROLE
        rolsuper, rolreplication = conn.execute(
            "SELECT rolsuper, rolreplication FROM pg_roles WHERE rolname = current_user").fetchone()
        assert (rolsuper, rolreplication) == (False, True)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(server.dsn(pgconf.CDC_ROLE, password="wrong"))


def test_the_cdc_role_reads_captured_tables_and_writes_nothing_else(server):
    with connect(server, pgconf.CDC_ROLE) as conn:
        conn.execute("SELECT count(*) FROM inventory.orders")
        conn.execute("UPDATE cdc.heartbeat SET beat_at = now() WHERE id = 1")  # Debezium's action query
        for statement in (
            "INSERT INTO inventory.customers (email, full_name) VALUES ('x@example.com', 'X')",
            "DELETE FROM inventory.orders",
            "CREATE TABLE public.intruder (id int)",
            "SELECT * FROM pg_authid",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_the_cdc_role_streams_a_change_to_orders_through_the_publication(server):
    slot = "test_pgoutput_slot"
    with connect(server, pgconf.CDC_ROLE) as cdc:
        cdc.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
        try:
            with connect(server) as app:
                customer = app.execute(
                    "INSERT INTO inventory.customers (email, full_name) VALUES ('ada@example.com', 'Ada Lovelace') "
                    "RETURNING id").fetchone()[0]
                app.execute(
                    "INSERT INTO inventory.orders (customer_id, amount, attributes) VALUES (%s, 1234.50, %s)",
                    (customer, '{"channel": "web", "items": [1, 2]}'))
                app.execute("CREATE TABLE IF NOT EXISTS public.not_captured (id int)")
                app.execute("INSERT INTO public.not_captured VALUES (7)")
            rows = cdc.execute(
                "SELECT data FROM pg_logical_slot_get_binary_changes(%s, NULL, NULL, "
                "'proto_version', '1', 'publication_names', %s)", (slot, pgconf.PUBLICATION)).fetchall()
        finally:
            cdc.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    changes = inserts([bytes(row[0]) for row in rows])
    assert {change.relation for change in changes} == {"inventory.customers", "inventory.orders"}
    [order] = [change for change in changes if change.relation == "inventory.orders"]
    assert "1234.50" in order.values
    assert '{"items": [1, 2], "channel": "web"}' in order.values  # jsonb, normalised by the server


def test_running_the_init_sql_and_the_capture_step_again_succeeds_and_changes_nothing(server):
    before = catalog_state(server)
    assert before["roles"] == [(pgconf.CDC_ROLE, False, True, True, False, False)]
    assert sorted(before["publication"]) == [("cdc", "debezium_signal"), ("cdc", "heartbeat"), ("cdc", "marker"),
                                             ("inventory", "customers"), ("inventory", "orders")]
    assert min(before["demo rows"][0]) >= 3  # seeded once; rows the tests added stay, nothing is re-seeded
    server.run_init()
    server.run_capture()
    server.run_capture()
    assert catalog_state(server) == before


def test_the_init_survives_a_restart_with_the_existing_data(server):
    server.restart()
    server.wait_ready()
    before = catalog_state(server)
    server.run_init()
    server.run_capture()
    assert catalog_state(server) == before
    with connect(server, pgconf.CDC_ROLE) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_the_smallest_accepted_volume_yields_settings_postgresql_starts_with():
    smallest = parse_settings("data-ingestion", "dev", {"postgresStorage": str(pgconf.MINIMUM_STORAGE)})
    with PostgresServer.initialized(smallest) as pg, connect(pg) as conn:
        assert conn.execute("SHOW max_wal_size").fetchone()[0] == "80MB"


def test_below_the_minimum_postgresql_itself_refuses_to_start():
    # What the settings check spares a user: the server as 100Mi would render it (max_wal_size 25MB).
    too_small = replace(SETTINGS, config=SETTINGS.config.model_copy(update={"postgres_storage": Memory.mebibytes(100)}))
    server = PostgresServer(too_small)
    try:
        with pytest.raises(RuntimeError, match="pg_ctl start failed"):
            server.start()
        with open(server.log_file) as log:
            assert '"max_wal_size" must be at least twice "wal_segment_size"' in log.read()
    finally:
        server.stop()


def test_a_replication_client_that_stops_reading_never_holds_up_a_checkpoint(server):
    """Debezium stops reading its replication connection while it cannot hand changes on (Kafka
    down, its queue full), and keeps it open. Once the slot holds more than max_slot_wal_keep_size,
    a checkpoint gives the slot up and ends its walsender, which first writes its FATAL into the
    full socket: without a bound it waits there for ever, and the checkpoint with it (seen on the
    real pipeline: CHECKPOINT waiting 20 minutes; no WAL recycled meanwhile). The CDC role's
    tcp_user_timeout (the capture step's, here shortened to 5 s) closes a connection its client has
    stopped reading; the checkpoint completes."""
    slot = "stalled_reader"
    with connect(server) as app:  # the capture step's setting, then a shorter one for this test's sake
        [(settings,)] = app.execute("SELECT setconfig FROM pg_db_role_setting WHERE setrole = %s::regrole",
                                    (pgconf.CDC_ROLE,)).fetchall()
        assert f"tcp_user_timeout={pgconf.REPLICATION_TCP_USER_TIMEOUT_SECONDS}s" in settings
        app.execute(f"ALTER ROLE {pgconf.CDC_ROLE} SET tcp_user_timeout = '5s'")
    receiver = subprocess.Popen(
        [os.path.join(server.bin_dir, "pg_recvlogical"), "--dbname", server.dsn(pgconf.CDC_ROLE), "--slot", slot,
         "--create-slot", "--start", "--plugin", "pgoutput", "--option", "proto_version=1",
         "--option", f"publication_names={pgconf.PUBLICATION}", "--file", os.devnull],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with connect(server) as app:
        try:
            streaming = lambda: app.execute(  # noqa: E731
                "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone() == (True,)
            deadline = time.monotonic() + 30
            while not streaming():
                assert time.monotonic() < deadline and receiver.poll() is None, receiver.stderr.read()
                time.sleep(0.2)
            receiver.send_signal(signal.SIGSTOP)  # connected, and reading nothing more
            app.execute("CREATE TABLE inventory.stall_ballast (id bigserial PRIMARY KEY, body text NOT NULL)")
            for _ in range(8):  # 64 MB of changes to decode: far more than the socket's buffers hold
                app.execute("INSERT INTO inventory.stall_ballast (body) SELECT (SELECT string_agg(md5(random()::text "
                            "|| g || i), '') FROM generate_series(1, 256) AS i) FROM generate_series(1, 1000) AS g")
            app.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '16MB'")
            app.execute("SELECT pg_reload_conf()")
            app.execute("SELECT pg_switch_wal()")
            app.execute("SET statement_timeout = '170s'")
            started = time.monotonic()
            app.execute("CHECKPOINT")
            took = time.monotonic() - started
            [(status,)] = app.execute("SELECT wal_status FROM pg_replication_slots WHERE slot_name = %s",
                                      (slot,)).fetchall()
            print(f"\ncheckpoint with a stalled replication client: {took:.0f} s; the slot: {status}")
            assert status == "lost"
            assert took < 5 + 30
        finally:
            app.execute(f"ALTER ROLE {pgconf.CDC_ROLE} SET tcp_user_timeout = "
                        f"'{pgconf.REPLICATION_TCP_USER_TIMEOUT_SECONDS}s'")
            receiver.send_signal(signal.SIGKILL)
            receiver.wait(timeout=30)
            app.execute("RESET statement_timeout")
            app.execute("ALTER SYSTEM RESET max_slot_wal_keep_size")
            app.execute("SELECT pg_reload_conf()")
            app.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
                        (slot,))
            app.execute("DROP TABLE IF EXISTS inventory.stall_ballast")
