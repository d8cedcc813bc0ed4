"""Kafka Connect connectors as Pulumi resources: a dynamic provider over Connect's REST API.

Inputs: `connectUrl`, `connectAuth` ({username, password}, a secret: Connect's REST API asks for
them), `connectorName`, `config` (a map of strings), `timeoutSeconds`, an optional `clusterId` that
ties the connector to the cluster it lives in (a new cluster means a new connector), and for a
source an optional `slotWatch` ({dsn, slot}, a secret) naming its replication slot.
Outputs: the inputs plus `state`, `tasks` ([{id, state, workerId}]), `type`, `restartedTasks`, and
with `slotWatch` a `slot` summary (WAL held back, margin before invalidation), so that
`pulumi refresh` shows a source falling behind.

The provider is pickled by reference (this module must stay importable), runs on several threads
at once (no shared mutable state), and sees secrets in plain text (it never logs a config value).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pulumi
import requests
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult
from pulumi.output import Unknown

DEFAULT_TIMEOUT = 300
POLL_SECONDS = 1.0
# Where Connect is unreachable at delete time, the connector went with its cluster.
DELETE_REACH_SECONDS = 30
# After a config change or a restart, how long an old FAILED state may linger in the status.
RESTART_SETTLE_SECONDS = 5.0
TRANSIENT_STATUS = {408, 409, 429, 500, 502, 503, 504}
# A connector counts as healthy only once it has stayed RUNNING this long: a task that fails on its
# first records (a poison row, a refused write) reports RUNNING for several seconds before FAILED.
HEALTHY_SECONDS = 20.0
# How long reading the replication slot may take before it is reported as out of reach.
SLOT_CHECK_SECONDS = 5
# Inputs whose change means a different connector (in another Connect, or another cluster).
IDENTITY = ("connectUrl", "connectorName", "clusterId")


def is_unknown(value: Any) -> bool:
    """A value not known yet (preview): the provider host hands it over as `pulumi.output.Unknown`,
    as a whole input or inside the config map, never as the sentinel string of the wire."""
    return isinstance(value, Unknown)


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


class ConnectError(Exception):
    """Kafka Connect refused or failed a request; the message names the connector and the URL."""


@dataclass(frozen=True)
class ConnectClient:
    """The REST calls the provider makes, with retries for what Connect says is transient."""

    url: str
    connector: str
    timeout: float = DEFAULT_TIMEOUT
    auth: tuple[str, str] | None = None

    def where(self) -> str:
        return f"connector {self.connector!r} at Kafka Connect {self.url}"

    def request(self, method: str, path: str, body: Any = None, deadline: float | None = None) -> requests.Response:
        deadline = deadline if deadline is not None else time.monotonic() + self.timeout
        delay = 0.5
        while True:
            try:
                response = requests.request(method, self.url.rstrip("/") + path, json=body, timeout=30, auth=self.auth)
            except requests.ConnectionError as error:
                problem = f"cannot reach it ({error.__class__.__name__})"
                response = None
            else:
                if response.status_code == 401:
                    raise ConnectError(
                        f"{self.where()}: the REST API refused the stack's credentials (401). They are the "
                        "Secret connect-rest-credentials, mounted by the workers at start: a worker started "
                        "before the last change of that Secret needs a restart "
                        "(`kubectl -n <namespace> rollout restart statefulset/connect`)."
                    )
                if response.status_code not in TRANSIENT_STATUS:
                    return response
                problem = f"{method} {path} answered {response.status_code}: {_message(response)}"
            if time.monotonic() + delay > deadline:
                hint = (
                    " Is the Connect tier running? `kubectl -n <namespace> get pods -l "
                    "app.kubernetes.io/name=connect` and its logs say why not."
                    if response is None
                    else " A rebalance (409) should settle by itself; a 5xx persisting points at the worker's log."
                )
                raise ConnectError(f"{self.where()}: {problem}, still after {self.timeout:.0f}s.{hint}")
            _sleep(delay)
            delay = min(delay * 2, 5.0)

    def config(self) -> dict[str, str] | None:
        return self._read("config")

    def status(self) -> dict[str, Any] | None:
        return self._read("status")

    def _read(self, part: str) -> Any:
        """GET /connectors/<name>/<part>; None when the connector does not exist."""
        response = self.request("GET", f"/connectors/{quote(self.connector, safe='')}/{part}")
        if response.status_code == 404:
            return None
        self._expect(response, f"read the {part} of")
        return response.json()

    def put_config(self, config: Mapping[str, str]) -> None:
        response = self.request("PUT", f"/connectors/{quote(self.connector, safe='')}/config", dict(config))
        if response.status_code == 400:
            raise ConnectError(
                f"{self.where()}: the config was refused: {_message(response)}. "
                "Fix it in the stack (connectors/configs.py or the stack's settings) and run again."
            )
        self._expect(response, "write the config of")

    def restart_failed(self) -> None:
        response = self.request(
            "POST", f"/connectors/{quote(self.connector, safe='')}/restart?includeTasks=true&onlyFailed=true"
        )
        self._expect(response, "restart the failed tasks of")

    def delete(self, deadline: float | None = None) -> bool:
        """Delete the connector; False if it was not there."""
        response = self.request("DELETE", f"/connectors/{quote(self.connector, safe='')}", deadline=deadline)
        if response.status_code == 404:
            return False
        self._expect(response, "delete")
        return True

    def _expect(self, response: requests.Response, action: str) -> None:
        if response.status_code >= 300:
            raise ConnectError(f"cannot {action} {self.where()}: {response.status_code} {_message(response)}")


def _message(response: requests.Response) -> str:
    try:
        return str(response.json().get("message", response.text))
    except ValueError:
        return response.text[:500]


def tasks_of(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {"id": task["id"], "state": task["state"], "workerId": task.get("worker_id", "")}
        for task in sorted(status.get("tasks", []), key=lambda task: task["id"])
    ]


def failures_of(status: Mapping[str, Any]) -> list[str]:
    """A line per failed part of the connector, led by the root cause of its stack trace."""
    found = []
    if status["connector"]["state"] == "FAILED":
        found.append(f"connector: {root_cause(status['connector'].get('trace', ''))}")
    for task in status.get("tasks", []):
        if task["state"] == "FAILED":
            found.append(f"task {task['id']}: {root_cause(task.get('trace', ''))}")
    return found


# What to do next, for a failure whose own words do not say it.
NEXT_STEPS = {
    # The registry names the subject and Avro's reasons, not its rule.
    "RuleViolationException": "the registry's compatibility rule refused the table's changed schema; docs/avro.md "
                              "('Schema changes and the compatibility rule') says how to let it through",
}


def root_cause(trace: str) -> str:
    """The innermost exception of a Java stack trace (its last `Caused by:`), which is what went
    wrong; the outer ones only say where it surfaced (for a source task, usually the producer)."""
    lines = [line.strip() for line in trace.strip().splitlines()]
    if not lines:
        return "(no trace)"
    causes = [line.removeprefix("Caused by:").strip() for line in lines if line.startswith("Caused by:")]
    cause = f"{causes[-1]} (surfaced as: {lines[0]})" if causes else lines[0]
    steps = [step for marker, step in NEXT_STEPS.items() if marker in cause]
    return f"{cause}. Next: {' '.join(steps)}" if steps else cause


def wait_until_running(
    client: ConnectClient, timeout: float, settle: float = 0.0, healthy: float | None = None
) -> dict[str, Any]:
    """The connector's status once it and all of its tasks have stayed RUNNING for `healthy`
    seconds (a task that fails on its first records reports RUNNING until then); raise on FAILED
    or when the time is up. For `settle` seconds a FAILED state is taken as the old one, not yet
    replaced (after an update Connect briefly reports the old tasks)."""
    healthy = HEALTHY_SECONDS if healthy is None else healthy
    started = time.monotonic()
    deadline = started + max(timeout, healthy + POLL_SECONDS)
    running_since: float | None = None
    last: dict[str, Any] | None = None
    while True:
        status = client.status()
        last = status or last
        now = time.monotonic()
        if status is not None:
            failures = failures_of(status)
            if failures and now - started >= settle:
                raise ConnectError(
                    f"{client.where()} FAILED: " + "; ".join(failures) + ". The full trace is in "
                    f"`curl -u {client.auth[0] if client.auth else 'operator'}:<password> {client.url}/connectors/"
                    f"{client.connector}/status` (the password: "
                    "`pulumi stack output --show-secrets connectCredentials`) and the worker's log."
                )
            tasks = status.get("tasks", [])
            running = not failures and status["connector"]["state"] == "RUNNING" and tasks and all(
                task["state"] == "RUNNING" for task in tasks
            )
            running_since = (running_since or now) if running else None
            if running_since is not None and now - running_since >= healthy:
                return status
        else:
            running_since = None
        if now + POLL_SECONDS > deadline:
            state = "absent" if last is None else f"{last['connector']['state']}, tasks {tasks_of(last)}"
            raise ConnectError(f"{client.where()} is not RUNNING after {timeout:.0f}s (now: {state}).")
        _sleep(POLL_SECONDS)


def normalized(config: Mapping[str, Any]) -> dict[str, str]:
    """The config as Connect keeps it: string values, without the `name` Connect adds."""
    return {str(key): str(value) for key, value in config.items() if key != "name"}


class KafkaConnectorProvider(ResourceProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Validate what is known; an unknown input (preview) is checked once it is known."""
        failures = []
        url = news.get("connectUrl")
        if not is_unknown(url) and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
            failures.append(CheckFailure("connectUrl", f"{url!r} is not an http(s) URL of a Kafka Connect REST API"))
        name = news.get("connectorName")
        if not is_unknown(name) and (not isinstance(name, str) or not name or "/" in name):
            failures.append(CheckFailure("connectorName", f"{name!r} is not a connector name (non-empty, no '/')"))
        config = news.get("config")
        if not is_unknown(config):
            failures += _config_failures(config)
        auth = news.get("connectAuth")
        if auth is not None and not is_unknown(auth) and not (
            isinstance(auth, Mapping) and all(isinstance(auth.get(key), str) and auth.get(key)
                                              for key in ("username", "password") if not is_unknown(auth.get(key)))
        ):
            failures.append(CheckFailure("connectAuth", "must be {username, password}, both non-empty"))
        timeout = news.get("timeoutSeconds", DEFAULT_TIMEOUT)
        if not is_unknown(timeout) and (not isinstance(timeout, (int, float)) or timeout <= 0):
            failures.append(CheckFailure("timeoutSeconds", f"{timeout!r} must be a positive number of seconds"))
        return CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = _client(props)
        client.put_config(normalized(props["config"]))
        status = wait_until_running(client, _timeout(props))
        return CreateResult(props["connectorName"], _outputs(props, status, restarted=[]))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """Never calls Connect: runs in every preview. An unknown identity may be a new one: replace."""
        replaces = [key for key in IDENTITY if is_unknown(news.get(key)) or olds.get(key) != news.get(key)]
        changed = list(replaces)
        if _config_changed(olds.get("config"), news.get("config")):
            changed.append("config")
        for key in ("timeoutSeconds", "connectAuth"):
            if is_unknown(news.get(key)) or olds.get(key) != news.get(key):
                changed.append(key)
        return DiffResult(changes=bool(changed), replaces=replaces, stables=[], delete_before_replace=True)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        client = _client(news)
        if normalized(olds.get("config", {})) != normalized(news["config"]):
            client.put_config(normalized(news["config"]))
        restarted = _restart_failed(client)
        status = wait_until_running(client, _timeout(news), settle=RESTART_SETTLE_SECONDS)
        return UpdateResult(_outputs(news, status, restarted))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = _client(props)
        live = client.config()
        if live is None:
            return ReadResult("", {})  # deleted by hand: refresh drops it from the stack
        restarted = _restart_failed(client)
        status = client.status() or {"connector": {"state": "UNASSIGNED"}, "tasks": [], "type": ""}
        outputs = _outputs({**props, "config": normalized(live)}, status, restarted)
        return ReadResult(id_, outputs)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        client = _client(props)
        try:
            client.delete(deadline=time.monotonic() + min(_timeout(props), DELETE_REACH_SECONDS))
        except ConnectError as error:
            if "cannot reach" not in str(error):
                raise
            # Connect keeps connectors in its Kafka topics; with the worker gone for good (the
            # cluster was deleted) the connector is gone too.


def _config_failures(config: Any) -> list[CheckFailure]:
    if not isinstance(config, Mapping):
        return [CheckFailure("config", "must be a map of config keys to values")]
    failures = []
    connector_class = config.get("connector.class")
    if "connector.class" not in config:
        failures.append(CheckFailure("config", "connector.class is required"))
    elif not is_unknown(connector_class) and not connector_class:
        failures.append(CheckFailure("config", "connector.class must not be empty"))
    bad = [key for key, value in config.items() if isinstance(value, (Mapping, list))]
    if bad:
        failures.append(CheckFailure("config", f"values must be scalars; not {', '.join(sorted(bad))}"))
    return failures


def _config_changed(old: Any, new: Any) -> bool:
    if is_unknown(new) or not isinstance(new, Mapping) or not isinstance(old, Mapping):
        return True
    if any(is_unknown(value) for value in new.values()):
        return True
    return normalized(old) != normalized(new)


def _client(props: Mapping[str, Any]) -> ConnectClient:
    auth = props.get("connectAuth")
    credentials = (auth["username"], auth["password"]) if isinstance(auth, Mapping) else None
    return ConnectClient(props["connectUrl"], props["connectorName"], _timeout(props), credentials)


def _timeout(props: Mapping[str, Any]) -> float:
    return float(props.get("timeoutSeconds") or DEFAULT_TIMEOUT)


def _restart_failed(client: ConnectClient) -> list[int]:
    status = client.status()
    if status is None:
        return []
    failed = [task["id"] for task in status.get("tasks", []) if task["state"] == "FAILED"]
    if failed or status["connector"]["state"] == "FAILED":
        client.restart_failed()
    return failed


def _outputs(props: Mapping[str, Any], status: Mapping[str, Any], restarted: list[int]) -> dict[str, Any]:
    outputs = {
        "connectUrl": props["connectUrl"],
        "connectorName": props["connectorName"],
        "config": normalized(props["config"]),
        "timeoutSeconds": props.get("timeoutSeconds", DEFAULT_TIMEOUT),
        "clusterId": props.get("clusterId", ""),
        "state": status["connector"]["state"],
        "tasks": tasks_of(status),
        "type": status.get("type", ""),
        "restartedTasks": restarted,
    }
    if isinstance(props.get("connectAuth"), Mapping):
        outputs["connectAuth"] = dict(props["connectAuth"])  # kept for refresh and delete; a secret
    watch = props.get("slotWatch")
    if isinstance(watch, Mapping) and watch.get("dsn") and watch.get("slot"):
        outputs["slotWatch"] = dict(watch)  # kept for refresh, which sees only the outputs; a secret
        outputs["slot"] = slot_summary(watch["dsn"], watch["slot"])
    return outputs


def slot_summary(dsn: str, slot: str) -> dict[str, Any]:
    """The replication slot's health as outputs; a PostgreSQL out of reach (an existing cluster
    without a port-forward) is reported, not an error. Never carries the DSN."""
    from .slot import slot_health

    try:
        health = slot_health(dsn, slot, timeout=SLOT_CHECK_SECONDS)
    except Exception as error:  # noqa: BLE001 - any failure to look is a finding, not a failed update
        reason = str(error).splitlines()[0] if str(error) else error.__class__.__name__
        return {"ok": False, "summary": f"cannot read replication slot {slot}: {reason}"}
    return {
        "ok": health.ok,
        "summary": health.describe(),
        "walStatus": health.wal_status,
        "retainedBytes": health.retained,
        "safeWalBytes": health.safe_wal_size,
    }


class KafkaConnector(pulumi.dynamic.Resource):
    """A Kafka Connect connector, previewed, diffed, updated in place and deleted like any resource."""

    state: pulumi.Output[str]
    tasks: pulumi.Output[list]
    config: pulumi.Output[dict]
    slot: pulumi.Output[dict]

    def __init__(
        self,
        resource_name: str,
        connect_url: pulumi.Input[str],
        connector_name: pulumi.Input[str],
        config: pulumi.Input[Mapping[str, pulumi.Input[str]]],
        cluster_id: pulumi.Input[str] = "",
        timeout_seconds: int = DEFAULT_TIMEOUT,
        slot_watch: pulumi.Input[Mapping[str, str]] | None = None,
        connect_auth: pulumi.Input[Mapping[str, str]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        opts = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=["slotWatch", "connectAuth"]))
        super().__init__(
            KafkaConnectorProvider(),
            resource_name,
            {
                "connectUrl": connect_url,
                "connectAuth": connect_auth,
                "connectorName": connector_name,
                "config": config,
                "clusterId": cluster_id,
                "timeoutSeconds": timeout_seconds,
                "slotWatch": slot_watch,
                "slot": None,
                "state": None,
                "tasks": None,
                "type": None,
                "restartedTasks": None,
            },
            opts,
        )
