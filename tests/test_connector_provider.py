"""Every method of the Kafka Connect provider against an HTTP double of Connect's REST contract."""

import base64
import pickle
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pulumi.dynamic.dynamic import serialize_provider

import connectors.provider as provider_module
from pulumi.output import Unknown

from connectors.provider import ConnectError, KafkaConnectorProvider, root_cause
from tests.connect_double import ConnectDouble
from harness.stackgraph import fake_password

SOURCE = {"connector.class": "io.debezium.connector.postgresql.PostgresConnector", "tasks.max": "1",
          "database.password": "${directory:/run/secrets/connect/postgres:cdc-password}"}
SINK = {"connector.class": "dataingestion.connect.s3.S3SinkConnector", "tasks.max": "2", "topics": "cdc.a"}
TRACE = "org.apache.kafka.connect.errors.ConnectException: boom\n\tat io.debezium.Foo.bar(Foo.java:1)\n\tat x.Y.z"
NESTED_TRACE = (
    "org.apache.kafka.connect.errors.ConnectException: Unrecoverable exception from producer send callback\n"
    "\tat org.apache.kafka.connect.runtime.WorkerSourceTask.maybeThrowProducerSendException(WorkerSourceTask.java:1)\n"
    "\tat a.B.c(B.java:2)\n\tat a.B.d(B.java:3)\n"
    "Caused by: org.apache.kafka.common.KafkaException: wrapped\n\tat a.B.e(B.java:4)\n"
    "Caused by: org.apache.kafka.common.errors.RecordTooLargeException: The message is 2000123 bytes\n\tat x.Y.z"
)


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    monkeypatch.setattr(provider_module, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(provider_module, "RESTART_SETTLE_SECONDS", 0.05)
    monkeypatch.setattr(provider_module, "_sleep", lambda seconds: None)
    monkeypatch.setattr(provider_module, "HEALTHY_SECONDS", 0.05)


@pytest.fixture
def connect():
    double = ConnectDouble()
    yield double
    double.stop()


def props(connect, name="postgres-source", config=None, timeout=5, cluster="cluster-1"):
    return {"connectUrl": connect.url if hasattr(connect, "url") else connect, "connectorName": name,
            "config": dict(config or SOURCE), "timeoutSeconds": timeout, "clusterId": cluster}


provider = KafkaConnectorProvider()


def test_check_accepts_a_good_connector_and_tolerates_unknowns_in_preview():
    assert provider.check({}, props("http://localhost:8083")).failures == []
    # The provider host hands unknowns over as pulumi.output.Unknown objects (tests/test_provider_host.py
    # drives the real host); whole inputs or values inside the config.
    unknown = {"connectUrl": Unknown(), "connectorName": Unknown(), "config": Unknown(), "clusterId": Unknown(),
               "timeoutSeconds": 300}
    assert provider.check({}, unknown).failures == []
    partly = props("http://localhost:8083", config={**SOURCE, "database.hostname": Unknown(), "connector.class": Unknown()})
    assert provider.check({}, partly).failures == []


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"connectUrl": "localhost:8083"}, "connectUrl", "http(s) URL"),
        ({"connectorName": ""}, "connectorName", "connector name"),
        ({"connectorName": "a/b"}, "connectorName", "no '/'"),
        ({"config": {"tasks.max": "1"}}, "config", "connector.class is required"),
        ({"config": {"connector.class": "X", "nested": {"a": 1}}}, "config", "scalars"),
        ({"timeoutSeconds": 0}, "timeoutSeconds", "positive"),
    ],
)
def test_check_names_what_is_wrong(change, field, fragment):
    [failure] = provider.check({}, {**props("http://localhost:8083"), **change}).failures
    assert failure.property == field and fragment in failure.reason


def test_create_puts_the_config_and_waits_until_connector_and_tasks_run(connect):
    result = provider.create(props(connect))
    assert result.id == "postgres-source"
    assert result.outs["state"] == "RUNNING"
    assert result.outs["tasks"] == [{"id": 0, "state": "RUNNING", "workerId": "10.244.1.7:8083"}]
    assert result.outs["type"] == "source"
    assert result.outs["config"] == SOURCE
    assert ("PUT", "/connectors/postgres-source/config") in connect.requests
    assert connect.connectors["postgres-source"].config == {**SOURCE, "name": "postgres-source"}


def test_create_reports_a_failed_task_with_its_trace(connect):
    connect.tasks_fail_on_start["postgres-source"] = TRACE
    with pytest.raises(ConnectError) as raised:
        provider.create(props(connect))
    message = str(raised.value)
    assert "'postgres-source'" in message and connect.url in message and "FAILED" in message
    assert "task 0: org.apache.kafka.connect.errors.ConnectException: boom" in message
    assert "/connectors/postgres-source/status" in message


def test_create_gives_up_after_its_timeout_saying_where_it_stands(connect):
    connect.start_reads = 10**9  # the connector never gets assigned
    with pytest.raises(ConnectError, match=r"is not RUNNING after 0s \(now: UNASSIGNED"):
        provider.create(props(connect, timeout=0.2))


def test_a_config_connect_refuses_is_reported_with_its_validation_errors(connect):
    connect.invalid_keys.add("database.password")
    with pytest.raises(ConnectError) as raised:
        provider.create(props(connect))
    assert "the config was refused" in str(raised.value)
    assert "Invalid value for configuration database.password" in str(raised.value)


def test_a_rebalance_and_server_errors_are_retried(connect):
    connect.fail_next(409, 2, "Cannot complete request momentarily due to stale configuration")
    connect.fail_next(503, 1)
    assert provider.create(props(connect)).outs["state"] == "RUNNING"


def test_a_persistent_rebalance_fails_after_the_timeout(connect):
    connect.fail_next(409, 10**6, "rebalance in progress")
    with pytest.raises(ConnectError, match="answered 409: rebalance in progress, still after"):
        provider.create(props(connect, timeout=0.3))


def test_an_unreachable_worker_is_named_with_what_to_check():
    with pytest.raises(ConnectError) as raised:
        provider.create(props("http://127.0.0.1:9", timeout=0.3))
    assert "cannot reach it" in str(raised.value) and "http://127.0.0.1:9" in str(raised.value)
    assert "kubectl" in str(raised.value)


def test_diff_updates_config_in_place_and_replaces_on_name_url_or_cluster_change(connect):
    old = props(connect)
    assert provider.diff("postgres-source", old, props(connect)).changes is False
    changed = provider.diff("postgres-source", old, props(connect, config={**SOURCE, "tasks.max": "1", "x": "1"}))
    assert changed.changes is True and changed.replaces == []
    for change in ({"connectorName": "other"}, {"connectUrl": "http://elsewhere:8083"}, {"clusterId": "cluster-2"}):
        result = provider.diff("postgres-source", old, {**old, **change})
        assert result.changes is True and result.replaces == list(change)


def test_no_perpetual_diff_from_what_connect_adds_or_normalises(connect):
    created = provider.create(props(connect, config={**SOURCE, "tasks.max": 1})).outs
    refreshed = provider.read("postgres-source", created).outs
    assert provider.diff("postgres-source", refreshed, props(connect, config={**SOURCE, "tasks.max": 1})).changes is False


def test_diff_with_unknown_config_values_in_preview_is_a_change(connect):
    result = provider.diff("postgres-source", props(connect), props(connect, config={**SOURCE, "topics": Unknown()}))
    assert result.changes is True and result.replaces == []
    whole = provider.diff("postgres-source", props(connect), {**props(connect), "config": Unknown()})
    assert whole.changes is True and whole.replaces == []


def test_diff_with_an_unknown_cluster_or_url_may_be_a_new_connector(connect):
    for key in ("clusterId", "connectUrl"):
        result = provider.diff("postgres-source", props(connect), {**props(connect), key: Unknown()})
        assert result.changes is True and result.replaces == [key]
    assert connect.requests == []  # a preview never calls Connect


def test_a_task_that_fails_after_reporting_running_is_not_healthy(connect, monkeypatch):
    monkeypatch.setattr(provider_module, "HEALTHY_SECONDS", 0.5)
    connect.tasks_fail_later["postgres-source"] = (3, NESTED_TRACE)
    with pytest.raises(ConnectError) as raised:
        provider.create(props(connect))
    assert "FAILED" in str(raised.value)
    assert "task 0: org.apache.kafka.common.errors.RecordTooLargeException: The message is 2000123 bytes" in str(
        raised.value
    )


def test_the_root_cause_is_the_innermost_exception():
    assert root_cause(NESTED_TRACE).startswith("org.apache.kafka.common.errors.RecordTooLargeException")
    assert "surfaced as: org.apache.kafka.connect.errors.ConnectException: Unrecoverable" in root_cause(NESTED_TRACE)
    assert root_cause(TRACE) == "org.apache.kafka.connect.errors.ConnectException: boom"
    assert root_cause("") == "(no trace)"


def test_update_puts_the_new_config_waits_and_returns_full_outputs(connect):
    old = provider.create(props(connect)).outs
    new = props(connect, config={**SOURCE, "heartbeat.interval.ms": "5000"})
    outs = provider.update("postgres-source", old, new).outs
    assert connect.connectors["postgres-source"].config["heartbeat.interval.ms"] == "5000"
    assert set(outs) >= {"connectUrl", "connectorName", "config", "state", "tasks", "type", "restartedTasks"}
    assert outs["state"] == "RUNNING" and outs["config"]["heartbeat.interval.ms"] == "5000"


def test_update_restarts_failed_tasks_and_reports_them(connect):
    old = provider.create(props(connect, name="s3-sink", config=SINK)).outs
    connect.fail_task("s3-sink", 1, TRACE)
    outs = provider.update("s3-sink", old, props(connect, name="s3-sink", config=SINK)).outs
    assert outs["restartedTasks"] == [1]
    assert ("POST", "/connectors/s3-sink/restart?includeTasks=true&onlyFailed=true") in connect.requests
    assert [task["state"] for task in outs["tasks"]] == ["RUNNING", "RUNNING"]


def test_read_shows_drift_after_a_hand_edit(connect):
    created = provider.create(props(connect)).outs
    connect.connectors["postgres-source"].config["snapshot.mode"] = "never"  # someone used curl
    result = provider.read("postgres-source", created)
    assert result.id == "postgres-source"
    assert result.outs["config"]["snapshot.mode"] == "never"
    assert provider.diff("postgres-source", result.outs, props(connect)).changes is True


def test_read_restarts_failed_tasks_and_reports_them(connect):
    created = provider.create(props(connect)).outs
    connect.fail_task("postgres-source", 0, TRACE)
    result = provider.read("postgres-source", created)
    assert result.outs["restartedTasks"] == [0]
    assert connect.connectors["postgres-source"].tasks[0]["state"] == "RESTARTING"


def test_read_of_a_connector_deleted_by_hand_is_gone(connect):
    created = provider.create(props(connect)).outs
    del connect.connectors["postgres-source"]
    result = provider.read("postgres-source", created)
    assert result.id == "" and result.outs == {}


def test_delete_removes_the_connector_and_an_absent_one_is_fine(connect):
    created = provider.create(props(connect)).outs
    provider.delete("postgres-source", created)
    assert "postgres-source" not in connect.connectors
    provider.delete("postgres-source", created)  # already gone: not an error


def test_delete_when_connect_is_gone_for_good_succeeds():
    provider.delete("postgres-source", props("http://127.0.0.1:9", timeout=0.2))


def test_delete_retries_transient_errors_and_reports_a_real_one(connect):
    provider.create(props(connect))
    connect.fail_next(500, 1)
    connect.fail_next(403, 1, "forbidden by a proxy")
    with pytest.raises(ConnectError, match="cannot delete connector 'postgres-source'.*403 forbidden by a proxy"):
        provider.delete("postgres-source", props(connect))


def test_no_config_value_appears_in_an_error_message(connect):
    secret = fake_password("cdc")
    connect.tasks_fail_on_start["postgres-source"] = TRACE
    with pytest.raises(ConnectError) as raised:
        provider.create(props(connect, config={**SOURCE, "database.password": secret}))
    assert secret not in str(raised.value)


def test_the_provider_is_pickled_by_reference_to_an_importable_module():
    """Every deployed stack's state holds this pickle; `pulumi destroy` and `refresh` unpickle it
    with the code of the day. Moving or renaming the class breaks them for every stack out there:
    keep `connectors.provider.KafkaConnectorProvider` where it is (add an alias if it must move)."""
    blob = base64.b64decode(serialize_provider(KafkaConnectorProvider()))
    restored = pickle.loads(blob)
    assert (type(restored).__module__, type(restored).__qualname__) == ("connectors.provider", "KafkaConnectorProvider")
    assert b"connectors.provider" in blob and b"KafkaConnectorProvider" in blob
    assert b"def " not in blob and b"wait_until_running" not in blob  # no code travels by value


def test_a_source_watching_its_slot_reports_an_unreachable_postgres_without_failing_or_leaking(connect):
    secret = fake_password("cdc")
    watch = {"dsn": f"host=127.0.0.1 port=9 dbname=appdb user=cdc_reader password={secret} connect_timeout=1",
             "slot": "debezium_dev"}
    outs = provider.create({**props(connect), "slotWatch": watch}).outs
    assert outs["state"] == "RUNNING" and outs["slotWatch"] == watch  # kept for refresh (a secret output)
    assert outs["slot"]["ok"] is False and outs["slot"]["summary"].startswith("cannot read replication slot debezium_dev")
    assert secret not in outs["slot"]["summary"]
    refreshed = provider.read("postgres-source", outs).outs
    assert refreshed["slot"]["ok"] is False and "slot" not in provider.create(props(connect, name="s3-sink")).outs


def test_connect_credentials_are_checked_and_a_change_of_them_is_an_update_in_place():
    good = {**props("http://localhost:8083"), "connectAuth": {"username": "operator", "password": "s3cret"}}
    assert provider.check({}, good).failures == []
    assert provider.check({}, {**good, "connectAuth": {"username": "operator", "password": Unknown()}}).failures == []
    [failure] = provider.check({}, {**good, "connectAuth": {"username": "operator"}}).failures
    assert failure.property == "connectAuth"
    changed = provider.diff("postgres-source", good, {**good, "connectAuth": {"username": "operator", "password": "new"}})
    assert changed.changes and changed.replaces == []


def test_a_refused_credential_stops_at_once_saying_where_they_live(monkeypatch):
    class Refusing(BaseHTTPRequestHandler):
        def do_PUT(self):
            self.send_response(401)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        with pytest.raises(ConnectError) as raised:
            provider.create({**props(url), "connectAuth": {"username": "operator", "password": "wrong"}})
        assert "401" in str(raised.value) and "connect-rest-credentials" in str(raised.value)
        assert "wrong" not in str(raised.value)
    finally:
        server.shutdown()
