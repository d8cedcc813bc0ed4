"""The two choices a stack makes about its data, each one object that says everything that follows
from it: how changes travel through Kafka (`serialization`) and what the archive in S3 is
(`archiveFormat`). The settings parse a stack's values into these objects; every tier, connector
config, check and benchmark asks the object rather than comparing its name. A third format is one
more object here, and its tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from .plugins import AVRO_CONVERTER, COMMON_PLUGINS, ICEBERG_SINK, S3_SINK, Plugin
from .quantity import Memory


def _choose(kind: str, choices: dict[str, object], raw: object) -> object:
    if isinstance(raw, tuple(type(choice) for choice in choices.values())):
        return raw
    name = str(raw).strip()
    if name not in choices:
        names = " or ".join(repr(choice) for choice in choices)
        raise ValueError(f"{kind} is {names}")
    return choices[name]


@dataclass(frozen=True)
class Serialization:
    """How keys and values are written into Kafka, and what a stack then needs for it."""

    name: str
    converters: tuple[Plugin, ...]  # what Connect installs for it; Kafka's JsonConverter ships with the worker
    registry: bool  # each record names its schema in the schema registry instead of carrying it
    # Measured with `make bench`'s load (80% inserts, 20% updates of a narrow table): what one change
    # event takes on each broker's volume (every broker holds every partition), batched and compressed
    # as the source writes it (bench/results*.json, "wire").
    kafka_bytes_per_event: float

    def __str__(self) -> str:
        return self.name

    def schemas_in_records(self, archive: ArchiveFormat) -> bool:
        """A typed archive needs each change's schema; without a registry, every record carries it."""
        return archive.typed and not self.registry

    def bytes_per_event(self, archive: ArchiveFormat) -> float:
        return KAFKA_BYTES_PER_EVENT_WITH_SCHEMAS if self.schemas_in_records(archive) else self.kafka_bytes_per_event

    @staticmethod
    def parse(raw: object) -> Serialization:
        return _choose("serialization", SERIALIZATIONS, raw)  # type: ignore[return-value]


@dataclass(frozen=True)
class ArchiveFormat:
    """What the archive sink writes to S3, and what a stack then deploys and reads back."""

    name: str
    sink: Plugin
    sink_name: str  # the connector's name, so also its consumer group connect-<name>
    # The Connect pods' plugin volume: the verified downloads and the installed plugins.
    plugin_space: Memory
    # Typed tables cataloged in a Glue database (one per stack), read back with pyiceberg; the sink
    # needs each change's schema and Iceberg's control topic, and commits offsets with its tables, so
    # that an exactly-once source (whose transaction markers leave gaps in offsets) is archived exactly.
    typed: bool

    def __str__(self) -> str:
        return self.name

    @property
    def sink_group(self) -> str:
        """The consumer group Kafka Connect gives the sink connector: its committed offsets are what
        the sink has archived."""
        return f"connect-{self.sink_name}"

    @staticmethod
    def parse(raw: object) -> ArchiveFormat:
        return _choose("archiveFormat", ARCHIVE_FORMATS, raw)  # type: ignore[return-value]


AVRO = Serialization("avro", converters=(AVRO_CONVERTER,), registry=True, kafka_bytes_per_event=57.4)
JSON = Serialization("json", converters=(), registry=False, kafka_bytes_per_event=64.0)
KAFKA_BYTES_PER_EVENT_WITH_SCHEMAS = 139.5  # json, for a typed archive: each record carries its schema
SERIALIZATIONS = {choice.name: choice for choice in (AVRO, JSON)}

JSONL = ArchiveFormat("jsonl", sink=S3_SINK, sink_name="s3-sink", plugin_space=Memory.mebibytes(256), typed=False)
# Iceberg's sink is ~140 MB of jars, kept as downloads and installed.
ICEBERG = ArchiveFormat("iceberg", sink=ICEBERG_SINK, sink_name="iceberg-sink", plugin_space=Memory.mebibytes(512),
                        typed=True)
ARCHIVE_FORMATS = {choice.name: choice for choice in (JSONL, ICEBERG)}


def plugins_for(archive: ArchiveFormat, serialization: Serialization) -> tuple[Plugin, ...]:
    """What a stack's Connect workers install: the source's plugins, its archive format's sink and
    its serialization's converter."""
    return (*COMMON_PLUGINS, archive.sink, *serialization.converters)
