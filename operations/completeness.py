"""Is the archive complete? For every partition of every change topic, the objects the S3 sink wrote
must cover each offset from the partition's first to the one the sink has committed, with no gap.

An object's key names its topic, partition, first and last offset and the topic's id (new for every
Kafka cluster or re-created topic), so coverage is read from a listing, without downloading objects.
Objects of an earlier incarnation of a topic (another id) are kept apart: they cannot fill a gap in
the current one. `make verify`, `make status` and the fault tests all use this check.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

KEY = re.compile(
    r"(?:^|/)(?P<topic>[^/]+)\+(?P<partition>\d+)\+(?P<first>\d{20})\+(?P<last>\d{20})\+(?P<topic_id>[A-Za-z0-9_-]+)"
    r"\.jsonl(?:\.gz)?$"
)


@dataclass(frozen=True)
class ArchivedObject:
    key: str
    topic: str
    partition: int
    first: int
    last: int
    topic_id: str
    written_at: datetime | None = None  # the listing's LastModified


def parse_key(key: str, written_at: datetime | None = None) -> ArchivedObject | None:
    """The object's offsets and topic id, from a key the sink wrote; None for any other key."""
    match = KEY.search(key)
    if match is None:
        return None
    return ArchivedObject(key, match["topic"], int(match["partition"]), int(match["first"]), int(match["last"]),
                          match["topic_id"], written_at)


@dataclass(frozen=True)
class Partition:
    """What Kafka says of one partition: the topic's id, the sink's committed offset (the next one it
    will archive; None before its first commit), and the partition's first and end offsets."""

    topic: str
    partition: int
    topic_id: str
    committed: int | None
    start: int
    end: int


@dataclass
class Coverage:
    partition: Partition
    objects: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)  # inclusive ranges, below `committed`
    archived_to: int = -1  # every offset from 0 up to here is archived
    earlier_incarnations: dict[str, int] = field(default_factory=dict)  # topic id → its objects
    # Offsets Kafka removed (retention, deleted records) before the sink archived them: lost.
    expired: tuple[int, int] | None = None
    last_written_at: datetime | None = None  # the newest object of the current topic

    @property
    def ok(self) -> bool:
        return not self.gaps and self.expired is None

    @property
    def pending(self) -> int:
        """Records in Kafka the sink has not committed yet (not a gap: they will be archived)."""
        committed = self.partition.committed or 0
        return max(0, self.partition.end - committed)

    def describe(self) -> str:
        p = self.partition
        where = f"{p.topic} partition {p.partition}"
        if not p.committed:
            state = f"nothing committed yet; {_count(self.objects, 'object')}, {self.pending} pending"
        else:
            state = (f"offsets 0–{p.committed - 1} committed, {_count(self.objects, 'object')}, "
                     f"archived to {self.archived_to}, {self.pending} pending")
        if self.gaps:
            missing = ", ".join(f"{first}–{last}" for first, last in self.gaps[:5])
            more = f" and {len(self.gaps) - 5} more" if len(self.gaps) > 5 else ""
            state += f"; GAP: offsets {missing}{more} are committed but in no object"
            if any(first < p.start for first, _ in self.gaps):
                state += f" (Kafka no longer holds offsets below {p.start})"
        if self.expired:
            first, last = self.expired
            state += (f"; LOST: offsets {first}–{last} were removed from Kafka (retention) before the sink "
                      "archived them")
        if self.earlier_incarnations:
            state += "; also " + ", ".join(
                f"{_count(count, 'object')} of an earlier topic (id {topic_id})"
                for topic_id, count in sorted(self.earlier_incarnations.items())
            )
        return f"{where}: {state}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def coverage(partition: Partition, objects: Iterable[ArchivedObject]) -> Coverage:
    """Walk the partition's objects in offset order; every offset below `committed` must be in one."""
    result = Coverage(partition)
    ranges = []
    for found in objects:
        if found.topic != partition.topic or found.partition != partition.partition:
            continue
        if found.topic_id != partition.topic_id:
            result.earlier_incarnations[found.topic_id] = result.earlier_incarnations.get(found.topic_id, 0) + 1
            continue
        ranges.append((found.first, found.last))
        if found.written_at and (result.last_written_at is None or found.written_at > result.last_written_at):
            result.last_written_at = found.written_at
    result.objects = len(ranges)
    expected = 0
    for first, last in sorted(ranges):
        if first > expected:
            result.gaps.append((expected, first - 1))
        expected = max(expected, last + 1)
    result.archived_to = (result.gaps[0][0] if result.gaps else expected) - 1
    committed = partition.committed or 0
    if expected < committed:
        result.gaps.append((expected, committed - 1))
    result.gaps = [(first, min(last, committed - 1)) for first, last in result.gaps if first < committed]
    if partition.committed is not None and partition.start > partition.committed:
        result.expired = (partition.committed, partition.start - 1)
    return result


@dataclass(frozen=True)
class TopicCoverage:
    """One change topic (one table) over its partitions: a row of `make status`'s archive table."""

    topic: str
    partitions: tuple[Coverage, ...]

    @property
    def ok(self) -> bool:
        return all(partition.ok for partition in self.partitions)

    @property
    def written(self) -> int:
        """Records the source has written to the topic, every partition's end offset added up."""
        return sum(coverage.partition.end for coverage in self.partitions)

    @property
    def committed(self) -> int:
        """Records the sink has committed: each is in an object, or a partition names the gap."""
        return sum(coverage.partition.committed or 0 for coverage in self.partitions)

    @property
    def pending(self) -> int:
        return sum(coverage.pending for coverage in self.partitions)

    @property
    def objects(self) -> int:
        return sum(coverage.objects for coverage in self.partitions)

    @property
    def last_written_at(self) -> datetime | None:
        return max((c.last_written_at for c in self.partitions if c.last_written_at), default=None)

    @property
    def problems(self) -> list[str]:
        """What each partition that is not OK lacks."""
        return [coverage.describe() for coverage in self.partitions if not coverage.ok]

    def as_dict(self) -> dict[str, Any]:
        last = self.last_written_at
        return {"topic": self.topic, "ok": self.ok, "written": self.written, "committed": self.committed,
                "pending": self.pending, "objects": self.objects,
                "last_archived_at": last.isoformat() if last else None, "problems": self.problems}


def by_topic(covered: Iterable[Coverage]) -> list[TopicCoverage]:
    topics: dict[str, list[Coverage]] = {}
    for coverage in covered:
        topics.setdefault(coverage.partition.topic, []).append(coverage)
    return [TopicCoverage(topic, tuple(partitions)) for topic, partitions in sorted(topics.items())]


def topic_id_text(uuid: Any) -> str:
    """A Kafka topic id as Java's `Uuid.toString()` writes it (URL-safe base64, no padding)."""
    raw = (uuid.get_most_significant_bits() & (2**64 - 1)).to_bytes(8, "big") + (
        uuid.get_least_significant_bits() & (2**64 - 1)
    ).to_bytes(8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def kafka_partitions(bootstrap: str, group: str, selected: Callable[[str], bool]) -> list[Partition]:
    """Each partition of the `selected` topics as Kafka sees it, with `group`'s committed offsets."""
    from confluent_kafka import Consumer, TopicCollection, TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    wanted = sorted(topic for topic in admin.list_topics(timeout=15).topics if selected(topic))
    if not wanted:
        return []
    described = admin.describe_topics(TopicCollection(wanted), request_timeout=15)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                         "log_level": 0})
    found = []
    try:
        for topic in wanted:
            try:
                description = described[topic].result()
            except Exception:  # the topic does not exist (yet): nothing to archive
                continue
            topic_id = topic_id_text(description.topic_id)
            numbers = [p.id for p in description.partitions]
            committed = consumer.committed([TopicPartition(topic, number) for number in numbers], timeout=15)
            for number, offset in zip(numbers, committed):
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, number), timeout=15)
                found.append(Partition(topic, number, topic_id, offset.offset if offset.offset >= 0 else None,
                                       low, high))
    finally:
        consumer.close()
    return found


def archived_objects(s3: Any, bucket: str, prefix: str, topics: Iterable[str]) -> list[ArchivedObject]:
    found = []
    for topic in topics:
        folder = f"{prefix}/{topic}/" if prefix else f"{topic}/"
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
            for item in page.get("Contents", []):
                parsed = parse_key(item["Key"], item.get("LastModified"))
                if parsed is not None:
                    found.append(parsed)
    return found


def check_archive(
    bootstrap: str, group: str, selected: Callable[[str], bool], s3: Callable[[], Any], bucket: str, prefix: str
) -> list[Coverage]:
    """The coverage of every partition of the `selected` topics in Kafka (the sink's own selection):
    Kafka's view against the bucket's listing."""
    partitions = kafka_partitions(bootstrap, group, selected)
    objects = archived_objects(s3(), bucket, prefix, sorted({partition.topic for partition in partitions}))
    return [coverage(partition, objects) for partition in partitions]
