"""The connector provider at the engine boundary: the SDK's real provider host, driven over gRPC with
the properties `__main__.py` registers, on the preview of a fresh stack and on a later `up`.

The full lifecycle against a real Kafka Connect worker is in tests/dataplane/test_pipeline.py.
"""

import socket
import threading

import pytest
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2

from components.formats import ICEBERG, JSONL
from connectors.configs import BUFFER_GUARD_NAME, SOURCE_NAME
from harness.providerhost import PROVIDER_KEY, ProviderHost, recorded_connectors

VOLUME_SIZES = "volume-sizes"  # the storage tier's: a kept volume's size never shrinks

CONNECTORS = (SOURCE_NAME, JSONL.sink_name, BUFFER_GUARD_NAME)
DATABASE_STEPS = ("capture", "snapshot-signal")


class CountingListener:
    """A TCP port that counts who connects: a stand-in Connect that must never be called."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self):
        self.socket.close()


@pytest.fixture(scope="module")
def host():
    with ProviderHost() as running:
        yield running


@pytest.fixture(scope="module")
def fresh_preview():
    return recorded_connectors(fresh_preview=True)


@pytest.fixture(scope="module")
def later_up():
    return recorded_connectors(fresh_preview=False)


@pytest.fixture
def connect():
    listener = CountingListener()
    yield listener
    listener.close()


def at(url, props):
    return {**props, "connectUrl": url}


def outputs_of(inputs):
    """What the state holds after a successful create of these inputs."""
    return {**inputs, "state": "RUNNING", "tasks": [{"id": 0, "state": "RUNNING", "workerId": "w"}],
            "type": "source", "restartedTasks": []}


def test_the_recording_is_what_a_fresh_preview_sends(fresh_preview, later_up):
    assert set(fresh_preview) == set(later_up) == {*CONNECTORS, *DATABASE_STEPS, VOLUME_SIZES}
    # The sink's config is built from the bucket's generated name, the cluster id from the new cluster.
    assert fresh_preview[JSONL.sink_name]["config"] == rpc.UNKNOWN
    assert fresh_preview[JSONL.sink_name]["clusterId"] == rpc.UNKNOWN
    assert isinstance(fresh_preview[SOURCE_NAME]["config"], dict)
    # Only the source's include list waits on the capture step (the tables the database leaves out).
    unknown = [key for key, value in fresh_preview[SOURCE_NAME]["config"].items() if value == rpc.UNKNOWN]
    assert unknown == ["table.include.list"]
    assert all(isinstance(props[PROVIDER_KEY], str) for props in (*fresh_preview.values(), *later_up.values()))


@pytest.mark.parametrize("name", CONNECTORS)
def test_check_passes_on_the_preview_of_a_fresh_stack_without_calling_connect(host, fresh_preview, connect, name):
    checked = host.check(name, {}, at(connect.url, fresh_preview[name]))
    assert checked.failures == []
    # Unknowns stay unknown for the engine to fill in later, not replaced by anything.
    for key in ("config", "clusterId"):
        assert checked.inputs[key] == fresh_preview[name][key]
    assert connect.connections == 0


@pytest.mark.parametrize("name", CONNECTORS)
def test_check_passes_on_a_later_up(host, later_up, name):
    checked = host.check(name, outputs_of(later_up[name]), later_up[name])
    assert checked.failures == []
    assert checked.inputs["config"] == later_up[name]["config"]


def test_an_iceberg_stack_s_fresh_preview_passes_check_and_diff_without_calling_connect(host, connect):
    """The Iceberg sink's config waits on the bucket's name and the Glue database: both unknown in
    the preview of a new stack."""
    iceberg = {"archiveFormat": "iceberg", "exactlyOnceSource": "true"}
    fresh, later = (recorded_connectors(fresh_preview=True, config=iceberg),
                    recorded_connectors(fresh_preview=False, config=iceberg))
    assert set(fresh) == set(later) == {SOURCE_NAME, ICEBERG.sink_name, BUFFER_GUARD_NAME, *DATABASE_STEPS, VOLUME_SIZES}
    assert fresh[ICEBERG.sink_name]["config"] == rpc.UNKNOWN
    for name in (SOURCE_NAME, ICEBERG.sink_name):
        checked = host.check(name, {}, at(connect.url, fresh[name]))
        assert checked.failures == [] and checked.inputs["config"] == fresh[name]["config"]
        assert host.check(name, outputs_of(later[name]), later[name]).failures == []
        olds = outputs_of(at(connect.url, later[name]))
        assert host.diff(name, name, olds, at(connect.url, later[name])).changes == provider_pb2.DiffResponse.DIFF_NONE
    assert connect.connections == 0


def test_check_tolerates_an_unknown_value_inside_the_config_and_still_names_real_problems(host, later_up):
    partly = {**later_up[JSONL.sink_name], "config": {**later_up[JSONL.sink_name]["config"], "s3.bucket": rpc.UNKNOWN}}
    assert host.check(JSONL.sink_name, {}, partly).failures == []
    broken = {**later_up[JSONL.sink_name], "connectUrl": "localhost:8083",
              "config": {key: value for key, value in later_up[JSONL.sink_name]["config"].items() if key != "connector.class"}}
    failures = dict(host.check(JSONL.sink_name, {}, broken).failures)
    assert "http(s) URL" in failures["connectUrl"] and "connector.class is required" in failures["config"]


@pytest.mark.parametrize("name", CONNECTORS)
def test_diff_on_a_preview_never_raises_nor_calls_connect(host, fresh_preview, later_up, connect, name):
    olds = outputs_of(at(connect.url, later_up[name]))
    same = host.diff(name, name, olds, at(connect.url, later_up[name]))
    assert same.changes == provider_pb2.DiffResponse.DIFF_NONE

    # A replaced cluster: its id and (for the sink) the whole config are unknown in the preview.
    replaced = host.diff(name, name, olds, at(connect.url, fresh_preview[name]))
    assert replaced.changes == provider_pb2.DiffResponse.DIFF_SOME
    assert list(replaced.replaces) == ["clusterId"] and replaced.deleteBeforeReplace

    config = dict(later_up[name]["config"])
    config["tasks.max"] = rpc.UNKNOWN
    in_place = host.diff(name, name, olds, at(connect.url, {**later_up[name], "config": config}))
    assert in_place.changes == provider_pb2.DiffResponse.DIFF_SOME and list(in_place.replaces) == []
    assert connect.connections == 0


def test_an_unknown_connect_url_may_be_another_connect_and_replaces(host, later_up, connect):
    olds = outputs_of(at(connect.url, later_up[SOURCE_NAME]))
    result = host.diff(SOURCE_NAME, SOURCE_NAME, olds, {**later_up[SOURCE_NAME], "connectUrl": rpc.UNKNOWN})
    assert result.changes == provider_pb2.DiffResponse.DIFF_SOME and list(result.replaces) == ["connectUrl"]


def test_the_database_steps_pass_check_and_diff_on_a_fresh_preview_without_calling_postgres(host, fresh_preview, connect):
    port = connect.url.rsplit(":", 1)[1]
    for name in DATABASE_STEPS:
        # Unknown on a fresh stack: the capture step's DSN (the password is generated), its cluster
        # id, and every input of the signal (the capture step's outputs).
        props = fresh_preview[name]
        assert props["dsn"] == rpc.UNKNOWN
        checked = host.check(name, {}, props)
        assert checked.failures == []
        olds = {**props, "dsn": f"host=127.0.0.1 port={port} user=x password=y"}
        assert host.diff(name, name, olds, props).changes == provider_pb2.DiffResponse.DIFF_SOME
    assert fresh_preview["capture"]["sql"].startswith("-- The pipeline's own schema")
    assert fresh_preview["snapshot-signal"]["tables"] == rpc.UNKNOWN
    assert connect.connections == 0


def test_the_capture_step_runs_again_only_when_its_sql_or_database_changes(host, later_up):
    props = later_up["capture"]
    outputs = {**props, "published": ["inventory.customers"], "snapshot": [], "revision": "0/1"}
    assert host.diff("capture", "capture", outputs, props).changes == provider_pb2.DiffResponse.DIFF_NONE
    for key, value in (("sql", props["sql"] + "\n-- changed"), ("clusterId", "another-cluster")):
        changed = host.diff("capture", "capture", outputs, {**props, key: value})
        assert changed.changes == provider_pb2.DiffResponse.DIFF_SOME and list(changed.replaces) == []


def test_a_bad_capture_step_input_is_named_by_check(host, later_up):
    checked = host.check("capture", {}, {**later_up["capture"], "sql": ""})
    assert checked.failures == [("sql", "sql must be a non-empty string")]
    checked = host.check("snapshot-signal", {}, {**later_up["snapshot-signal"], "tables": "inventory.orders"})
    assert [prop for prop, _ in checked.failures] == ["tables"]


def test_a_kept_volume_made_smaller_is_refused_at_preview_and_a_larger_one_is_an_update(host, later_up):
    """The API server would refuse the smaller claims only when `pulumi up` applies them (Pulumi's
    provider previews no patch): the storage tier's own resource refuses first, at preview."""
    old = later_up[VOLUME_SIZES]
    assert host.check(VOLUME_SIZES, {}, old).failures == []
    [(setting, why)] = host.check(VOLUME_SIZES, old, {**old, "kafkaStorage": "3Gi"}).failures
    assert setting == "kafkaStorage" and "cannot shrink" in why and "data-ingestion:kafkaStorage 5Gi" in why, why
    larger = {**old, "postgresStorage": "8Gi"}
    assert host.check(VOLUME_SIZES, old, larger).failures == []
    diff = host.diff(VOLUME_SIZES, "volume-sizes", old, larger)
    assert diff.changes == provider_pb2.DiffResponse.DIFF_SOME and list(diff.replaces) == []
