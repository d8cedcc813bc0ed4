"""Processes killed mid-stream on three brokers: nothing committed in PostgreSQL may be missing from S3.

Each test commits rows while a part of the pipeline fails and comes back, then waits until every
committed row is in S3 and prints committed / archived / lost / duplicates (at least once: duplicates
are allowed and counted; a missing row fails the test). Then the archive's completeness check, the
one `make verify` runs, must find every committed offset of every partition in an object.
tests/dataplane/test_outages.py has the outages (S3, an upload, the replication slot) on a pipeline
of its own, so that the two run side by side.
"""

from collections import Counter

import pytest

from harness.tally import tally
from harness.dataplane.kafka import wait_for
from harness.dataplane.pipeline import Load, archived, assert_archive_complete, deployed, run_with_fault, stack_settings

pytestmark = pytest.mark.minutes(6)


@pytest.fixture(scope="module")
def pipeline():
    yield from deployed(stack_settings(brokers=3), with_s3_proxy=True)


def test_connect_worker_killed_and_restarted_mid_stream(pipeline):
    run_with_fault(pipeline, "connect-killed", pipeline.kill_and_restart_connect)


def test_one_of_three_brokers_killed_mid_stream(pipeline):
    run_with_fault(pipeline, "broker-killed", pipeline.kill_and_restart_broker)


def test_postgres_restarted_mid_stream(pipeline):
    run_with_fault(pipeline, "postgres-restarted", pipeline.pg.restart)


def test_a_new_kafka_under_the_same_bucket_overwrites_nothing(pipeline):
    """The Kind cluster replaced, the bucket kept: the new Kafka's offsets start from 0 again, and
    its objects must land beside the old ones, not on top of them."""
    s3 = pipeline.s3_client()
    before = set(pipeline.s3_objects())
    assert before
    pipeline.replace_kafka()
    pipeline.deploy_connectors()  # Debezium's offsets went with the old Kafka: it snapshots again

    load = Load(pipeline, "new-kafka", rows=500)
    load.start()
    load.join(timeout=300)
    committed = set(load.committed)
    wait_for(lambda: committed <= set(archived(pipeline, "new-kafka")), 300, "the new cluster's rows in S3",
             pipeline.connect.log, 5)

    versions = Counter()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=pipeline.archive.bucket):
        for version in page.get("Versions", []):
            versions[version["Key"]] += 1
    overwritten = [key for key, count in versions.items() if count > 1]
    after = set(pipeline.s3_objects())
    tally(f"new-kafka: objects before {len(before)}, after {len(after)}, overwritten {len(overwritten)}, "
          f"committed {len(committed)}, lost {len(committed - set(archived(pipeline, 'new-kafka')))}")
    assert before <= after and not overwritten
    covered = pipeline.archive_coverage()
    assert all(partition.earlier_incarnations for partition in covered if partition.objects)
    assert_archive_complete(pipeline)
