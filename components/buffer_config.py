"""How long the pipeline keeps every change while the archive cannot take them, as pure functions.

Two buffers lie between PostgreSQL and S3, one after the other:
1. Kafka's log volumes. The buffer guard (connect/buffer-guard/, a connector of its own) deletes
   change records the archive already holds once a volume passes FREE_AT of `kafkaStorage`, and
   stops the source at STOP_AT: no broker meets a full disk, whatever the outage's length.
2. PostgreSQL's WAL, held for the stopped source's replication slot up to `max_slot_wal_keep_size`.
   Past that PostgreSQL gives the slot up rather than its disk: the source stops, `make status` names
   the loss, and the recovery (a new snapshot) cannot bring back the deletes made meanwhile.
The window is the time the two take to fill at a rate; within it nothing is lost.
"""

from __future__ import annotations

from dataclasses import dataclass

from .kafka_config import SEGMENT
from .postgres_config import slot_wal_keep
from .settings import StackConfig

FREE_AT = 0.70
STOP_AT = 0.85
RESUME_AT = 0.60  # well below STOP_AT: a source resumed does not stop again at once
CHECK_INTERVAL_MS = 5000
# The guard's latest look at the volumes, for `make status`: one record, compacted.
REPORT_TOPIC = "pipeline.buffers"

# The rate the stack is built for, at which `pulumi up` states the window and warns below WARN_BELOW.
RATE = 10_000
WARN_BELOW_SECONDS = 3600
# Measured with `make bench`'s load (80% inserts, 20% updates of a narrow table): the WAL PostgreSQL
# writes for one change event with the table's replica identity FULL and a logical slot (what it
# takes on each broker's volume is its serialization's, components/formats.py). Wider rows take more
# of both: `make status` measures the live stack instead.
WAL_BYTES_PER_EVENT = 320


def change_segment_bytes(config: StackConfig) -> int:
    """Change topics roll small segments: a partition's open segment cannot be freed, and a volume
    holds many partitions."""
    return max(2**20, min(SEGMENT.bytes, config.kafka_storage.bytes // 128))


def kafka_bytes_per_event(config: StackConfig) -> float:
    return config.serialization.bytes_per_event(config.archive_format)


@dataclass(frozen=True)
class Window:
    """How long an archive outage may last, at a rate, before a change is lost."""

    kafka_seconds: float  # until the guard stops the source
    wal_seconds: float  # then until PostgreSQL gives up the slot

    @property
    def seconds(self) -> float:
        return self.kafka_seconds + self.wal_seconds

    def describe(self) -> str:
        return (f"{duration(self.seconds)} (Kafka's volumes {duration(self.kafka_seconds)}, then the replication "
                f"slot's WAL {duration(self.wal_seconds)})")


def window(kafka_headroom: float, kafka_bytes_per_second: float, wal_headroom: float,
           wal_bytes_per_second: float) -> Window:
    """The window from what each buffer has left and how fast it fills; at no rate, no end."""
    def lasts(headroom: float, rate: float) -> float:
        return max(0.0, headroom) / rate if rate > 0 else float("inf")
    return Window(lasts(kafka_headroom, kafka_bytes_per_second), lasts(wal_headroom, wal_bytes_per_second))


def kafka_headroom(capacity: float, unarchived: float) -> float:
    """What a volume takes before the guard stops the source: the guard frees whatever the archive
    holds, so only what is not archived yet counts against it."""
    return STOP_AT * capacity - unarchived


def configured_window(config: StackConfig, events_per_second: float = RATE) -> Window:
    """The window of a new stack (empty volumes) at `events_per_second` of the benchmark's events."""
    return window(kafka_headroom(config.kafka_storage.bytes, 0), events_per_second * kafka_bytes_per_event(config),
                  slot_wal_keep(config).bytes, events_per_second * WAL_BYTES_PER_EVENT)


def window_warning(config: StackConfig) -> str | None:
    found = configured_window(config)
    if found.seconds >= WARN_BELOW_SECONDS:
        return None
    return (f"At {RATE:,} change events/s this stack keeps every change through an archive outage of only "
            f"{found.describe()}; past that the deletes of the gap are lost. Raise kafkaStorage (Kafka's part) "
            f"or postgresStorage (the slot's part, half of it) for at least {duration(WARN_BELOW_SECONDS)}.")


def duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "no end"
    minutes = int(seconds // 60)
    if minutes < 1:
        return f"{int(seconds)} s"
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
