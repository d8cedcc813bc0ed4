"""Faults mid-stream on three brokers: nothing committed in PostgreSQL may be missing from S3.

Each test commits rows while a part of the pipeline is killed and brought back, then waits until
every committed row is in S3 and reports committed / in S3 / duplicates (at least once, so
duplicates are allowed and counted; a missing row fails the test).
"""

import threading
import time
from collections import Counter

import psycopg
import pytest

from tests.dataplane.kafka import wait_for
from tests.dataplane.pipeline import Pipeline, require_dataplane, stack_settings

ROWS = 3000
BATCH = 25


@pytest.fixture(scope="module")
def pipeline():
    require_dataplane()
    running = Pipeline(stack_settings(brokers=3)).start()
    try:
        running.deploy_connectors()
        yield running
    finally:
        running.stop()


class Load(threading.Thread):
    """Commits ROWS customer rows in small transactions; counts only what PostgreSQL acknowledged."""

    def __init__(self, pipeline: Pipeline, label: str):
        super().__init__(daemon=True)
        self.pipeline, self.label = pipeline, label
        self.committed: list[str] = []
        self.retries = 0

    def run(self) -> None:
        next_row = 0
        conn = None
        while next_row < ROWS:
            try:
                conn = conn or psycopg.connect(self.pipeline.pg.dsn(), connect_timeout=5)
                emails = [f"{self.label}-{i}@load.test" for i in range(next_row, min(next_row + BATCH, ROWS))]
                with conn.transaction():
                    conn.cursor().executemany(
                        "INSERT INTO inventory.customers (email, full_name) VALUES (%s, 'load')", [(e,) for e in emails]
                    )
                self.committed += emails
                next_row += len(emails)
                time.sleep(0.01)
            except psycopg.OperationalError:
                self.retries += 1  # PostgreSQL is restarting: this batch was not committed, try again
                conn = None
                time.sleep(0.5)

    def wait_for(self, rows: int, timeout: float = 120) -> None:
        wait_for(lambda: len(self.committed) >= rows, timeout, f"{rows} committed rows")


def archived(pipeline: Pipeline, label: str) -> Counter:
    emails = Counter()
    for record in pipeline.s3_records():
        after = (record["value"] or {}).get("after") or {}
        if str(after.get("email", "")).startswith(f"{label}-") and record["value"]["op"] in ("c", "r"):
            emails[after["email"]] += 1
    return emails


def run_with_fault(pipeline: Pipeline, label: str, fault) -> None:
    load = Load(pipeline, label)
    load.start()
    load.wait_for(ROWS // 3)
    fault()
    load.join(timeout=300)
    assert not load.is_alive(), "the load did not finish"
    committed = set(load.committed)

    def all_archived():
        seen = archived(pipeline, label)
        return seen if committed <= set(seen) else None

    try:
        seen = wait_for(all_archived, 300, f"all {len(committed)} rows of '{label}' in S3", pipeline.connect.log, 5)
    finally:
        seen = archived(pipeline, label)
        lost = len(committed - set(seen))
        duplicates = sum(count - 1 for count in seen.values())
        print(f"\n{label}: committed {len(committed)}, in S3 {len(committed & set(seen))}, "
              f"lost {lost}, duplicates {duplicates}, load retries {load.retries}")
    assert not committed - set(seen)


def test_connect_worker_killed_and_restarted_mid_stream(pipeline):
    def fault():
        pipeline.connect.kill()
        time.sleep(3)
        pipeline.connect.start()

    run_with_fault(pipeline, "connect-killed", fault)


def test_one_of_three_brokers_killed_mid_stream(pipeline):
    def fault():
        pipeline.kafka.kill(1)
        time.sleep(10)  # the load goes on with two brokers: min.insync.replicas is 2
        pipeline.kafka.restart_node(1)

    run_with_fault(pipeline, "broker-killed", fault)


def test_postgres_restarted_mid_stream(pipeline):
    run_with_fault(pipeline, "postgres-restarted", pipeline.pg.restart)
