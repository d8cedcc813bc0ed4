"""A stand-in for Kafka Connect's REST API on loopback, answering as Connect does.

Status codes and bodies follow Connect's contract: 201 with the connector on create and 200 on
update of PUT /connectors/{name}/config; 404 `{"error_code": 404, "message": "Connector x not
found"}`; 409 while the group rebalances; 400 with the validation errors for a bad config; 204 on
DELETE; 202 with the status on POST .../restart?includeTasks=true&onlyFailed=true. A new or updated
connector is UNASSIGNED for a few status reads, then RUNNING. Faults are injected by the tests.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

WORKER = "10.244.1.7:8083"


@dataclass
class Connector:
    config: dict[str, str]
    state: str = "UNASSIGNED"
    tasks: list[dict[str, Any]] = field(default_factory=list)
    reads_until_running: int = 2
    fail_tasks_with: str | None = None  # a trace: the tasks fail instead of starting
    # (status reads while RUNNING, trace): the tasks start, then fail on their first records
    fail_later: tuple[int, str] | None = None

    @property
    def type(self) -> str:
        return "sink" if "Sink" in self.config.get("connector.class", "") else "source"

    def advance(self) -> None:
        if self.state == "RUNNING" and all(task["state"] != "RESTARTING" for task in self.tasks):
            if self.fail_later is not None:
                reads, trace = self.fail_later
                if reads <= 0:
                    self.tasks = [{**task, "state": "FAILED", "trace": trace} for task in self.tasks]
                    self.fail_later = None
                else:
                    self.fail_later = (reads - 1, trace)
            return
        if self.reads_until_running > 0:
            self.reads_until_running -= 1
            return
        self.state = "RUNNING"
        count = int(self.config.get("tasks.max", "1"))
        if self.fail_tasks_with:
            self.tasks = [{"id": i, "state": "FAILED", "worker_id": WORKER, "trace": self.fail_tasks_with}
                          for i in range(count)]
        else:
            self.tasks = [{"id": i, "state": "RUNNING", "worker_id": WORKER} for i in range(count)]

    def status(self, name: str) -> dict[str, Any]:
        return {"name": name, "connector": {"state": self.state, "worker_id": WORKER}, "tasks": self.tasks,
                "type": self.type}


class ConnectDouble:
    def __init__(self) -> None:
        self.connectors: dict[str, Connector] = {}
        self.requests: list[tuple[str, str]] = []
        self.faults: list[tuple[int, str]] = []  # answered, in order, before any real handling
        self.invalid_keys: set[str] = set()  # keys whose presence makes a config invalid
        self.tasks_fail_on_start: dict[str, str] = {}  # connector name → the trace its tasks fail with
        self.tasks_fail_later: dict[str, tuple[int, str]] = {}  # connector name → Connector.fail_later
        self.start_reads = 2  # status reads before a new connector is RUNNING
        self.lock = threading.Lock()
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                with double.lock:
                    status, answer = double.handle(self.command, self.path, body)
                self._answer(status, answer)

            do_GET = do_PUT = do_POST = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, status: int, count: int = 1, message: str = "") -> None:
        self.faults += [(status, message)] * count

    def fail_task(self, name: str, task_id: int, trace: str) -> None:
        with self.lock:
            task = self.connectors[name].tasks[task_id]
            task.update(state="FAILED", trace=trace)

    def handle(self, method: str, raw_path: str, body: Any) -> tuple[int, Any]:
        url = urlparse(raw_path)
        self.requests.append((method, raw_path))
        if self.faults:
            status, message = self.faults.pop(0)
            return status, {"error_code": status, "message": message or "Request cannot be completed"}
        parts = [unquote(part) for part in url.path.strip("/").split("/")]
        if parts == ["connectors"] and method == "GET":
            return 200, sorted(self.connectors)
        if len(parts) < 2 or parts[0] != "connectors":
            return 404, {"error_code": 404, "message": "HTTP 404 Not Found"}
        name, rest = parts[1], parts[2:]
        connector = self.connectors.get(name)
        missing = (404, {"error_code": 404, "message": f"Connector {name} not found"})
        if rest == ["config"] and method == "PUT":
            errors = sorted(key for key in body if key in self.invalid_keys)
            if errors:
                return 400, {
                    "error_code": 400,
                    "message": f"Connector configuration is invalid and contains the following {len(errors)} "
                    "error(s):\n" + "\n".join(f"Invalid value for configuration {key}" for key in errors)
                    + "\nYou can also find the above list of errors at the endpoint "
                    "`/connector-plugins/{connectorType}/config/validate`",
                }
            config = {str(key): str(value) for key, value in body.items()}
            created = connector is None
            if created:
                self.connectors[name] = connector = Connector(
                    config={**config, "name": name},
                    fail_tasks_with=self.tasks_fail_on_start.get(name),
                    fail_later=self.tasks_fail_later.get(name),
                    reads_until_running=self.start_reads,
                )
            else:
                connector.config = {**config, "name": name}
                connector.reads_until_running = 1
                connector.state = "UNASSIGNED"
            return (201 if created else 200), {"name": name, "config": connector.config, "tasks": [],
                                               "type": connector.type}
        if connector is None:
            return missing
        if rest == ["config"] and method == "GET":
            return 200, connector.config
        if rest == ["status"] and method == "GET":
            connector.advance()
            return 200, connector.status(name)
        if rest == [] and method == "DELETE":
            del self.connectors[name]
            return 204, None
        if rest == ["restart"] and method == "POST":
            query = parse_qs(url.query)
            only_failed = query.get("onlyFailed") == ["true"]
            for task in connector.tasks:
                if task["state"] == "FAILED" or not only_failed:
                    task.pop("trace", None)
                    task["state"] = "RESTARTING"
            connector.fail_tasks_with = None
            connector.reads_until_running = 1
            return 202, connector.status(name)
        return 405, {"error_code": 405, "message": "HTTP 405 Method Not Allowed"}
