"""A smoke check of a running pipeline: connectors RUNNING, then a marker row followed from
PostgreSQL into its Kafka topic and on into an S3 object, then the archive's completeness: every
committed offset of every change topic in an object. `make verify` runs it against a live stack;
the data-plane tests run it against their own processes.
"""

from __future__ import annotations

import gzip
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import psycopg
import requests

from components import postgres_config as pgconf
from components.formats import JSONL, ArchiveFormat

from connectors.capture_step import holds_rows, not_captured, published_tables
from connectors.configs import (
    BUFFER_GUARD_NAME, SOURCE_NAME, TOPIC_PREFIX, change_topic, iceberg_table,
    is_change_topic,
)
from connectors.provider import root_cause
from connectors.slot import SlotHealth, slot_health

from .buffers import buffers
from .completeness import Coverage, TopicCoverage, by_topic, check_archive

# The pipeline's own table, captured whatever `capture` names: the check touches no table of yours.
MARKER_TABLE = pgconf.MARKER_TABLE
MARKER_TOPIC = change_topic(MARKER_TABLE)


@dataclass(frozen=True)
class Endpoints:
    connect_url: str
    postgres_dsn: str  # a role that may insert into the captured tables
    kafka_bootstrap: str
    bucket: str
    prefix: str
    s3: Callable[[], Any]  # a boto3 S3 client factory with read access to the bucket
    replication_slot: str = ""  # the source's slot; empty: not checked
    connect_auth: tuple[str, str] | None = None  # Connect's REST credentials
    archive: ArchiveFormat = JSONL
    # A typed archive: the tables' Glue database, and a pyiceberg catalog factory that reads it
    glue_database: str = ""
    catalog: Callable[[], Any] | None = None
    # serialization avro: the registry's Confluent-compatible API, where a record's schema is read
    registry_url: str = ""

    @property
    def sink_name(self) -> str:
        return self.archive.sink_name

    def connect_status_hint(self, name: str) -> str:
        user = self.connect_auth[0] if self.connect_auth else "operator"
        return f"`curl -u {user}:<password> {self.connect_url}/connectors/{name}/status`"


MARKS = {"ok": "✔", "note": "!", "failed": "✘"}


@dataclass
class Report:
    """Each check's finding, in order, and the archive's state per table. `progress` is told each line
    as it is found: a check may wait minutes for the archive."""

    findings: list[tuple[str, str]] = field(default_factory=list)  # (state, message); state a MARKS key
    tables: list[TopicCoverage] = field(default_factory=list)
    ok: bool = True
    progress: Callable[[str], None] | None = None

    def _add(self, state: str, message: str) -> None:
        self.findings.append((state, message))
        if self.progress:
            self.progress(_line(state, message))

    def passed(self, message: str) -> None:
        self._add("ok", message)

    def noted(self, message: str) -> None:
        self._add("note", message)

    def failed(self, message: str) -> None:
        self._add("failed", message)
        self.ok = False

    def waiting(self, message: str) -> None:
        """What a check waits for now: progress only, not a finding."""
        if self.progress:
            self.progress(f"… {message}")

    @property
    def lines(self) -> list[str]:
        return [_line(state, message) for state, message in self.findings]

    def table(self) -> list[str]:
        """The archive per table: a row each, the problems of a partition under its table."""
        if not self.tables:
            return []
        rows = [("table", "written", "archived", "pending", "objects", "last archived at", "")]
        for topic in self.tables:
            last = topic.last_written_at
            rows.append((topic.topic.removeprefix(f"{TOPIC_PREFIX}."), f"{topic.written:,}", f"{topic.committed:,}",
                         f"{topic.pending:,}", f"{topic.objects:,}",
                         last.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if last else "-",
                         "OK" if topic.ok else "NOT OK"))
        widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
        lines = []
        for index, row in enumerate(rows):
            cells = [cell.ljust(width) if column in (0, 5, 6) else cell.rjust(width)
                     for column, (cell, width) in enumerate(zip(row, widths))]
            lines.append("  " + "  ".join(cells).rstrip())
            if index:
                lines += [f"    ✘ {problem}" for problem in self.tables[index - 1].problems]
        return lines

    def ending(self) -> list[str]:
        """What follows the findings: the archive's table, then the verdict."""
        return [*self.table(), "pipeline OK" if self.ok else "pipeline NOT OK"]

    def as_dict(self) -> dict[str, Any]:
        """For machines (`--json`): the verdict, each finding, each table's archive."""
        return {"ok": self.ok,
                "checks": [{"state": state, "message": message} for state, message in self.findings],
                "tables": [topic.as_dict() for topic in self.tables]}

    def __str__(self) -> str:
        return "\n".join([*self.lines, *self.ending()])


def _line(state: str, message: str) -> str:
    return f"{MARKS[state]} {message}"


def status(endpoints: Endpoints, progress: Callable[[str], None] | None = None) -> Report:
    """What `make status` prints, changing nothing: the connectors (with the root cause of a failure),
    the replication slot, and the archive's completeness per partition."""
    report = Report(progress=progress)
    _connectors_running(endpoints, report)
    check_buffers(endpoints, report, check_slot(endpoints, report))
    check_capture(endpoints, report)
    check_completeness(endpoints, report)
    return report


def capture_findings(endpoints: Endpoints) -> tuple[list[str], list[str]]:
    """(what is not captured, and why; what is captured but cannot reach the archive): the tables
    `capture` names that the database leaves out, each published table holding rows with no topic,
    and each topic of the source's that the sink does not read."""
    from confluent_kafka.admin import AdminClient

    topics = set(AdminClient({"bootstrap.servers": endpoints.kafka_bootstrap, "log_level": 0})
                 .list_topics(timeout=15).topics)
    with psycopg.connect(endpoints.postgres_dsn, autocommit=True, connect_timeout=10) as conn:
        found = not_captured(conn)
        left_out = [f"{relation}: {reason}" for relation, _, reason in found]
        # Only a table without a topic is read: whether it holds rows the source has not sent.
        silent = [table for table in sorted(published_tables(conn))
                  if change_topic(table) not in topics and holds_rows(conn, table)]
    unarchived = [f"{table} is published and holds rows, but has no topic {change_topic(table)}: the source has not "
                  f"read it (a table created a moment ago gets its topic with its first change; otherwise "
                  f"{endpoints.connect_status_hint(SOURCE_NAME)} says why)"
                  for table in silent]
    unarchived += [f"topic {topic} holds a captured table's changes, but the sink does not read it (its name does "
                   f"not match the sink's topics.regex); nothing in it reaches the archive"
                   for topic in sorted(topics) if topic.startswith(f"{TOPIC_PREFIX}.") and _is_table_topic(topic)
                   and not is_change_topic(topic)]
    include = _source_include_list(endpoints)
    unarchived += [f"{relation} is left out, but the source's include list still takes it (it became uncapturable "
                   "after the last `pulumi up`): a new snapshot would stop the source on it. `pulumi refresh` and "
                   "`pulumi up` take it out"
                   for relation, name, _ in found if any(re.fullmatch(pattern, name) for pattern in include)]
    return left_out, unarchived


def _source_include_list(endpoints: Endpoints) -> list[str]:
    """The source's table.include.list as Connect runs it (none when it cannot be read: the connector
    lines say why)."""
    try:
        response = requests.get(f"{endpoints.connect_url}/connectors/{SOURCE_NAME}/config", timeout=10,
                                auth=endpoints.connect_auth)
    except requests.RequestException:
        return []
    if response.status_code != 200:
        return []
    return [pattern for pattern in response.json().get("table.include.list", "").split(",") if pattern]


def _is_table_topic(topic: str) -> bool:
    """A topic the source writes a table's changes to (not its heartbeats, signals or schema history)."""
    return topic.count(".") >= 2 and not topic.startswith(change_topic(f"{pgconf.INTERNAL_SCHEMA}."))


def check_capture(endpoints: Endpoints, report: Report) -> None:
    """What `capture` names but the pipeline cannot capture is listed (a note, not a failure: the
    database's owner chose it); a captured table that cannot reach the archive fails."""
    try:
        left_out, unarchived = capture_findings(endpoints)
    except psycopg.Error as error:
        report.failed(f"PostgreSQL: cannot read what is captured: {error}".strip())
        return
    for line in left_out:
        report.noted(f"not captured: {line}")
    for line in unarchived:
        report.failed(f"capture: {line}")
    if not unarchived:
        report.passed("capture: every published table with rows has its topic, and the sink reads every table topic")


def archived_records(key: str, body: bytes) -> list[dict[str, Any]]:
    """The records of one object the S3 sink wrote: JSON Lines, gzip-compressed when the key says so.
    Numbers with a fraction are read as exact decimals (serialization avro writes numeric so)."""
    text = gzip.decompress(body).decode() if key.endswith(".gz") else body.decode()
    # JSON Lines end records with "\n" only: a value may hold U+2028 and the like, which splitlines() splits on.
    return [json.loads(line, parse_float=Decimal) for line in text.split("\n") if line]


def check(endpoints: Endpoints, kafka_timeout: float = 60, s3_timeout: float = 180,
          progress: Callable[[str], None] | None = None) -> Report:
    report = Report(progress=progress)
    if not _connectors_running(endpoints, report):
        return report
    marker = f"verify-{uuid.uuid4().hex[:12]}"
    start_offsets = _end_offsets(endpoints)
    committed_at = time.monotonic()
    wall_clock = datetime.now(timezone.utc)
    try:
        with psycopg.connect(endpoints.postgres_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f"INSERT INTO {MARKER_TABLE} (id) VALUES (%s)", (marker,))
    except psycopg.Error as error:
        report.failed(f"PostgreSQL: cannot insert the marker row: {error}".strip())
        return report
    report.passed(f"PostgreSQL: marker row {marker} committed into {MARKER_TABLE}")

    report.waiting(f"the marker in {MARKER_TOPIC} (up to {kafka_timeout:.0f} s)")
    found = _find_in_kafka(endpoints, start_offsets, lambda value: (value.get("after") or {}).get("id") == marker,
                           kafka_timeout)
    if found is None:
        report.failed(
            f"Kafka: the marker is not in {MARKER_TOPIC} after {kafka_timeout:.0f}s; the source connector's "
            f"status and the worker's log say why ({endpoints.connect_status_hint(SOURCE_NAME)})"
        )
        return report
    partition, offset = found
    report.passed(
        f"Kafka: in {MARKER_TOPIC} partition {partition} offset {offset}, "
        f"{time.monotonic() - committed_at:.1f}s after the commit"
    )

    report.waiting(f"the marker in the archive (up to {s3_timeout:.0f} s: the sink writes an object every "
                   "file.rotate.interval.ms)")
    found_in, missing = _find_in_archive(endpoints, marker, wall_clock, s3_timeout)
    if found_in is None:
        report.failed(missing)
        return report
    report.passed(f"{found_in}, {time.monotonic() - committed_at:.1f}s after the commit")
    check_truncate(endpoints, report, kafka_timeout)
    check_slot(endpoints, report)
    check_capture(endpoints, report)
    check_completeness(endpoints, report)
    return report


def check_truncate(endpoints: Endpoints, report: Report, timeout: float) -> None:
    """A TRUNCATE of the marker table (check rows only) reaches Kafka as an event of its own, as every
    captured table's does; the sinks write it like any change."""
    start_offsets = _end_offsets(endpoints)
    try:
        with psycopg.connect(endpoints.postgres_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f"TRUNCATE {MARKER_TABLE}")
    except psycopg.Error as error:
        report.failed(f"PostgreSQL: cannot truncate {MARKER_TABLE}: {error}".strip())
        return
    found = _find_in_kafka(endpoints, start_offsets, lambda value: value.get("op") == "t", timeout)
    if found is None:
        report.failed(f"Kafka: the TRUNCATE of {MARKER_TABLE} is not in {MARKER_TOPIC} after {timeout:.0f}s: is the "
                      f"source's skipped.operations none? ({endpoints.connect_status_hint(SOURCE_NAME)})")
        return
    report.passed(f"Kafka: the TRUNCATE of {MARKER_TABLE} in {MARKER_TOPIC} partition {found[0]} offset {found[1]}")


def _find_in_archive(endpoints: Endpoints, marker: str, since: datetime, timeout: float) -> tuple[str | None, str]:
    """Where the archive holds the marker ("S3: in …" or "Iceberg: in …"), or None and what to check."""
    hint = endpoints.connect_status_hint(endpoints.sink_name)
    if endpoints.archive.typed:
        table = iceberg_table(endpoints.glue_database, MARKER_TABLE)
        if _find_in_iceberg(endpoints, table, marker, timeout):
            return f"Iceberg: in {table}", ""
        return None, (f"Iceberg: the marker is not in {table} after {timeout:.0f}s; the sink commits every "
                      f"iceberg.control.commit.interval-ms — check {hint}")
    key = _find_in_s3(endpoints, marker, since, timeout)
    if key is not None:
        return f"S3: in s3://{endpoints.bucket}/{key}", ""
    return None, (f"S3: the marker is not under s3://{endpoints.bucket}/{endpoints.prefix}/{MARKER_TOPIC}/ after "
                  f"{timeout:.0f}s; the sink writes an object every file.rotate.interval.ms — check {hint}")


def check_slot(endpoints: Endpoints, report: Report) -> SlotHealth | None:
    if not endpoints.replication_slot:
        return None
    try:
        health = slot_health(endpoints.postgres_dsn, endpoints.replication_slot)
    except psycopg.Error as error:
        report.failed(f"PostgreSQL: cannot read the replication slot: {error}".strip())
        return None
    (report.passed if health.ok else report.failed)(health.describe())
    return health


def check_buffers(endpoints: Endpoints, report: Report, slot: SlotHealth | None) -> None:
    """How long an archive outage from now would last before a change is lost, or that one is on."""
    if slot is None or not slot.exists:
        return
    try:
        found = buffers(endpoints.kafka_bootstrap, endpoints.postgres_dsn, slot)
    except Exception as error:  # a line of the status, never the end of it
        report.noted(f"buffers: cannot read the buffer guard's report or the WAL's rate: {error}")
        return
    if found is None:
        report.noted(f"buffers: the buffer guard has not reported yet (connector {BUFFER_GUARD_NAME})")
        return
    if found.report.stopped:
        report.failed(found.describe())
    else:
        (report.passed if found.ok else report.noted)(found.describe())


def archive_coverage(endpoints: Endpoints) -> list[Coverage]:
    """The sink's coverage of every partition of each change topic."""
    return check_archive(endpoints.kafka_bootstrap, endpoints.archive.sink_group, is_change_topic, endpoints.s3,
                         endpoints.bucket, endpoints.prefix)


def check_completeness(endpoints: Endpoints, report: Report) -> None:
    """Does the archive hold every committed offset of every partition of each change topic? One
    line for all of them, the problems of each partition named; the figures per table in the table."""
    if endpoints.archive.typed:
        report.passed("archive: Iceberg's sink commits its offsets with its data files, so a committed offset is "
                      "in its table; each row's _cdc.topic/partition/offset lets a reader check (the per-partition "
                      "gap check reads JSONL objects only)")
        return
    report.tables = by_topic(archive_coverage(endpoints))
    if not report.tables:
        report.passed("archive: no change topic in Kafka yet: nothing captured, so nothing to archive")
        return
    partitions = [coverage for topic in report.tables for coverage in topic.partitions]
    bad = [coverage for coverage in partitions if not coverage.ok]
    for coverage in bad:
        report.failed(f"archive: {coverage.describe()}")
    if not bad:
        pending = sum(topic.pending for topic in report.tables)
        report.passed(f"archive: every committed offset of {len(report.tables)} tables ({len(partitions)} "
                      f"partitions) is in an object, no gap; {pending:,} record{'' if pending == 1 else 's'} pending")


def _connectors_running(endpoints: Endpoints, report: Report) -> bool:
    healthy = True
    for name in (SOURCE_NAME, endpoints.sink_name, BUFFER_GUARD_NAME):
        try:
            response = requests.get(f"{endpoints.connect_url}/connectors/{name}/status", timeout=10,
                                    auth=endpoints.connect_auth)
        except requests.RequestException as error:
            report.failed(f"Kafka Connect at {endpoints.connect_url} does not answer: {error.__class__.__name__}")
            return False
        if response.status_code == 401:
            report.failed(f"Kafka Connect at {endpoints.connect_url} refused the stack's credentials (401); "
                          "`pulumi stack output --show-secrets connectCredentials` shows them")
            return False
        if response.status_code == 404:
            report.failed(f"connector {name} does not exist; `pulumi up` creates it")
            healthy = False
            continue
        status = response.json()
        tasks = status.get("tasks", [])
        running = [task for task in tasks if task["state"] == "RUNNING"]
        if status["connector"]["state"] == "RUNNING" and tasks and len(running) == len(tasks):
            report.passed(f"connector {name} RUNNING ({len(running)}/{len(tasks)} tasks)")
        else:
            states = ", ".join(
                f"task {task['id']} {task['state']}" + (f": {root_cause(task['trace'])}" if task.get("trace") else "")
                for task in tasks
            ) or "no tasks"
            report.failed(f"connector {name} is {status['connector']['state']} ({states})")
            healthy = False
    return healthy


def _consumer(endpoints: Endpoints):
    from confluent_kafka import Consumer

    return Consumer({
        "bootstrap.servers": endpoints.kafka_bootstrap,
        "group.id": f"verify-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "log_level": 0,
    })


def _end_offsets(endpoints: Endpoints) -> dict[int, int]:
    from confluent_kafka import TopicPartition

    consumer = _consumer(endpoints)
    try:
        partitions = consumer.list_topics(MARKER_TOPIC, timeout=10).topics[MARKER_TOPIC].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(MARKER_TOPIC, p), timeout=10)[1] for p in partitions}
    finally:
        consumer.close()


def _decoder(endpoints: Endpoints) -> Callable[[bytes], dict[str, Any]]:
    """A change record's value as a dict: Avro through the registry (as a Confluent client reads it),
    or JSON, with or without the embedded schema."""
    if endpoints.registry_url:
        from confluent_kafka.schema_registry import SchemaRegistryClient
        from confluent_kafka.schema_registry.avro import AvroDeserializer
        from confluent_kafka.serialization import MessageField, SerializationContext

        avro = AvroDeserializer(SchemaRegistryClient({"url": endpoints.registry_url}))
        return lambda raw: avro(raw, SerializationContext(MARKER_TOPIC, MessageField.VALUE)) or {}

    def from_json(raw: bytes) -> dict[str, Any]:
        value = json.loads(raw) or {}
        if "schema" in value and "payload" in value:  # JSON with each record's schema embedded
            value = value["payload"] or {}
        return value

    return from_json


def _find_in_kafka(endpoints: Endpoints, start: dict[int, int], wanted: Callable[[dict[str, Any]], bool],
                   timeout: float) -> tuple[int, int] | None:
    """The partition and offset of the first change after `start` that is `wanted`; the topic may
    appear only with the first marker."""
    from confluent_kafka import TopicPartition

    decode = _decoder(endpoints)
    consumer = _consumer(endpoints)
    deadline = time.monotonic() + timeout
    assigned = False
    try:
        while time.monotonic() < deadline:
            if not assigned:
                partitions = consumer.list_topics(MARKER_TOPIC, timeout=10).topics[MARKER_TOPIC].partitions
                if not partitions:
                    time.sleep(1)
                    continue
                consumer.assign([TopicPartition(MARKER_TOPIC, p, start.get(p, 0)) for p in partitions])
                assigned = True
            message = consumer.poll(1.0)
            if message is None or message.error() or message.value() is None:
                continue
            if wanted(decode(message.value())):
                return message.partition(), message.offset()
        return None
    finally:
        consumer.close()


def _find_in_iceberg(endpoints: Endpoints, table: str, marker: str, timeout: float) -> bool:
    """Whether the marker's row is in its Iceberg table (created with the first marker ever)."""
    from pyiceberg.exceptions import NoSuchTableError
    from pyiceberg.expressions import EqualTo

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            rows = endpoints.catalog().load_table(table).scan(row_filter=EqualTo("id", marker),
                                                              selected_fields=("id",)).to_arrow()
            if rows.num_rows:
                return True
        except NoSuchTableError:
            pass
        time.sleep(3)
    return False


def _find_in_s3(endpoints: Endpoints, marker: str, since: datetime, timeout: float) -> str | None:
    s3 = endpoints.s3()
    folder = f"{endpoints.prefix}/{MARKER_TOPIC}/"
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while time.monotonic() < deadline:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=endpoints.bucket, Prefix=folder):
            for item in page.get("Contents", []):
                if item["Key"] in seen or item["LastModified"] < since - timedelta(seconds=5):
                    continue
                body = s3.get_object(Bucket=endpoints.bucket, Key=item["Key"])["Body"].read()
                seen.add(item["Key"])
                for record in archived_records(item["Key"], body):
                    if ((record["value"] or {}).get("after") or {}).get("id") == marker:
                        return item["Key"]
        time.sleep(2)
    return None
