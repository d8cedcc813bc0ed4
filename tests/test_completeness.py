"""The archive's completeness check, on listings: what counts as a gap and what does not."""

from operations.completeness import Partition, coverage, parse_key

ID = "7t3vC4IWfusAAAAAOt5osQ"
OLD = "AAAAAAAAAAAAAAAAAAAAAQ"


def key(first, last, topic_id=ID, partition=0, topic="cdc.inventory.customers"):
    return f"cdc/{topic}/partition={partition}/{topic}+{partition}+{first:020d}+{last:020d}+{topic_id}.jsonl.gz"


def objects(*ranges, topic_id=ID):
    return [parse_key(key(first, last, topic_id)) for first, last in ranges]


def partition(committed, start=0, end=None):
    return Partition("cdc.inventory.customers", 0, ID, committed, start, committed if end is None else end)


def test_a_key_the_sink_writes_is_parsed_and_others_are_not():
    parsed = parse_key(key(5, 9))
    assert (parsed.topic, parsed.partition, parsed.first, parsed.last, parsed.topic_id) == (
        "cdc.inventory.customers", 0, 5, 9, ID)
    assert parse_key("cdc/cdc.inventory.customers/partition=0/cdc.inventory.customers+0+00000000000000000000.jsonl.gz") is None
    assert parse_key("cdc/notes.txt") is None


def test_contiguous_and_overlapping_objects_cover_the_committed_offsets():
    covered = coverage(partition(300), objects((0, 99), (100, 199), (150, 299)))
    assert covered.ok and covered.archived_to == 299 and covered.objects == 3


def test_a_hole_below_the_committed_offset_is_a_gap_and_is_named():
    covered = coverage(partition(300), objects((0, 99), (200, 299)))
    assert not covered.ok and covered.gaps == [(100, 199)] and covered.archived_to == 99
    assert "GAP: offsets 100–199 are committed but in no object" in covered.describe()


def test_committed_but_never_written_is_a_gap_and_uncommitted_records_are_only_pending():
    behind = coverage(partition(300), objects((0, 99)))
    assert behind.gaps == [(100, 299)]
    pending = coverage(partition(100, end=450), objects((0, 99), (300, 399)))
    assert pending.ok and pending.pending == 350


def test_objects_of_an_earlier_topic_with_the_same_offsets_do_not_fill_a_gap():
    covered = coverage(partition(200), objects((0, 99)) + objects((0, 199), topic_id=OLD))
    assert covered.gaps == [(100, 199)] and covered.earlier_incarnations == {OLD: 1}
    assert f"1 object of an earlier topic (id {OLD})" in covered.describe()


def test_a_start_kafka_no_longer_holds_is_a_gap_said_so():
    covered = coverage(partition(500, start=200), objects((200, 499)))
    assert covered.gaps == [(0, 199)] and "Kafka no longer holds offsets below 200" in covered.describe()


def test_nothing_committed_yet_expects_nothing():
    for committed in (None, 0):
        covered = coverage(Partition("cdc.inventory.customers", 0, ID, committed, 0, 40), [])
        assert covered.ok and "nothing committed yet; 0 objects, 40 pending" in covered.describe()


def test_records_removed_from_kafka_before_the_sink_archived_them_are_lost_and_named():
    """The sink committed 300; Kafka's first offset is now 450 (retention, or records deleted):
    offsets 300–449 were never archived and can no longer be."""
    covered = coverage(partition(300, start=450, end=600), objects((0, 299)))
    assert not covered.ok and covered.expired == (300, 449) and not covered.gaps
    assert "LOST: offsets 300–449 were removed from Kafka (retention) before the sink archived them" in (
        covered.describe())
    assert coverage(partition(300, start=300, end=600), objects((0, 299))).ok  # archived exactly up to the start


def test_make_status_shows_a_row_per_table_and_machines_read_the_same_as_json():
    """Two partitions of one table (one with a gap) and another table: a row each, the gap under its
    table, the newest object's time; `--json` carries the same figures."""
    from datetime import datetime, timezone

    from operations.completeness import by_topic
    from operations.smoke import Report

    at = datetime(2026, 12, 4, 18, 0, 5, tzinfo=timezone.utc)
    customers = [coverage(Partition("cdc.inventory.customers", 0, ID, 300, 0, 310),
                          [parse_key(key(0, 299), at)]),
                 coverage(Partition("cdc.inventory.customers", 1, ID, 200, 0, 200),
                          [parse_key(key(0, 99, partition=1), at.replace(second=1))])]
    orders = [coverage(Partition("cdc.inventory.orders", 0, ID, None, 0, 0), [])]
    report = Report(tables=by_topic(orders + customers))
    table = report.table()
    assert table[0].split() == ["table", "written", "archived", "pending", "objects", "last", "archived", "at"]
    assert table[1].split() == ["inventory.customers", "510", "500", "10", "2", "2026-12-04", "18:00:05", "UTC",
                                "NOT", "OK"]
    assert table[2].strip().startswith("✘ cdc.inventory.customers partition 1: ") and "GAP: offsets 100–199" in table[2]
    assert table[3].split() == ["inventory.orders", "0", "0", "0", "0", "-", "OK"]
    found = report.as_dict()["tables"]
    assert [entry["topic"] for entry in found] == ["cdc.inventory.customers", "cdc.inventory.orders"]
    assert found[0] | {"problems": []} == {"topic": "cdc.inventory.customers", "ok": False, "written": 510,
                                           "committed": 500, "pending": 10, "objects": 2,
                                           "last_archived_at": "2026-12-04T18:00:05+00:00", "problems": []}
