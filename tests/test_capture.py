"""`capture` and `demoData`: checked before anything is declared, and everything that selects tables
rendered from the one list. On a real database and pipeline: tests/dataplane/test_capture.py."""

import base64
import json
import pickle
import re

import pytest

from components import postgres_config as pgconf
from components.formats import JSONL
from components.stack import parse_settings
from connectors import configs
from harness.stackgraph import SECRET_MARK, SECRET_SIG, fake_password, plain, run_stack
from tests.test_settings import refused

DYNAMIC = "pulumi-python:dynamic:Resource"


@pytest.mark.parametrize(
    "entries, fragment",
    [
        ([], "is empty"),
        (["Sales"], "lower case"),
        (["sales-eu"], "not a name PostgreSQL accepts unquoted"),
        (["1sales"], "not starting with a digit"),
        (["s" * 64], "longer than PostgreSQL's 63 bytes"),
        (["sales." + "t" * 64], "longer than PostgreSQL's 63 bytes"),
        (["appdb.sales.invoices"], "more than schema.table"),
        (["sales."], "empty name"),
        (["select"], "reserved word"),
        (["sales.table"], "reserved word"),
        (["cdc"], "the pipeline's own schema"),
        (["cdc.heartbeat"], "the pipeline's own schema"),
        (["pg_catalog"], "system schema"),
        (["information_schema.tables"], "system schema"),
        (["sales", "sales"], "listed twice"),
        (["sales", "sales.invoices"], "already captured by schema 'sales'"),
    ],
)
def test_a_bad_capture_entry_is_refused_naming_it_before_anything_is_declared(entries, fragment):
    [problem] = refused({"capture": json.dumps(entries)}).problems
    assert problem.key == "data-ingestion:capture"
    assert fragment in problem.message
    for entry in set(entries):
        assert repr(entry) in problem.message or not entry


def test_every_bad_entry_is_reported_at_once_with_the_other_keys():
    error = refused({"capture": ["Sales", "cdc", "ok.fine", "ok"], "demoData": "maybe", "kafkaBrokers": 0})
    keys = [problem.key for problem in error.problems]
    assert keys.count("data-ingestion:capture") == 3
    assert "data-ingestion:demoData" in keys and "data-ingestion:kafkaBrokers" in keys
    text = str(error)
    assert "'Sales'" in text and "'cdc'" in text and "'ok.fine' is already captured by schema 'ok'" in text


@pytest.mark.parametrize(
    "raw",
    [["inventory", "sales.invoices"], '["inventory","sales.invoices"]', "inventory, sales.invoices"],
)
def test_capture_arrives_as_the_cli_or_the_runtime_hands_it_over(raw):
    # `pulumi config set --path 'capture[1]' sales.invoices` stores a list that the program gets as a
    # JSON array; a plain `pulumi config set capture a,b` gives a string.
    settings = parse_settings("data-ingestion", "dev", {"capture": raw})
    assert settings.capture.entries == ("inventory", "sales.invoices")
    assert settings.capture.schemas == ("inventory",) and settings.capture.tables == ("sales.invoices",)


def test_the_default_captures_the_demo_schema_with_its_data():
    settings = parse_settings("data-ingestion", "dev", {})
    assert settings.capture.entries == ("inventory",) and settings.config.demo_data is True


def test_the_reserved_words_are_the_servers():
    # The list is compared with pg_get_keywords() on a real server in tests/dataplane/test_capture.py;
    # here: the words every PostgreSQL refuses as a table name.
    from components.capture import RESERVED

    assert {"select", "table", "user", "order", "group"} <= RESERVED and "sales" not in RESERVED


def source_and_sink(graph):
    return graph.one(DYNAMIC, configs.SOURCE_NAME).inputs["config"], graph.one(DYNAMIC, JSONL.sink_name).inputs["config"]


def test_debezium_and_the_publication_follow_from_capture():
    graph = run_stack("dev", {"capture": '["sales", "billing.invoices", "billing.refunds"]', "demoData": "false"})
    source, sink = source_and_sink(graph)
    include = source["table.include.list"].split(",")
    assert include == ["sales\\.[A-Za-z0-9_]+", "billing\\.invoices", "billing\\.refunds", "cdc\\.marker"]
    matches = lambda table: any(re.fullmatch(pattern, table) for pattern in include)  # noqa: E731
    assert matches("sales.anything_created_later") and matches("billing.invoices")
    assert not matches("billing.other") and not matches("salesx.t") and not matches("cdc.debezium_signal")
    sql = graph.one(DYNAMIC, "capture").inputs["sql"]
    assert sql == pgconf.capture_sql(parse_settings("data-ingestion", "dev", {
        "capture": ["sales", "billing.invoices", "billing.refunds"], "demoData": False}))
    assert "TABLES IN SCHEMA" not in sql  # table by table: a table that cannot be published is left out
    assert "INSERT INTO cdc.capture (entry) VALUES ('sales'), ('billing.invoices'), ('billing.refunds');" in sql
    assert "CREATE SCHEMA IF NOT EXISTS sales;" in sql and "billing;" not in sql  # a table's schema is the user's
    assert "inventory" not in sql  # demoData false: no demo tables
    # The sink's selection does not depend on the list: every table topic the source writes.
    assert sink["topics.regex"] == configs.CHANGE_TOPIC_PATTERN


def test_the_tables_the_database_leaves_out_are_left_out_of_the_source_too():
    """Debezium snapshots every table its include list matches: one the capture step left out (unlogged,
    REPLICA IDENTITY NOTHING, a name a topic cannot carry) would fail the source for every table."""
    capture = parse_settings("data-ingestion", "dev", {"capture": ["sales", "billing.invoices", "billing.refunds"],
                                                      "demoData": False}).capture
    include = capture.include_list(["sales.scratch", "sales.Order Items", "sales.a,b", "billing.refunds"])
    assert include[0] == "sales\\.(?!(?:scratch)$)[A-Za-z0-9_]+"  # other names never match: no comma in the list
    matches = lambda table: any(re.fullmatch(pattern, table) for pattern in include)  # noqa: E731
    assert matches("sales.orders") and matches("sales.scratchpad") and matches("billing.invoices")
    for left_out in ("sales.scratch", "sales.Order Items", "sales.a,b", "sales.order.items", "billing.refunds"):
        assert not matches(left_out), left_out
    assert capture.include_list() == ["sales\\.[A-Za-z0-9_]+", "billing\\.invoices", "billing\\.refunds"]


def test_truncates_are_captured_and_avro_names_adjusted_only_where_avro_needs_it():
    avro = source_and_sink(run_stack("dev", {"serialization": "avro"}))[0]
    plain = source_and_sink(run_stack("dev", {"serialization": "json"}))[0]
    assert avro["skipped.operations"] == plain["skipped.operations"] == "none"
    assert avro["field.name.adjustment.mode"] == avro["schema.name.adjustment.mode"] == "avro"
    assert "field.name.adjustment.mode" not in plain  # JSON carries any column name as it is


def test_the_sink_takes_every_table_topic_of_the_source_and_none_of_its_internal_ones():
    for topic in ("cdc.inventory.orders", "cdc.sales.created_later", "cdc.sales.Quoted", "cdc.cdc.marker"):
        assert configs.is_change_topic(topic), topic
    for topic in ("cdc.cdc.debezium_signal", "cdc.cdc.heartbeat", "__debezium-heartbeat.cdc", "cdc.transaction",
                  "connect-offsets", "other.inventory.orders"):
        assert not configs.is_change_topic(topic), topic


def test_the_capture_step_runs_before_the_source_and_the_signal_after_it():
    graph = run_stack("dev")
    capture, source, signal = (graph.one(DYNAMIC, name) for name in ("capture", configs.SOURCE_NAME, "snapshot-signal"))
    assert capture.urn in source.dependencies
    assert source.urn in signal.dependencies
    assert graph.one("kubernetes:apps/v1:StatefulSet", "postgres").urn in capture.dependencies
    assert capture.inputs["slot"] == source.inputs["config"]["slot.name"]
    assert capture.inputs["clusterId"] == source.inputs["clusterId"]


def test_the_steps_reach_postgres_from_the_laptop_with_secret_credentials():
    graph = run_stack("dev-alice", {"hostPortOffset": 100})
    capture, signal = graph.one(DYNAMIC, "capture"), graph.one(DYNAMIC, "snapshot-signal")
    superuser, cdc = fake_password("postgres-superuser-password"), fake_password("postgres-cdc-password")
    assert capture.inputs["dsn"]["value"].startswith("host=localhost port=5532 dbname=appdb user=postgres ")
    assert capture.inputs["dsn"]["value"].endswith(f"password={superuser} connect_timeout=5")
    assert signal.inputs["dsn"]["value"].startswith("host=localhost port=5532 dbname=appdb user=cdc_reader ")
    assert cdc in signal.inputs["dsn"]["value"]
    for resource in (capture, signal):
        assert resource.wire["dsn"][SECRET_SIG] == SECRET_MARK
        assert superuser not in json.dumps(plain(resource.wire)) and cdc not in json.dumps(plain(resource.wire))
        assert "dsn" in resource.additional_secret_outputs


@pytest.mark.parametrize("name, cls", [("capture", "CaptureStepProvider"), ("snapshot-signal", "SnapshotSignalProvider")])
def test_the_database_step_providers_are_pickled_by_reference(name, cls):
    """Like the connectors' provider: the pickle in every stack's state names the class by module
    path; keep `connectors.capture_step.<cls>` where it is."""
    blob = base64.b64decode(run_stack("dev").one(DYNAMIC, name).inputs["__provider"]["value"])
    restored = pickle.loads(blob)
    assert (type(restored).__module__, type(restored).__qualname__) == ("connectors.capture_step", cls)
    assert b"def " not in blob and b"apply_capture" not in blob  # no code travels by value
