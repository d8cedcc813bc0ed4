"""Connect's REST API on two real workers of one group, with the stack's worker properties: it asks
for the stack's credentials, forwards between the workers with them, refuses a client override
outside the allowlist, and no connector config can read the REST credentials."""

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests

from components import connect_config as cconf
from components.formats import JSON, JSONL, plugins_for
from components.plugins import S3_SINK
from harness.dataplane.kafka import ConnectWorker, KafkaCluster, wait_for
from harness.dataplane.pipeline import require_dataplane, stack_settings
from harness.dataplane.plugins import installed_plugins

SETTINGS = stack_settings(brokers=1, connectWorkers=2)

pytestmark = pytest.mark.minutes(1.5)


@pytest.fixture(scope="module")
def workers():
    require_dataplane()
    root = Path(tempfile.mkdtemp(prefix="di-rest-"))
    kafka = None
    started = []
    try:
        plugin_dir = installed_plugins(plugins_for(JSONL, JSON))
        for folder in (cconf.POSTGRES_CREDENTIALS, cconf.S3_CREDENTIALS):
            (root / "secrets" / folder).mkdir(parents=True)
        kafka = KafkaCluster(SETTINGS).start()
        for _ in range(2):
            started.append(ConnectWorker(SETTINGS, kafka, plugin_dir, root / "secrets").start())
        yield started
    finally:
        for worker in started:
            worker.stop()
        if kafka is not None:
            kafka.stop()
        shutil.rmtree(root, ignore_errors=True)


def sink(worker, **extra):
    """A sink on an empty topic: its task runs without ever calling S3."""
    return {"connector.class": S3_SINK.class_name, "tasks.max": "1", "topics": "rest-probe",
            "kafka.bootstrap.servers": worker.kafka.bootstrap, "s3.bucket": "rest-probe", "s3.region": "us-east-1",
            "s3.endpoint": "http://127.0.0.1:9", "s3.path.style.access": "true",
            "aws.access.key.id": "AKIAREST", "aws.secret.access.key": "not-used", **extra}


ENDPOINTS = [
    ("GET", "/"), ("GET", "/connectors"), ("GET", "/connector-plugins"), ("GET", "/connectors/any/status"),
    ("GET", "/connectors/any/config"), ("PUT", "/connectors/any/config"), ("POST", "/connectors/any/restart"),
    ("DELETE", "/connectors/any"), ("GET", "/admin/loggers"), ("PUT", "/connector-plugins/any/config/validate"),
]


def test_every_endpoint_asks_for_the_stacks_credentials(workers):
    worker = workers[0]
    for method, path in ENDPOINTS:
        anonymous = requests.request(method, worker.url + path, json={}, timeout=10)
        wrong = requests.request(method, worker.url + path, json={}, timeout=10, auth=(cconf.REST_USER, "wrong"))
        assert (anonymous.status_code, wrong.status_code) == (401, 401), f"{method} {path}"
    assert requests.get(worker.url + "/", timeout=10, auth=worker.auth).status_code == 200
    assert requests.get(worker.url + "/connectors", timeout=10, auth=worker.auth).json() == []


def test_the_readiness_probe_asks_with_the_mounted_credentials(workers):
    worker = workers[0]
    probe = cconf.readiness_command(worker.port, str(worker.rest_dir))
    assert subprocess.run(probe, timeout=30).returncode == 0
    elsewhere = Path(tempfile.mkdtemp(prefix="di-probe-"))
    (elsewhere / cconf.REST_AUTHORIZATION_FILE).write_text("Basic b3BlcmF0b3I6d3Jvbmc=")  # operator:wrong
    assert subprocess.run(cconf.readiness_command(worker.port, str(elsewhere)), timeout=30).returncode != 0
    shutil.rmtree(elsewhere)


def test_both_workers_take_requests_and_forward_them_to_the_leader_with_the_credentials(workers):
    # One of the two is not the group's leader: a write sent to it is forwarded, with its credentials.
    for index, worker in enumerate(workers):
        name = f"rest-probe-{index}"
        response = requests.put(f"{worker.url}/connectors/{name}/config", json=sink(worker), timeout=60,
                                auth=worker.auth)
        assert response.status_code in (200, 201), response.text

    def running():
        states = []
        for index in range(2):
            status = requests.get(f"{workers[1 - index].url}/connectors/rest-probe-{index}/status", timeout=10,
                                  auth=workers[0].auth).json()
            states.append((status["connector"]["state"], [task["state"] for task in status.get("tasks", [])]))
        return states if all(state == ("RUNNING", ["RUNNING"]) for state in states) else None

    states = wait_for(running, 120, "both probe connectors RUNNING", workers[0].log, interval=2)
    workers_of_tasks = {requests.get(f"{workers[0].url}/connectors/rest-probe-{i}/status", timeout=10,
                                     auth=workers[0].auth).json()["tasks"][0]["worker_id"] for i in range(2)}
    print(f"\ntwo workers: {states}, tasks on {sorted(workers_of_tasks)}")
    for index in range(2):
        assert requests.delete(f"{workers[index].url}/connectors/rest-probe-{index}", timeout=60,
                               auth=workers[index].auth).status_code == 204


def test_a_client_override_outside_the_allowlist_is_refused_by_connect(workers):
    worker = workers[0]
    allowed = sink(worker, **{"consumer.override.max.poll.records": "100"})
    assert requests.put(f"{worker.url}/connectors/allowed/config", json=allowed, timeout=60,
                        auth=worker.auth).status_code in (200, 201)
    requests.delete(f"{worker.url}/connectors/allowed", timeout=60, auth=worker.auth)
    for key, value in (("consumer.override.bootstrap.servers", "attacker:9092"),
                       ("consumer.override.security.protocol", "PLAINTEXT"),
                       ("consumer.override.interceptor.classes", "x.Y")):
        refused = requests.put(f"{worker.url}/connectors/redirected/config", json=sink(worker, **{key: value}),
                               timeout=60, auth=worker.auth)
        assert refused.status_code == 400, (key, refused.text)
        assert "may not be overridden by a connector" in refused.text, refused.text
    assert requests.get(f"{worker.url}/connectors/redirected", timeout=10, auth=worker.auth).status_code == 404


def resolved(worker, value: str) -> str:
    """What the worker's config providers make of `value` in a connector config: Connect's own
    validation resolves the placeholders and answers with each value of type string."""
    config = sink(worker, **{"s3.prefix": value})
    response = requests.put(f"{worker.url}/connector-plugins/{S3_SINK.class_name}/config/validate",
                            json={**config, "name": "thief"}, timeout=60, auth=worker.auth)
    assert response.status_code == 200, response.text
    [prefix] = [item["value"] for item in response.json()["configs"] if item["value"]["name"] == "s3.prefix"]
    return str(prefix["value"])


def test_no_connector_config_can_read_the_rest_credentials(workers):
    worker = workers[0]
    # What a connector may read: a file of the AWS key's folder resolves.
    s3_folder = Path(worker.properties["config.providers.directory.param.allowed.paths"].split(",")[1])
    (s3_folder / "probe-value").write_text("visible")
    assert resolved(worker, f"${{directory:{s3_folder}:probe-value}}") == "visible"
    # The REST credentials beside them do not.
    stolen = resolved(worker, f"${{directory:{worker.rest_dir}:{cconf.REST_CREDENTIALS_FILE}}}")
    assert worker.auth[1] not in stolen and stolen.startswith("${directory:"), stolen
