"""The replication slot's health: how much WAL it holds back and how close it is to being lost.

PostgreSQL keeps WAL for the slot until Debezium confirms it, up to `max_slot_wal_keep_size`; past
that the slot is invalidated (`wal_status` = lost) and the changes it held are gone for the archive.
`safe_wal_size` is how much more WAL may be written before that happens.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

# Warn once less than this share of max_slot_wal_keep_size is left before the slot is lost.
WARN_SHARE = 0.5

QUERY = """
SELECT s.active, s.wal_status, s.safe_wal_size, s.confirmed_flush_lsn::text, pg_current_wal_lsn()::text,
       pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint AS retained,
       pg_size_bytes(current_setting('max_slot_wal_keep_size') || CASE
           WHEN current_setting('max_slot_wal_keep_size') ~ '^-?[0-9]+$' THEN 'MB' ELSE '' END) AS keep
  FROM pg_replication_slots s WHERE s.slot_name = %s
"""


@dataclass(frozen=True)
class SlotHealth:
    slot: str
    exists: bool
    active: bool = False
    wal_status: str = ""
    safe_wal_size: int | None = None  # bytes; None when the slot is not limited (or lost)
    retained: int | None = None  # bytes of WAL held back for the slot
    keep: int | None = None  # max_slot_wal_keep_size in bytes; negative: unlimited
    confirmed: str | None = None  # the last position the source confirmed (an LSN)
    current: str | None = None  # where the WAL is now

    @property
    def ok(self) -> bool:
        return self.exists and self.wal_status in ("reserved", "extended") and not self.at_risk

    @property
    def gap(self) -> str:
        """The WAL the archive may miss once the slot is lost: from the source's last confirmed LSN on."""
        return f"LSN {self.confirmed or 'unknown'} to {self.current}, in every captured table"

    @property
    def at_risk(self) -> bool:
        return (self.safe_wal_size is not None and self.keep is not None and self.keep > 0
                and self.safe_wal_size < WARN_SHARE * self.keep)

    def describe(self) -> str:
        if not self.exists:
            return (f"replication slot {self.slot} does not exist: the source creates it when it starts; "
                    "if it was dropped or lost, changes made meanwhile are not in the archive (docs/operations.md: "
                    "'When something fails')")
        held = "no WAL (its position is gone)" if self.retained is None else f"{size_text(self.retained)} of WAL"
        text = (f"replication slot {self.slot}: {'active' if self.active else 'INACTIVE'}, "
                f"wal_status {self.wal_status}, holding {held}")
        if self.safe_wal_size is not None:
            text += f", {size_text(self.safe_wal_size)} more before it is invalidated"
        if self.wal_status in ("unreserved", "lost"):
            text += (f" — LOST or about to be: the source cannot read past it. Drop it "
                     f"(`SELECT pg_drop_replication_slot('{self.slot}')` as the postgres user); the source then "
                     "snapshots the captured tables again (snapshotMode when_needed). Deletes made since its last "
                     f"position ({self.gap}) cannot be recovered (docs/operations.md: 'When something fails')")
        elif self.at_risk:
            text += " — WARNING: the source is far behind; bring Kafka Connect back before the slot is lost"
        return text


def size_text(count: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(count) >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def slot_health(dsn: str, slot: str, timeout: int = 10) -> SlotHealth:
    with psycopg.connect(dsn, connect_timeout=timeout) as conn:
        row = conn.execute(QUERY, (slot,)).fetchone()
    if row is None:
        return SlotHealth(slot, exists=False)
    active, wal_status, safe, confirmed, current, retained, keep = row
    return SlotHealth(slot, True, bool(active), wal_status or "", safe, retained, keep, confirmed, current)
