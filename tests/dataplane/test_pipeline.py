"""The rendered pipeline on real processes, one broker: validation, the provider, end to end."""

import time

import psycopg
import pytest
import requests
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from connectors import configs, smoke
from connectors.provider import KafkaConnectorProvider
from tests.dataplane.kafka import wait_for
from tests.dataplane.pipeline import Pipeline, require_dataplane, stack_settings

provider = KafkaConnectorProvider()


@pytest.fixture(scope="module")
def pipeline():
    require_dataplane()
    running = Pipeline(stack_settings(brokers=1)).start()
    try:
        running.deploy_connectors()
        yield running
    finally:
        running.stop()


def sql(pipeline, statement, *params):
    with psycopg.connect(pipeline.pg.dsn(), autocommit=True) as conn:
        cursor = conn.execute(statement, params or None)
        return cursor.fetchall() if cursor.description else None


def test_each_connector_config_passes_connects_own_validation(pipeline):
    for name, config in ((configs.SOURCE_NAME, pipeline.source_config()), (configs.SINK_NAME, pipeline.sink_config())):
        response = requests.put(
            f"{pipeline.connect.url}/connector-plugins/{config['connector.class']}/config/validate",
            json={**config, "name": name}, timeout=60,
        )
        assert response.status_code == 200, response.text
        result = response.json()
        errors = {item["value"]["name"]: item["value"]["errors"] for item in result["configs"] if item["value"]["errors"]}
        assert result["error_count"] == 0, errors


def test_inserts_updates_and_deletes_arrive_in_s3_per_table_topic(pipeline):
    [(customer,)] = sql(pipeline, "INSERT INTO inventory.customers (email, full_name) VALUES ('ada@example.com', "
                                  "'Ada Lovelace') RETURNING id")
    [(order,)] = sql(pipeline, "INSERT INTO inventory.orders (customer_id, amount, attributes) VALUES (%s, 1234.56, "
                               "'{\"gift\": true, \"tags\": [\"a\", \"b\"]}') RETURNING id", customer)
    sql(pipeline, "UPDATE inventory.orders SET status = 'paid', amount = 99.90 WHERE id = %s", order)
    sql(pipeline, "UPDATE inventory.customers SET full_name = 'Augusta Ada King' WHERE id = %s", customer)
    sql(pipeline, "DELETE FROM inventory.orders WHERE id = %s", order)

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


def test_the_smoke_check_follows_a_marker_row_to_s3(pipeline):
    endpoints = smoke.Endpoints(
        connect_url=pipeline.connect.url,
        postgres_dsn=pipeline.pg.dsn(),
        kafka_bootstrap=pipeline.kafka.bootstrap,
        bucket=pipeline.archive.bucket,
        prefix=pipeline.archive.prefix,
        s3=lambda: pipeline.aws.client("s3", pipeline.operator),
    )
    report = smoke.check(endpoints)
    print(report)
    assert report.ok, str(report)
    assert len(report.lines) == 5 and report.lines[-1].startswith("✔ S3: in s3://")


def test_the_provider_manages_a_connector_on_the_real_worker(pipeline):
    admin = AdminClient({"bootstrap.servers": pipeline.kafka.bootstrap, "log_level": 0})
    admin.create_topics([NewTopic("probe", 1, 1)])["probe"].result(30)
    declared = {**pipeline.sink_config(), "topics": "probe", "file.max.records": "1"}
    props = pipeline.connector_props("probe-sink", declared, timeout=120)

    created = provider.create(props)
    assert created.outs["state"] == "RUNNING" and created.outs["tasks"][0]["state"] == "RUNNING"

    updated_props = {**props, "config": {**declared, "file.rotate.interval.ms": "15000"}}
    updated = provider.update("probe-sink", created.outs, updated_props)
    live = requests.get(f"{pipeline.connect.url}/connectors/probe-sink/config", timeout=10).json()
    assert live["file.rotate.interval.ms"] == "15000" and updated.outs["state"] == "RUNNING"

    # A hand edit shows as drift on refresh, and the next update puts the declared config back.
    requests.put(f"{pipeline.connect.url}/connectors/probe-sink/config",
                 json={**updated_props["config"], "file.compression": "none"}, timeout=30).raise_for_status()
    refreshed = provider.read("probe-sink", updated.outs)
    assert refreshed.outs["config"]["file.compression"] == "none"
    assert provider.diff("probe-sink", refreshed.outs, updated_props).changes is True
    restored = provider.update("probe-sink", refreshed.outs, updated_props)
    assert restored.outs["config"]["file.compression"] == "gzip"

    # A record the converter cannot read fails the task (errors.tolerance=none); once the record is
    # gone, the restart that refresh performs brings the task back.
    producer = Producer({"bootstrap.servers": pipeline.kafka.bootstrap, "log_level": 0})
    producer.produce("probe", b"this is not JSON")
    producer.flush(30)

    def task_failed():
        status = requests.get(f"{pipeline.connect.url}/connectors/probe-sink/status", timeout=10).json()
        return status["tasks"] and status["tasks"][0]["state"] == "FAILED"

    wait_for(task_failed, 60, "the probe task to fail", pipeline.connect.log)
    from confluent_kafka import TopicPartition

    admin.delete_records([TopicPartition("probe", 0, 1)])[TopicPartition("probe", 0, 1)].result(30)
    again = provider.read("probe-sink", restored.outs)
    assert again.outs["restartedTasks"] == [0]

    def task_running():
        status = requests.get(f"{pipeline.connect.url}/connectors/probe-sink/status", timeout=10).json()
        return status["tasks"] and status["tasks"][0]["state"] == "RUNNING"

    wait_for(task_running, 60, "the restarted probe task", pipeline.connect.log)
    time.sleep(3)
    assert task_running(), "the restarted task failed again"

    provider.delete("probe-sink", again.outs)
    assert requests.get(f"{pipeline.connect.url}/connectors/probe-sink", timeout=10).status_code == 404
    assert provider.read("probe-sink", again.outs).id == ""
