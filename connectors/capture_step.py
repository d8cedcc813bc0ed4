"""The database side of `capture` as Pulumi resources, run by `pulumi up` whenever it changes.

`CaptureStep` runs the capture SQL (components/postgres_config.capture_sql) as the superuser, before
the source connector is created or updated: the publication, the CDC role's grants, full
before-images, the event trigger for tables created later. It reports which tables it newly
published while the source was already streaming (its replication slot exists): those tables' rows
predate the stream. `SnapshotSignal` runs after the source's update and asks it, through Debezium's
signal table, for an incremental snapshot of exactly those tables; nothing else is snapshotted again.

The image's init SQL runs only on an empty data directory, so this is what keeps a running database
in line with the stack. Like the connector provider: pickled by reference (keep this module
importable), several threads at once, secrets in plain text (never logged).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import psycopg
import pulumi
from psycopg.sql import SQL, Identifier
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from components import postgres_config as pgconf

from .configs import execute_snapshot_signal
from .provider import is_unknown

CONNECT_SECONDS = 60  # a NodePort just created may take a moment to answer
WHERE = "PostgreSQL tier, capture step"


class CaptureError(Exception):
    """The capture step could not bring the database in line; the message says what to do."""


def _connect(dsn: str, what: str) -> psycopg.Connection:
    deadline = time.monotonic() + CONNECT_SECONDS
    while True:
        try:
            return psycopg.connect(dsn, connect_timeout=5)
        except psycopg.OperationalError as error:
            if time.monotonic() > deadline:
                reason = str(error).strip().splitlines()[-1] if str(error).strip() else error.__class__.__name__
                raise CaptureError(
                    f"{WHERE}: cannot reach PostgreSQL to {what}: {reason}. Is the postgres pod ready "
                    "(`kubectl -n <namespace> get pods -l app.kubernetes.io/name=postgres`)? With cluster=existing, "
                    "its NodePort must be reachable from this machine."
                ) from None
            time.sleep(2)


def published_tables(conn: psycopg.Connection) -> set[str]:
    """The user's tables in the publication (not the pipeline's own), as `schema.table`."""
    rows = conn.execute(
        "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = %s AND schemaname <> %s",
        (pgconf.PUBLICATION, pgconf.INTERNAL_SCHEMA),
    ).fetchall()
    return {row[0] for row in rows}


def not_captured(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    """What `capture` names that the database cannot capture: (the relation as SQL names it, as
    Debezium does, why and how to make it capturable)."""
    return [tuple(row) for row in conn.execute(f"SELECT relation, name, reason FROM {pgconf.INTERNAL_SCHEMA}.not_captured()")]


def _left_out(conn: psycopg.Connection) -> dict[str, Any]:
    """The outputs that say what is left out: `excluded` for the source's include list, `uncaptured`
    for people (`pulumi up` warns with each line, `pulumi stack output` shows them)."""
    found = not_captured(conn)
    return {"excluded": [name for _, name, _ in found],
            "uncaptured": [f"{relation}: {reason}" for relation, _, reason in found]}


def _warn(outputs: Mapping[str, Any]) -> None:
    for line in outputs.get("uncaptured") or []:
        pulumi.log.warn(f"{WHERE}: not captured: {line}")


def holds_rows(conn: psycopg.Connection, table: str) -> bool:
    """Whether table `schema.table` holds any row."""
    return conn.execute(SQL("SELECT EXISTS (SELECT FROM {})").format(Identifier(*table.split(".", 1)))).fetchone()[0]


def _needs_snapshot(conn: psycopg.Connection, table: str) -> tuple[bool, bool]:
    """(holds rows, has a primary key) of a table."""
    schema, name = table.split(".", 1)
    holds = holds_rows(conn, table)
    keyed = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE i.indisprimary AND n.nspname = %s AND c.relname = %s)", (schema, name)
    ).fetchone()[0]
    return holds, keyed


# The days from 1582-10-05 to 1582-10-14: PostgreSQL's proleptic calendar has them, the JDBC driver's
# (Julian before 1582-10-15) does not, and an incremental snapshot reads dates through it.
DAYS_THE_DRIVER_LACKS = ("1582-10-05", "1582-10-14")


def dates_the_driver_lacks(conn: psycopg.Connection, table: str) -> list[str]:
    """The date columns of `schema.table` holding one of those days: an incremental snapshot would
    archive each ten days later (the stream and the first snapshot read dates as text)."""
    schema, name = table.split(".", 1)
    columns = [column for (column,) in conn.execute(
        "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s AND a.atttypid = 'date'::regtype "
        "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", (schema, name))]
    if not columns:
        return []
    lacked = SQL(", ").join(SQL("bool_or({} BETWEEN %s AND %s)").format(Identifier(column)) for column in columns)
    [holds] = conn.execute(SQL("SELECT {} FROM {}").format(lacked, Identifier(schema, name)),
                           DAYS_THE_DRIVER_LACKS * len(columns)).fetchall()
    return [column for column, found in zip(columns, holds) if found]


def apply_capture(dsn: str, sql: str, slot: str) -> dict[str, Any]:
    """Run the capture SQL in one transaction; which tables are published now, and which of them
    need a snapshot (newly published, holding rows, while the source already streams)."""
    with _connect(dsn, "apply `capture`") as conn:
        before = published_tables(conn)
        streaming = conn.execute("SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = %s)",
                                 (slot,)).fetchone()[0]
        try:
            conn.execute(sql)
        except psycopg.Error as error:
            raise CaptureError(f"{WHERE}: the capture SQL failed: {str(error).strip()}") from None
        after = published_tables(conn)
        snapshot, unkeyed = [], []
        # Without the slot the source has not streamed yet: its first snapshot takes every table.
        for table in sorted(after - before) if streaming else []:
            holds, keyed = _needs_snapshot(conn, table)
            if holds and not keyed:
                unkeyed.append(table)
            elif holds:
                snapshot.append(table)
        if unkeyed:
            conn.rollback()
            raise CaptureError(
                f"{WHERE}: {', '.join(unkeyed)} holds rows but has no primary key, so the source cannot snapshot "
                "its existing rows incrementally (Debezium reads them in key order) and they would be missing from "
                "the archive. Give it a primary key (ALTER TABLE ... ADD PRIMARY KEY ...) and run `pulumi up` "
                "again; nothing was changed."
            )
        lacking = {table: columns for table in snapshot if (columns := dates_the_driver_lacks(conn, table))}
        if lacking:
            conn.rollback()
            raise CaptureError(
                f"{WHERE}: " + "; ".join(f"{table} holds dates from {DAYS_THE_DRIVER_LACKS[0]} to "
                                         f"{DAYS_THE_DRIVER_LACKS[1]} in {', '.join(columns)}"
                                         for table, columns in lacking.items())
                + ". PostgreSQL's calendar has these ten days, the JDBC driver's does not: the incremental snapshot "
                "that reads a table added to capture would archive each of them ten days later. Change those dates "
                "or leave the table out of `capture`, and run `pulumi up` again; nothing was changed."
            )
        [(position,)] = conn.execute("SELECT pg_current_wal_lsn()::text").fetchall()
        left_out = _left_out(conn)
    return {"published": sorted(after), "snapshot": snapshot, "revision": f"{position}/{uuid.uuid4().hex[:8]}",
            **left_out}


def _failures(news: Mapping[str, Any], texts: tuple[str, ...]) -> list[CheckFailure]:
    return [CheckFailure(key, f"{key} must be a non-empty string")
            for key in texts if not is_unknown(news.get(key)) and not (isinstance(news.get(key), str) and news[key])]


def _changed(olds: Mapping[str, Any], news: Mapping[str, Any], keys: tuple[str, ...]) -> list[str]:
    """The inputs that differ, or may (unknown in a preview)."""
    return [key for key in keys if is_unknown(news.get(key)) or olds.get(key) != news.get(key)]


class CaptureStepProvider(ResourceProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, _failures(news, ("dsn", "sql", "slot")))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """Never calls PostgreSQL: runs in every preview. Any change, a new cluster's database
        included, runs the step again."""
        changed = _changed(olds, news, ("dsn", "sql", "slot", "clusterId"))
        return DiffResult(changes=bool(changed), replaces=[], stables=[], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        outputs = apply_capture(props["dsn"], props["sql"], props["slot"])
        _warn(outputs)
        return CreateResult("capture", {**props, **outputs})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        outputs = apply_capture(news["dsn"], news["sql"], news["slot"])
        _warn(outputs)
        return UpdateResult({**news, **outputs})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """`pulumi refresh` shows what the publication holds now, and what is left out."""
        with _connect(props["dsn"], "read the publication") as conn:
            published = sorted(published_tables(conn))
            left_out = _left_out(conn)
        return ReadResult(id_, {**props, "published": published, **left_out})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """The publication goes with the database; a kept database keeps capturing until its slot is gone."""


class SnapshotSignalProvider(ResourceProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = _failures(news, ("dsn",))
        tables = news.get("tables")
        if not is_unknown(tables) and not (isinstance(tables, list) and all(isinstance(t, str) for t in tables)):
            failures.append(CheckFailure("tables", "tables must be a list of schema.table names"))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = _changed(olds, news, ("dsn", "tables", "revision"))
        return DiffResult(changes=bool(changed), replaces=[], stables=[], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult("snapshot-signal", {**props, "signal": self._signal(props)})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult({**news, "signal": self._signal(news)})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, props)  # a signal is an event: what was sent stays sent

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        pass

    @staticmethod
    def _signal(props: Mapping[str, Any]) -> str:
        tables = list(props.get("tables") or [])
        if not tables:
            return ""
        signal_id, kind, data = execute_snapshot_signal(tables)
        with _connect(props["dsn"], "ask the source for a snapshot") as conn:
            conn.execute(f"INSERT INTO {pgconf.SIGNAL_TABLE} (id, type, data) VALUES (%s, %s, %s)",
                         (signal_id, kind, data))
        pulumi.log.info(f"asked the source for an incremental snapshot of {', '.join(tables)} ({signal_id})")
        return signal_id


class CaptureStep(pulumi.dynamic.Resource):
    """The capture SQL, applied whenever it changes; `snapshot` names the tables the source must read."""

    published: pulumi.Output[list]
    snapshot: pulumi.Output[list]
    revision: pulumi.Output[str]
    excluded: pulumi.Output[list]
    uncaptured: pulumi.Output[list]

    def __init__(self, resource_name: str, dsn: pulumi.Input[str], sql: str, slot: str,
                 cluster_id: pulumi.Input[str] = "", opts: pulumi.ResourceOptions | None = None):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["dsn"]))
        super().__init__(CaptureStepProvider(), resource_name,
                         {"dsn": dsn, "sql": sql, "slot": slot, "clusterId": cluster_id,
                          "published": None, "snapshot": None, "revision": None, "excluded": None,
                          "uncaptured": None}, opts)


class SnapshotSignal(pulumi.dynamic.Resource):
    """An incremental-snapshot signal for `tables`, sent once per capture change that adds them."""

    signal: pulumi.Output[str]

    def __init__(self, resource_name: str, dsn: pulumi.Input[str], tables: pulumi.Input[list],
                 revision: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["dsn"]))
        super().__init__(SnapshotSignalProvider(), resource_name,
                         {"dsn": dsn, "tables": tables, "revision": revision, "signal": None}, opts)
