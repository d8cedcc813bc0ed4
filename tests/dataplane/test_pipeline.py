"""The rendered pipeline on real processes, one broker: validation, the provider, end to end.

With serialization json: the JSON the source writes, archived as it is (numerics as text, jsonb as
its JSON text) and the recovery from a type change that JSON lets through; tests/dataplane/test_avro.py
shows the stack's default, avro, on the same harness.
"""

import json
import os
import re
import subprocess
import time
from pathlib import Path

import grpc
import pytest
import requests
from confluent_kafka import Producer
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic,
                                   ResourceType)
from pulumi.runtime.proto import provider_pb2

from components import kafka_config as kconf
from components.formats import JSONL
from components.stack import parse_settings
from connectors import configs
from operations import smoke
from connectors.provider import root_cause
from tests import docs
from harness.tally import tally
from harness.dataplane.kafka import wait_for
from harness.dataplane.pipeline import deployed, stack_settings
from harness.providerhost import ProviderHost


pytestmark = pytest.mark.minutes(9)


@pytest.fixture(scope="module")
def pipeline():
    yield from deployed(stack_settings(brokers=1, serialization="json"))


def test_each_connector_config_passes_connects_own_validation(pipeline):
    for name, config in ((configs.SOURCE_NAME, pipeline.source_config()), (JSONL.sink_name, pipeline.sink_config()),
                         (configs.BUFFER_GUARD_NAME, pipeline.buffer_guard_config())):
        response = requests.put(
            f"{pipeline.connect.url}/connector-plugins/{config['connector.class']}/config/validate",
            json={**config, "name": name}, timeout=60, auth=pipeline.connect.auth,
        )
        assert response.status_code == 200, response.text
        result = response.json()
        errors = {item["value"]["name"]: item["value"]["errors"] for item in result["configs"] if item["value"]["errors"]}
        assert result["error_count"] == 0, errors


def test_inserts_updates_and_deletes_arrive_in_s3_per_table_topic(pipeline):
    [(customer,)] = pipeline.sql("INSERT INTO inventory.customers (email, full_name) VALUES ('ada@example.com', "
                                  "'Ada Lovelace') RETURNING id")
    [(order,)] = pipeline.sql("INSERT INTO inventory.orders (customer_id, amount, attributes) VALUES (%s, 1234.56, "
                               "'{\"gift\": true, \"tags\": [\"a\", \"b\"]}') RETURNING id", customer)
    pipeline.sql("UPDATE inventory.orders SET status = 'paid', amount = 99.90 WHERE id = %s", order)
    pipeline.sql("UPDATE inventory.customers SET full_name = 'Augusta Ada King' WHERE id = %s", customer)
    pipeline.sql("DELETE FROM inventory.orders WHERE id = %s", order)

    def events():
        found = [record for record in pipeline.s3_records()
                 if record["value"] and (record["value"]["after"] or record["value"]["before"] or {}).get("id")
                 in (customer, order)]
        orders = [r for r in found if r["topic"] == "cdc.inventory.orders"]
        return found if len(orders) >= 3 and len(found) >= 5 else None

    found = wait_for(events, 150, "the changes in S3", pipeline.connect.log, interval=2)
    by_topic = {}
    for record in found:
        by_topic.setdefault(record["topic"], []).append(record)
        assert record["_object"].startswith(f"cdc/{record['topic']}/partition={record['partition']}/")
    orders = [r["value"] for r in by_topic["cdc.inventory.orders"]]
    assert [event["op"] for event in orders] == ["c", "u", "d"]
    created, updated, deleted = orders
    assert created["after"]["amount"] == "1234.56"  # numeric stays exact
    assert created["after"]["attributes"] == '{"gift": true, "tags": ["a", "b"]}'  # jsonb as its JSON text
    assert updated["after"]["status"] == "paid" and updated["after"]["amount"] == "99.90"
    assert updated["before"]["status"] == "new"  # full before-images (REPLICA IDENTITY FULL)
    assert deleted["after"] is None and deleted["before"]["amount"] == "99.90"
    customers = [r["value"] for r in by_topic["cdc.inventory.customers"]]
    assert [event["op"] for event in customers] == ["c", "u"]
    assert customers[1]["after"]["full_name"] == "Augusta Ada King"
    assert customers[0]["source"]["table"] == "customers" and customers[0]["source"]["db"] == "appdb"


def run_make(script: str, pipeline, monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """scripts/<script>.py as `make verify` / `make status` run it, on the harness's endpoints
    (a live stack's come from `pulumi stack output` and kubectl): (exit code, stdout, stderr)."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "scripts"))
    import live_stack

    monkeypatch.setattr(live_stack, "endpoints", lambda stack: pipeline.endpoints())
    monkeypatch.setattr("sys.argv", [script, *args])
    module = __import__(script)
    code = module.main()
    shown = capsys.readouterr()
    return code, shown.out, shown.err


def test_make_verify_follows_a_marker_row_to_s3_and_checks_the_slot_and_the_archive(pipeline, monkeypatch, capsys):
    """With --json: one document a machine reads; the progress, line by line, on stderr."""
    code, out, err = run_make("verify", pipeline, monkeypatch, capsys, "--json", "--s3-timeout", "180")
    print(err)
    found = json.loads(out)
    assert code == 0 and found["ok"], out
    lines = [f"{smoke.MARKS[check['state']]} {check['message']}" for check in found["checks"]]
    assert err.splitlines()[:3] == lines[:3]  # each finding shown as it was found
    assert any(line.startswith("… the marker in the archive") for line in err.splitlines())
    assert [line.split(" ")[2] for line in lines[:3]] == ["postgres-source", "s3-sink", "buffer-guard"]
    assert lines[5].startswith("✔ S3: in s3://")
    assert lines[6].startswith("✔ Kafka: the TRUNCATE of cdc.marker in cdc.cdc.marker partition ")
    assert lines[7].startswith("✔ replication slot debezium_dev: active, wal_status reserved, holding ")
    assert lines[8].startswith("✔ capture: every published table with rows has its topic")
    assert lines[9].startswith(f"✔ archive: every committed offset of 3 tables ({3 * configs.TOPIC_PARTITIONS} "
                               "partitions) is in an object, no gap"), lines[9]
    tables = {table["topic"]: table for table in found["tables"]}
    assert sorted(tables) == ["cdc.cdc.marker", "cdc.inventory.customers", "cdc.inventory.orders"]
    marker = tables["cdc.cdc.marker"]
    assert marker["ok"] and marker["problems"] == [] and marker["objects"] >= 1 and marker["last_archived_at"]
    assert marker["committed"] + marker["pending"] == marker["written"] >= 2  # the marker row and the TRUNCATE


def test_make_status_reads_the_same_health_without_writing(pipeline, monkeypatch, capsys):
    """As a person reads it: a line per check, then a row per table, then the verdict."""
    code, out, _ = run_make("status", pipeline, monkeypatch, capsys)
    print(out)
    lines = out.splitlines()
    assert code == 0 and lines[-1] == "pipeline OK", out
    assert [line.split(" ")[1] for line in lines[:4]] == ["connector", "connector", "connector", "replication"]
    # How long an archive outage from now would be survived, from the buffer guard's report.
    assert lines[4].startswith("✔ buffers: ") and "loses nothing" in lines[4], lines[4]
    [header] = [line for line in lines if line.split()[:4] == ["table", "written", "archived", "pending"]]
    rows = lines[lines.index(header) + 1:-1]
    assert [row.split()[0] for row in rows] == ["cdc.marker", "inventory.customers", "inventory.orders"]
    assert all(row.endswith("OK") for row in rows)


def archived_names(pipeline, prefix):
    """full_name lengths of archived customer rows whose e-mail starts with `prefix`, by e-mail and op."""
    found = {}
    for record in pipeline.s3_records():
        value = record["value"] or {}
        after = value.get("after") or {}
        if str(after.get("email", "")).startswith(prefix):
            found.setdefault(after["email"], []).append((value["op"], len(after["full_name"])))
    return found


def test_a_row_above_max_record_bytes_stops_the_source_naming_it_and_raising_the_setting_loses_nothing(pipeline):
    limit = pipeline.settings.config.max_record_bytes.bytes
    # 2,000,000 characters fit the default 4Mi; so does its update, whose event holds the row twice.
    [(big,)] = pipeline.sql("INSERT INTO inventory.customers (email, full_name) VALUES ('big@size.test', "
                             "repeat('x', 2000000)) RETURNING id")
    pipeline.sql("UPDATE inventory.customers SET full_name = repeat('y', 2000000) WHERE id = %s", big)
    wait_for(lambda: len(archived_names(pipeline, "big@").get("big@size.test", [])) == 2, 150,
             "the 2,000,000-character row and its update in S3", pipeline.connect.log, 3)

    # Above the limit: the source stops at that row, with its table, key and the setting named.
    [(poison,)] = pipeline.sql("INSERT INTO inventory.customers (email, full_name) VALUES ('poison@size.test', "
                                "repeat('z', %s)) RETURNING id", limit + 1000)
    for i in range(20):
        pipeline.sql("INSERT INTO inventory.customers (email, full_name) VALUES (%s, 'after')", f"poison-after-{i}@size.test")

    task = wait_for(pipeline.failed_source_task, 120, "the source task to stop at the oversized row",
                    pipeline.connect.log)
    cause = root_cause(task["trace"])
    print(f"\nsource FAILED: {cause[:300]}")
    assert "cdc.inventory.customers" in cause and f"id={poison}" in cause and "maxRecordBytes" in cause

    time.sleep(10)  # nothing behind the oversized row may slip past it
    assert archived_names(pipeline, "poison") == {}

    # `pulumi up` without raising the limit restarts the task, which reports RUNNING for a few
    # seconds and fails again on the same row: the update must fail, not turn green.
    state = pipeline.state[configs.SOURCE_NAME]
    unchanged = pipeline.declared(configs.SOURCE_NAME, state["config"], like=configs.SOURCE_NAME)
    with ProviderHost() as host, pytest.raises(grpc.RpcError) as refused:
        host.update(configs.SOURCE_NAME, configs.SOURCE_NAME, state, unchanged)
    assert "FAILED" in refused.value.details() and "maxRecordBytes" in refused.value.details()

    # What `pulumi config set maxRecordBytes 8Mi` and `pulumi up` change, applied to the running harness:
    # the brokers' limit (which the topics follow), then the source's config through the provider host.
    raised = parse_settings("data-ingestion", "dev", {"kafkaBrokers": pipeline.settings.brokers,
                                                      "kafkaMemory": str(pipeline.settings.config.kafka_memory),
                                                      "serialization": pipeline.settings.config.serialization.name,
                                                      "maxRecordBytes": "8Mi"})
    broker = kconf.broker_properties(raised, 0, pipeline.kafka.endpoints)
    # (replica.fetch.max.bytes is not dynamic; the pod restarts with it, and a replica fetches an
    # oversized batch anyway)
    limit_entry = ConfigEntry("message.max.bytes", broker["message.max.bytes"], incremental_operation=AlterConfigOpType.SET)
    admin = AdminClient({"bootstrap.servers": pipeline.kafka.bootstrap, "log_level": 0})
    brokers = [ConfigResource(ResourceType.BROKER, str(node), incremental_configs=[limit_entry])
               for node in range(pipeline.settings.brokers)]
    for future in admin.incremental_alter_configs(brokers).values():
        future.result(30)
    raised_config = pipeline.source_config(raised)
    state = pipeline.state[configs.SOURCE_NAME]
    with ProviderHost() as host:
        updated = host.update(configs.SOURCE_NAME, configs.SOURCE_NAME, state,
                              pipeline.declared(configs.SOURCE_NAME, raised_config, like=configs.SOURCE_NAME))
    assert updated["state"] == "RUNNING" and updated["restartedTasks"] == [0]
    pipeline.state[configs.SOURCE_NAME] = updated

    expected = {"poison@size.test"} | {f"poison-after-{i}@size.test" for i in range(20)}
    found = wait_for(lambda: expected <= set(archived_names(pipeline, "poison")) and archived_names(pipeline, "poison"),
                     150, "the oversized row and the 20 behind it in S3", pipeline.connect.log, 3)
    lost = expected - set(found)
    tally(f"oversized row: committed {len(expected)}, archived {len(expected) - len(lost)}, lost {len(lost)}, "
          f"duplicates {sum(len(events) - 1 for events in found.values())}")
    assert found["poison@size.test"][0] == ("c", limit + 1000) and not lost


def orders_of(pipeline, customer):
    """{order id: [(op, amount), ...]} of the archived changes to orders of `customer`."""
    found = {}
    for record in pipeline.s3_records():
        value = record["value"] or {}
        row = value.get("after") or value.get("before") or {}
        if record["topic"] == "cdc.inventory.orders" and row.get("customer_id") == customer:
            found.setdefault(row["id"], []).append((value["op"], float(row["amount"])))
    return found


def test_a_type_change_while_the_source_is_behind_stops_it_clearly_and_skips_nothing(pipeline):
    [(customer,)] = pipeline.sql("INSERT INTO inventory.customers (email, full_name) VALUES ('typed@schema.test', "
                                  "'Typed') RETURNING id")
    pipeline.connect.kill()  # the source falls behind: the changes below wait in the WAL
    insert = "INSERT INTO inventory.orders (customer_id, amount) VALUES (%s, %s) RETURNING id"
    ids = [pipeline.sql(insert, customer, amount)[0][0] for amount in ("56.78", "12.50", "99.99")]
    pipeline.sql("ALTER TABLE inventory.orders ALTER COLUMN amount TYPE bigint USING round(amount)")
    ids += [pipeline.sql(insert, customer, amount)[0][0] for amount in (57, 13)]
    pipeline.connect.start()

    task = wait_for(pipeline.failed_source_task, 120, "the source to stop at the changes of the old type",
                    pipeline.connect.log)
    cause = root_cause(task["trace"])
    print(f"\nsource FAILED: {cause[:300]}")
    assert "NumberFormatException" in cause.split(" (surfaced as:")[0] and '"56.78"' in cause
    time.sleep(10)
    assert orders_of(pipeline, customer) == {}, "a change behind the failure slipped past it"

    # The README's recovery: the source decodes a change with the column's type of now, so the
    # changes written before the type change cannot be read after it. Drop the slot and restart the
    # source: it snapshots the captured tables again (snapshotMode when_needed). Every row arrives
    # with its current values; the history of the changes behind the failure is what is given up.
    pipeline.snapshot_source_again()
    found = wait_for(lambda: set(ids) <= set(orders_of(pipeline, customer)) and orders_of(pipeline, customer), 180,
                     "the five orders, by the new snapshot", pipeline.connect.log, 3)
    current = {order: events[-1] for order, events in found.items()}
    tally(f"type change: committed 5, archived {len(set(ids) & set(found))}, lost {len(set(ids) - set(found))}; "
          f"as snapshot rows: {sorted(current.values())}")
    assert sorted(amount for _, amount in current.values()) == [13.0, 13.0, 57.0, 57.0, 100.0]
    assert all(op == "r" for op, _ in current.values())

    # Caught up, a type change is just a change: the rows after it flow.
    pipeline.sql("ALTER TABLE inventory.orders ALTER COLUMN amount TYPE numeric(12, 2)")
    [(later,)] = pipeline.sql(insert, customer, "58.25")
    wait_for(lambda: orders_of(pipeline, customer).get(later) == [("c", 58.25)], 150,
             "an order after a type change made while caught up", pipeline.connect.log, 3)


def live_config(pipeline, name):
    return requests.get(f"{pipeline.connect.url}/connectors/{name}/config", timeout=10, auth=pipeline.connect.auth).json()


def test_the_provider_host_manages_a_connector_on_the_real_worker(pipeline):
    """Through the SDK's provider host, as the engine drives it: create, update in place, drift on
    refresh put back, a failed task restarted by refresh, delete."""
    admin = AdminClient({"bootstrap.servers": pipeline.kafka.bootstrap, "log_level": 0})
    admin.create_topics([NewTopic("probe", 1, 1)])["probe"].result(30)
    declared = {**pipeline.sink_config(), "file.max.records": "1"}
    del declared["topics.regex"]
    declared["topics"] = "probe"
    props = pipeline.declared("probe-sink", declared)

    with ProviderHost() as host:
        id_, created = host.up("probe-sink", props)
        assert id_ == "probe-sink"
        assert created["state"] == "RUNNING" and created["tasks"][0]["state"] == "RUNNING"

        updated_props = {**props, "config": {**declared, "file.rotate.interval.ms": "15000"}}
        assert host.diff("probe-sink", id_, created, updated_props).changes == provider_pb2.DiffResponse.DIFF_SOME
        updated = host.update("probe-sink", id_, created, updated_props)
        assert live_config(pipeline, "probe-sink")["file.rotate.interval.ms"] == "15000"
        assert updated["state"] == "RUNNING"

        # A hand edit shows as drift on refresh, and the next update puts the declared config back.
        requests.put(f"{pipeline.connect.url}/connectors/probe-sink/config",
                     json={**updated_props["config"], "file.compression": "none"}, timeout=30,
                     auth=pipeline.connect.auth).raise_for_status()
        _, refreshed = host.read("probe-sink", id_, updated, updated_props)
        assert refreshed["config"]["file.compression"] == "none"
        assert host.diff("probe-sink", id_, refreshed, updated_props).changes == provider_pb2.DiffResponse.DIFF_SOME
        restored = host.update("probe-sink", id_, refreshed, updated_props)
        assert restored["config"]["file.compression"] == "gzip"
        assert live_config(pipeline, "probe-sink")["file.compression"] == "gzip"

        # A record the converter cannot read fails the task (errors.tolerance=none); once the record
        # is gone, the restart that refresh performs brings the task back.
        producer = Producer({"bootstrap.servers": pipeline.kafka.bootstrap, "log_level": 0})
        producer.produce("probe", b"this is not JSON")
        producer.flush(30)

        def task_in(state):
            status = requests.get(f"{pipeline.connect.url}/connectors/probe-sink/status", timeout=10, auth=pipeline.connect.auth).json()
            return status["tasks"] and status["tasks"][0]["state"] == state

        wait_for(lambda: task_in("FAILED"), 60, "the probe task to fail", pipeline.connect.log)
        from confluent_kafka import TopicPartition

        admin.delete_records([TopicPartition("probe", 0, 1)])[TopicPartition("probe", 0, 1)].result(30)
        _, again = host.read("probe-sink", id_, restored, updated_props)
        assert again["restartedTasks"] == [0]
        wait_for(lambda: task_in("RUNNING"), 60, "the restarted probe task", pipeline.connect.log)
        time.sleep(3)
        assert task_in("RUNNING"), "the restarted task failed again"

        host.delete("probe-sink", id_, again)
        assert requests.get(f"{pipeline.connect.url}/connectors/probe-sink", timeout=10, auth=pipeline.connect.auth).status_code == 404
        assert host.read("probe-sink", id_, again, updated_props)[0] == ""


def test_the_stacks_connectors_through_the_provider_host_refresh_and_come_back_when_deleted_by_hand(pipeline):
    """The rendered connectors the fixture created through the host: a refresh finds no drift; one
    deleted by hand drops out on refresh and the next `up` creates it again; delete removes it."""
    with ProviderHost() as host:
        for name in (configs.SOURCE_NAME, JSONL.sink_name):
            outputs = pipeline.state[name]
            inputs = pipeline.declared(name, outputs["config"], like=name)
            id_, refreshed = host.read(name, name, outputs, inputs)
            assert id_ == name and refreshed["state"] == "RUNNING"
            assert host.diff(name, id_, refreshed, inputs).changes == provider_pb2.DiffResponse.DIFF_NONE
        # `pulumi refresh` shows the source's replication slot, read as the CDC role.
        source = pipeline.state[configs.SOURCE_NAME]
        inputs = pipeline.declared(configs.SOURCE_NAME, source["config"], like=configs.SOURCE_NAME)
        _, refreshed = host.read(configs.SOURCE_NAME, configs.SOURCE_NAME, source, inputs)
        print(f"\nrefresh: {refreshed['slot']['summary']}")
        assert refreshed["slot"]["ok"] is True and refreshed["slot"]["walStatus"] == "reserved"

        name = JSONL.sink_name
        outputs = pipeline.state[name]
        inputs = pipeline.declared(name, outputs["config"], like=name)
        requests.delete(f"{pipeline.connect.url}/connectors/{name}", timeout=30, auth=pipeline.connect.auth).raise_for_status()
        assert host.read(name, name, outputs, inputs)[0] == ""
        id_, recreated = host.up(name, inputs)
        assert recreated["state"] == "RUNNING" and live_config(pipeline, name)["s3.bucket"] == pipeline.archive.bucket
        pipeline.state[name] = recreated


def operations_commands():
    """The commands of docs/operations.md's Operations section that act on Connect, PostgreSQL or Kafka, in order."""
    blocks = re.findall(r"```sh\n(.*?)```", docs.section("docs/operations.md", "Operations"), re.S)
    prefixes = ("curl ", f"{KUBECTL_EXEC} postgres-0 -- psql ", f"{KUBECTL_EXEC} kafka-0 -- /opt/kafka/bin/kafka-consumer-groups.sh ")
    return [line.split("  #", 1)[0].strip() for block in blocks for line in block.splitlines() if line.startswith(prefixes)]


KUBECTL_EXEC = 'kubectl -n "$NS" exec'


def as_on_the_harness(pipeline, command):
    """The README's command as it runs here: the `kubectl exec` prefix dropped, Kafka's tool from its jars."""
    command = command.replace(f"{KUBECTL_EXEC} postgres-0 -- ", "")
    tool = f'java -cp "{pipeline.kafka.libs}/*" org.apache.kafka.tools.consumer.group.ConsumerGroupCommand'
    command = command.replace(f"{KUBECTL_EXEC} kafka-0 -- /opt/kafka/bin/kafka-consumer-groups.sh", tool)
    return command.replace("--bootstrap-server localhost:9092", f"--bootstrap-server {pipeline.kafka.bootstrap}")


def run_operation(pipeline, command):
    env = {
        **os.environ,
        "CONNECT": pipeline.connect.url, "AUTH": ":".join(pipeline.connect.auth),
        "PATH": f"{pipeline.pg.bin_dir}:{os.environ['PATH']}",
        "PGHOST": "127.0.0.1", "PGPORT": str(pipeline.pg.port), "PGPASSWORD": pipeline.pg.superuser_password,
    }
    result = subprocess.run(["bash", "-c", as_on_the_harness(pipeline, command)], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, f"{command}\n{result.stdout}{result.stderr}"
    return result.stdout


def test_the_operations_commands_of_the_docs_work_against_the_pipeline(pipeline):
    commands = operations_commands()
    status, lag, slot, restart, resnapshot, stop, drop_slot, delete_offsets, resume = commands
    assert '"state":"RUNNING"' in run_operation(pipeline, status).replace(" ", "")
    lag_report = run_operation(pipeline, lag)
    assert JSONL.sink_group in lag_report and "LAG" in lag_report
    slot_report = run_operation(pipeline, slot)
    assert pipeline.settings.names.replication_slot in slot_report and "reserved" in slot_report
    run_operation(pipeline, restart)

    orders_read = pipeline.snapshot_reads()["cdc.inventory.orders"]
    run_operation(pipeline, resnapshot)
    wait_for(lambda: pipeline.snapshot_reads()["cdc.inventory.orders"] > orders_read, 240, "orders re-snapshotted into S3",
             pipeline.connect.log, interval=5)

    customers_read = pipeline.snapshot_reads()["cdc.inventory.customers"]
    customers = pipeline.sql("SELECT count(*) FROM inventory.customers")[0][0]
    run_operation(pipeline, stop)
    wait_for(lambda: not pipeline.sql("SELECT active FROM pg_replication_slots")[0][0], 60, "the source's slot released")
    assert "(1 row)" in run_operation(pipeline, drop_slot)
    run_operation(pipeline, delete_offsets)
    run_operation(pipeline, resume)
    wait_for(lambda: pipeline.snapshot_reads()["cdc.inventory.customers"] >= customers_read + customers, 240,
             "every customer snapshotted again from a new slot", pipeline.connect.log, interval=5)
    assert pipeline.sql("SELECT count(*) FROM pg_replication_slots WHERE active")[0][0] == 1


def test_an_array_of_more_dimensions_than_its_column_is_archived_whole_in_the_sources_json(pipeline):
    """PostgreSQL lets an int[] column hold {{1,2},{3,4}}: no list of integers holds it, so the source
    carries it in a header and the sink puts it back in its place in the record's own JSON."""
    pipeline.sql("CREATE TABLE inventory.grids (id int PRIMARY KEY, cells int[], names text[])")
    pipeline.sql("""INSERT INTO inventory.grids VALUES (1, '{{1,2},{3,4}}', '{{"a\\"b",NULL},{c,d}}'), """
                 """(2, '{5,NULL}', '{"e f"}')""")

    def rows():
        found = {record["value"]["after"]["id"]: record["value"]["after"] for record in pipeline.s3_records()
                 if record["topic"] == "cdc.inventory.grids" and record["value"]}
        return found if len(found) == 2 else None

    found = wait_for(rows, 150, "the grids in S3", pipeline.connect.log, interval=3)
    assert found == {1: {"id": 1, "cells": [[1, 2], [3, 4]], "names": [['a"b', None], ["c", "d"]]},
                     2: {"id": 2, "cells": [5, None], "names": ["e f"]}}
