"""One row holding every PostgreSQL type a user may have, edge values included, and what each value
must be in the archive: shared by the JSON Lines tests (test_capture) and the Iceberg ones."""

import math
from datetime import date, datetime, time, timezone
from decimal import Decimal


SNAPSHOT_ONLY = "in a snapshot: "
# One column per case: PostgreSQL's type, a value, and that value as the default stack's archive
# (typed JSON lines) must hold it. Where the archive cannot hold it yet, why (README, "What is captured").
TYPE_CASES = [
    ("numeric", "1.500", Decimal("1.500"), None),
    ("numeric(10,2)", "12.30", Decimal("12.30"), None),
    ("numeric", "'NaN'", "NaN", None),
    ("numeric", "'-Infinity'", "-Infinity", None),
    ("numeric", "'Infinity'", "Infinity", None),
    ("numeric(10,2)", "'NaN'", "NaN", None),
    ("numeric", "0.000", Decimal("0.000"), None),
    ("money", "-0.01", Decimal("-0.01"), None),
    ("real", "'NaN'", "NaN", None),
    ("double precision", "'-Infinity'", "-Infinity", None),
    ("smallint", "-32768", -32768, None),
    ("bigint", "9223372036854775807", 9223372036854775807, None),
    ("boolean", "true", True, None),
    ("timestamp", "'2026-01-02 03:04:05.123456'", "2026-01-02T03:04:05.123456", None),
    ("timestamp", "'infinity'", "infinity", None),
    ("timestamp", "'-infinity'", "-infinity", None),
    ("timestamptz", "'2026-01-02 03:04:05.123456+02'", "2026-01-02T01:04:05.123456Z", None),
    ("timestamptz", "'-infinity'", "-infinity", None),
    ("date", "'2026-01-02'", "2026-01-02", None),
    ("date", "'0044-03-15 BC'", "-0043-03-15", None),  # ISO 8601's year -43 is 44 BC
    ("date", "'1500-03-01'", "1500-03-01", None),  # Julian 1500-02-19: the JDBC driver's calendar
    ("date", "'1582-10-10'", "1582-10-10", SNAPSHOT_ONLY + "the ten days Gregory skipped are not in the JDBC "
                                           "driver's calendar: read by a snapshot, 1582-10-10 is 1582-10-20"),
    ("date", "'infinity'", "infinity", None),
    ("date", "'-infinity'", "-infinity", None),
    ("time", "'23:59:59.999999'", "23:59:59.999999", None),
    ("time", "'24:00:00'", "24:00:00", None),
    ("timetz", "'10:00:00+02'", "08:00:00Z", None),
    ("interval", "'1 year 2 months 3 days 04:05:06.789'", "P1Y2M3DT4H5M6.789S", None),
    ("interval", "'178000000 years'", "P178000000Y0M0DT0H0M0S", None),
    ("interval", "'-1 mon +2 days'", "P0Y-1M2DT0H0M0S", None),
    ("bytea", "'\\x00ff'", "AP8=", None),
    ("bytea", "''", "", None),
    ("jsonb", "'{\"a\": [1, 2.50]}'", '{"a": [1, 2.50]}', None),
    ("json", "'null'", "null", None),
    ("uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", None),
    ("int[]", "'{1,NULL,3}'", [1, None, 3], None),
    ("text[]", "'{\"a b\",NULL}'", ["a b", None], None),
    # A column declared int[][] is left out (shapes test); PostgreSQL lets one declared int[] hold more.
    ("int[]", "'{{1,2},{3,4}}'", [[1, 2], [3, 4]], "Debezium reads no array of more than one dimension"),
    ("sales.mood", "'happy'", "happy", None),
    ("sales.positive", "5", 5, None),
    ("bit(4)", "B'0101'", "BQ==", None),  # the bits, little-endian, in bytes; the declared length says 4
    ("varbit", "B'0010'", "0010", None),
    ("varbit(1)", "B'0'", "0", None),
    ("inet", "'10.0.0.1/24'", "10.0.0.1/24", None),
    ("cidr", "'::/0'", "::/0", None),
    ("macaddr", "'08:00:2b:01:02:03'", "08:00:2b:01:02:03", None),
    ("hstore", "'a=>1, b=>NULL'", '{"a":"1","b":null}', None),
    ("int4range", "'[1,5)'", "[1,5)", None),
    ("numrange", "'(1.5,2.5]'", "(1.5,2.5]", None),
    ("tstzrange", "'empty'", "empty", None),
    ("xml", "'<a>x</a>'", "<a>x</a>", None),
    ("tsvector", "'fat cat'", "'cat' 'fat'", None),
    ("char(3)", "'ab'", "ab ", None),
    ("varchar(5)", "'abcde'", "abcde", None),
    ("text", "'ü\u2028'", "ü\u2028", None),
    ("point", "'(1.5,2)'", {"x": Decimal("1.5"), "y": Decimal("2.0"), "wkb": "AQEAAAAAAAAAAAD4PwAAAAAAAABA",
                           "srid": None}, None),
]


EVERY_TYPE_TYPES = ("CREATE EXTENSION IF NOT EXISTS hstore; CREATE TYPE sales.mood AS ENUM ('sad', 'happy'); "
                    "CREATE DOMAIN sales.positive AS int CHECK (VALUE > 0)")


def every_type_statements(table: str, left_out: frozenset[int] = frozenset()) -> list[str]:
    """The table with a column per case (c0, c1, …; none for the cases left out), and its one row."""
    cases = [(n, kind, value) for n, (kind, value, _, _) in enumerate(TYPE_CASES) if n not in left_out]
    return [f"CREATE TABLE {table} (id int PRIMARY KEY, {', '.join(f'c{n} {kind}' for n, kind, _ in cases)})",
            f"INSERT INTO {table} (id, {', '.join(f'c{n}' for n, _, _ in cases)}) "
            f"VALUES (1, {', '.join(value for _, _, value in cases)})"]


def same(found, expected) -> bool:
    """Equal, and a decimal with the same scale (1.500 is not 1.5), a NaN where a NaN was."""
    if isinstance(expected, Decimal):
        return isinstance(found, Decimal) and found.as_tuple() == expected.as_tuple()
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(found, float) and math.isnan(found)
    return type(found) is type(expected) and found == expected


# Iceberg's time ends at 23:59:59.999999: PostgreSQL's 24:00:00 stops the sink, naming the column
# (README, "What is captured"), so the Iceberg row leaves that case out.
NOT_IN_ICEBERG = frozenset(n for n, (kind, value, _, _) in enumerate(TYPE_CASES) if value == "'24:00:00'")

LARGEST, SMALLEST = 2**63 - 1, -2**63  # microseconds: Iceberg's timestamp ends there


def stored(year: int, month: int, day: int) -> tuple[str, int]:
    """A date Python cannot hold (ISO's year: 44 BC is -43), as Iceberg stores it: days since
    1970-01-01 in the proleptic Gregorian calendar."""
    shifted = year - (month <= 2)
    era = shifted // 400
    of_era = shifted - era * 400
    of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    of_era_days = of_era * 365 + of_era // 4 - of_era // 100 + of_year
    return "stored", era * 146097 + of_era_days - 719468


# Where an Iceberg table holds a case's value otherwise than the JSON lines do, by (type, literal):
# typed where Iceberg has the type, a numeric without scale as its text, ±infinity as the type's
# largest and smallest value, and what Python's types cannot hold as Iceberg stores it.
ICEBERG_VALUES = {
    ("numeric", "1.500"): "1.500",
    ("numeric", "0.000"): "0.000",
    ("numeric(10,2)", "'NaN'"): None,  # a decimal: its NaN is named in _cdc.nonfinite
    ("real", "'NaN'"): math.nan,
    ("double precision", "'-Infinity'"): -math.inf,
    ("timestamp", "'2026-01-02 03:04:05.123456'"): datetime(2026, 1, 2, 3, 4, 5, 123456),
    ("timestamp", "'infinity'"): ("stored", LARGEST),
    ("timestamp", "'-infinity'"): ("stored", SMALLEST),
    ("timestamptz", "'2026-01-02 03:04:05.123456+02'"): datetime(2026, 1, 2, 1, 4, 5, 123456, tzinfo=timezone.utc),
    ("timestamptz", "'-infinity'"): ("stored", SMALLEST),
    ("date", "'2026-01-02'"): date(2026, 1, 2),
    ("date", "'0044-03-15 BC'"): stored(-43, 3, 15),
    ("date", "'1500-03-01'"): date(1500, 3, 1),
    ("date", "'1582-10-10'"): date(1582, 10, 10),
    ("date", "'infinity'"): ("stored", 2**31 - 1),
    ("date", "'-infinity'"): ("stored", -2**31),
    ("time", "'23:59:59.999999'"): time(23, 59, 59, 999999),
    ("bytea", "'\\x00ff'"): b"\x00\xff",
    ("bytea", "''"): b"",
    ("bit(4)", "B'0101'"): b"\x05",
    ("point", "'(1.5,2)'"): {"x": 1.5, "y": 2.0, "wkb": b"\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\xf8?"
                                                  b"\x00\x00\x00\x00\x00\x00\x00@", "srid": None},
}


def in_iceberg(kind: str, value: str, expected):
    """A case's value as its Iceberg table holds it (read with pyiceberg)."""
    return ICEBERG_VALUES.get((kind, value), expected)
