"""How long an archive outage the running pipeline survives, for `make status`: the buffer guard's
last look at Kafka's volumes (its report topic) beside PostgreSQL's WAL, sampled for its rate.
The arithmetic is components/buffer_config.py's, the same `pulumi up` states at the design rate.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

import psycopg

from components import buffer_config as bconf

from connectors.slot import SlotHealth, size_text

WAL_SAMPLE_SECONDS = 3.0


@dataclass(frozen=True)
class GuardReport:
    """One round of the guard: each broker's volume use, and how fast the change topics grow."""

    at: float  # seconds since the epoch
    capacity: int
    stopped: bool  # the guard stopped the source
    change_bytes_per_second: float
    brokers: list[dict[str, int]]

    @classmethod
    def parse(cls, text: str) -> GuardReport:
        raw = json.loads(text)
        return cls(raw["at_ms"] / 1000, raw["capacity"], raw["stopped"], raw["change_bytes_per_second"],
                   raw["brokers"])

    @property
    def fullest(self) -> dict[str, int]:
        return max(self.brokers, key=lambda broker: broker["used"])

    @property
    def kafka_headroom(self) -> float:
        """The least any broker has left before the guard stops the source."""
        return min(bconf.kafka_headroom(self.capacity, broker["unarchived"]) for broker in self.brokers)


def latest_report(bootstrap: str, timeout: float = 10) -> GuardReport | None:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"status-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "log_level": 0})
    try:
        if bconf.REPORT_TOPIC not in consumer.list_topics(timeout=timeout).topics:
            return None
        partition = TopicPartition(bconf.REPORT_TOPIC, 0)
        low, high = consumer.get_watermark_offsets(partition, timeout=timeout)
        if high <= low:
            return None
        consumer.assign([TopicPartition(bconf.REPORT_TOPIC, 0, high - 1)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is not None and not message.error() and message.value():
                return GuardReport.parse(message.value().decode())
        return None
    finally:
        consumer.close()


def wal_bytes_per_second(dsn: str, seconds: float = WAL_SAMPLE_SECONDS) -> float:
    """How fast PostgreSQL writes WAL now: what a stopped source's slot would have to hold."""
    with psycopg.connect(dsn, connect_timeout=10, autocommit=True) as conn:
        first = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        started = time.monotonic()
        time.sleep(seconds)
        written = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)::bigint", (first,)).fetchone()[0]
    return written / (time.monotonic() - started)


@dataclass(frozen=True)
class Buffers:
    report: GuardReport
    slot: SlotHealth
    wal_rate: float

    @property
    def window(self) -> bconf.Window:
        wal_left = self.slot.safe_wal_size if self.slot.safe_wal_size is not None else 0
        if self.report.stopped:  # Kafka's part is spent: the outage already waits in the WAL
            return bconf.window(0, 1, wal_left, self.wal_rate)
        return bconf.window(self.report.kafka_headroom, self.report.change_bytes_per_second, wal_left, self.wal_rate)

    @property
    def ok(self) -> bool:
        return not self.report.stopped and self.window.seconds >= bconf.WARN_BELOW_SECONDS

    def describe(self, now: float | None = None) -> str:
        fullest = self.report.fullest
        use = (f"fullest Kafka volume {fullest['used'] / self.report.capacity:.0%} of kafkaStorage, "
               f"{size_text(fullest['unarchived'])} not archived yet")
        rates = f"{size_text(self.report.change_bytes_per_second)}/s into Kafka, {size_text(self.wal_rate)}/s of WAL"
        age = (now or time.time()) - self.report.at
        stale = f"; the guard last looked {age:.0f} s ago" if age > 3 * bconf.CHECK_INTERVAL_MS / 1000 else ""
        if self.report.stopped:
            return (f"buffers: the buffer guard STOPPED the source ({use}): changes wait in PostgreSQL's WAL, which "
                    f"the slot holds for {bconf.duration(self.window.wal_seconds)} more at "
                    f"{size_text(self.wal_rate)}/s; bring the archive back (S3, the sink connector) and the guard "
                    "resumes the source" + stale)
        if self.window.seconds == float("inf"):
            return f"buffers: no change is being written, so an archive outage now loses nothing ({use})" + stale
        return (f"buffers: an archive outage from now loses nothing for {self.window.describe()} at the current "
                f"rate ({rates}; {use})" + stale)


def buffers(bootstrap: str, dsn: str, slot: SlotHealth) -> Buffers | None:
    report = latest_report(bootstrap)
    if report is None:
        return None
    return Buffers(report, slot, wal_bytes_per_second(dsn))
