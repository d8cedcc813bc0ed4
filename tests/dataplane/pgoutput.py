"""Just enough of the pgoutput protocol to read what a slot streams: relations and inserted rows."""

from __future__ import annotations

import struct
from dataclasses import dataclass


@dataclass
class Insert:
    relation: str
    values: list[str | None]


def _cstring(data: bytes, offset: int) -> tuple[str, int]:
    end = data.index(b"\x00", offset)
    return data[offset:end].decode(), end + 1


def _tuple(data: bytes, offset: int) -> list[str | None]:
    (count,) = struct.unpack_from(">h", data, offset)
    offset += 2
    values: list[str | None] = []
    for _ in range(count):
        kind = data[offset:offset + 1]
        offset += 1
        if kind == b"t":
            (length,) = struct.unpack_from(">i", data, offset)
            offset += 4
            values.append(data[offset:offset + length].decode())
            offset += length
        else:  # n (null) or u (unchanged toast)
            values.append(None)
    return values


def inserts(messages: list[bytes]) -> list[Insert]:
    """Decode the Insert messages of a stream of pgoutput messages (protocol version 1)."""
    relations: dict[int, str] = {}
    found: list[Insert] = []
    for message in messages:
        tag = message[:1]
        if tag == b"R":
            (relation_id,) = struct.unpack_from(">I", message, 1)
            namespace, offset = _cstring(message, 5)
            name, _ = _cstring(message, offset)
            relations[relation_id] = f"{namespace}.{name}"
        elif tag == b"I":
            (relation_id,) = struct.unpack_from(">I", message, 1)
            assert message[5:6] == b"N"
            found.append(Insert(relations[relation_id], _tuple(message, 6)))
    return found
