"""The outage window: what `pulumi up` states and warns of, the buffer guard's place in the source's
config, and how `make status` reads the guard's report. The guard itself runs on real brokers in
tests/dataplane/test_buffers.py."""

import json

import pulumi
import pytest

from components import buffer_config as bconf
from components.stack import parse_settings
from operations.buffers import Buffers, GuardReport
from connectors.configs import CHANGE_TOPIC_PATTERN, Database, buffer_guard, debezium_source
from connectors.slot import SlotHealth
from harness.stackgraph import run_stack

GiB = 2**30


def settings(**keys):
    return parse_settings("data-ingestion", "dev", keys)


def test_the_default_stack_survives_over_two_hours_of_archive_outage_at_ten_thousand_events_a_second():
    window = bconf.configured_window(settings().config)
    assert window.kafka_seconds == pytest.approx(0.85 * 5 * GiB / (10_000 * 57.4))
    assert window.wal_seconds == pytest.approx(2.5 * GiB / (10_000 * bconf.WAL_BYTES_PER_EVENT))
    assert window.seconds > 2 * 3600
    assert bconf.window_warning(settings().config) is None


def test_records_that_carry_their_schema_shorten_the_window():
    plain = bconf.configured_window(settings(serialization="json").config)
    with_schemas = bconf.configured_window(settings(serialization="json", archiveFormat="iceberg").config)
    assert with_schemas.kafka_seconds < plain.kafka_seconds / 2


def test_small_volumes_are_warned_of_naming_both_settings_and_the_window():
    warning = bconf.window_warning(settings(kafkaStorage="1Gi", postgresStorage="1Gi").config)
    assert "29 min" in warning and "kafkaStorage" in warning and "postgresStorage" in warning


def test_pulumi_up_states_the_window_and_warns_when_it_is_short(monkeypatch):
    warned = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *args, **kwargs: warned.append(message))
    run_stack("dev")
    assert not any("archive outage" in message for message in warned)
    graph = run_stack("dev", {"kafkaStorage": "1Gi"})
    assert graph.outputs["outageWindow"]["eventsPerSecond"] == 10_000
    assert graph.outputs["outageWindow"]["seconds"] == round(bconf.configured_window(
        settings(kafkaStorage="1Gi").config).seconds)
    assert any("archive outage of only" in message for message in warned)


@pytest.mark.parametrize("archive, sink", [("jsonl", "s3-sink"), ("iceberg", "iceberg-sink")])
def test_the_guard_watches_the_change_topics_against_the_sink_s_offsets_and_stops_the_source(archive, sink):
    guard = buffer_guard(settings(archiveFormat=archive, kafkaStorage="8Gi"))
    assert guard["connector.class"] == "dataingestion.connect.guard.BufferGuard" and guard["tasks.max"] == "1"
    assert guard["group"] == f"connect-{sink}"
    assert guard["topics.regex"] == CHANGE_TOPIC_PATTERN
    assert guard["capacity.bytes"] == str(8 * GiB)
    assert guard["connector"] == "postgres-source" and guard["rest.url"] == "http://localhost:8083"
    # The header the readiness probe sends, read from the mounted file: no credential in the config.
    assert guard["rest.authorization.file"] == "/run/secrets/connect-rest/authorization"
    assert float(guard["resume.at"]) < float(guard["free.at"]) < float(guard["stop.at"]) < 1
    source = debezium_source(settings(archiveFormat=archive, kafkaStorage="8Gi"), Database("db", 5432))
    # Change topics close a segment within the hour and at most 1/128 of a volume: freeable.
    assert source["topic.creation.default.segment.ms"] == "3600000"
    assert int(source["topic.creation.default.segment.bytes"]) == 64 * 2**20


def test_the_guard_is_a_connector_of_the_stack_beside_the_source_and_the_sink():
    graph = run_stack("dev")
    guard = graph.one("pulumi-python:dynamic:Resource", "buffer-guard")
    assert guard.inputs["connectorName"] == "buffer-guard"
    assert guard.inputs["config"] == buffer_guard(settings())
    assert graph.outputs["connectors"]["bufferGuard"]["name"] == "buffer-guard"


def report(stopped=False, unarchived=(10 * 2**20, 40 * 2**20), rate=2**20, capacity=GiB, at_ms=1_000_000):
    return GuardReport.parse(json.dumps({
        "at_ms": at_ms, "capacity": capacity, "free_at": 0.7, "stop_at": 0.85, "resume_at": 0.6, "stopped": stopped,
        "change_bytes_per_second": rate,
        "brokers": [{"id": i, "used": 2 * left, "change_bytes": 2 * left, "unarchived": left}
                    for i, left in enumerate(unarchived)],
    }))


SLOT = SlotHealth("slot", True, True, "reserved", safe_wal_size=600 * 2**20, retained=0, keep=640 * 2**20)


def test_status_counts_the_broker_with_the_most_not_yet_archived_and_the_slot_s_safe_wal():
    found = Buffers(report(), SLOT, wal_rate=2 * 2**20)
    assert found.window.kafka_seconds == pytest.approx((0.85 * GiB - 40 * 2**20) / 2**20)
    assert found.window.wal_seconds == pytest.approx(300)
    text = found.describe(now=1001)
    assert text.startswith("buffers: an archive outage from now loses nothing for 18 min") and "Kafka's volumes 13 min" in text
    assert found.ok is False  # under an hour


def test_status_says_the_source_is_stopped_and_how_long_the_wal_lasts():
    found = Buffers(report(stopped=True), SLOT, wal_rate=2 * 2**20)
    assert found.window.kafka_seconds == 0 and not found.ok
    assert "STOPPED" in found.describe(now=1001) and "5 min more" in found.describe(now=1001)
    assert "last looked 100 s ago" in found.describe(now=1100)


def test_no_changes_flowing_means_no_end():
    found = Buffers(report(rate=0), SLOT, wal_rate=0)
    assert found.window.seconds == float("inf") and found.ok
    assert "no change is being written, so an archive outage now loses nothing" in found.describe(now=1001)
