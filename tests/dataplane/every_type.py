"""One row holding every PostgreSQL type a user may have, edge values included, and what each value
must be in the archive: shared by the JSON Lines tests (test_capture) and the Iceberg ones."""

import math
from datetime import date, datetime, time, timezone
from decimal import Decimal


# One column per case: PostgreSQL's type, a value, and that value as the default stack's archive
# (typed JSON lines) must hold it.
TYPE_CASES = [
    ("numeric", "1.500", Decimal("1.500")),
    ("numeric(10,2)", "12.30", Decimal("12.30")),
    ("numeric", "'NaN'", "NaN"),
    ("numeric", "'-Infinity'", "-Infinity"),
    ("numeric", "'Infinity'", "Infinity"),
    ("numeric(10,2)", "'NaN'", "NaN"),
    ("numeric", "0.000", Decimal("0.000")),
    ("money", "-0.01", Decimal("-0.01")),
    ("real", "'NaN'", "NaN"),
    ("double precision", "'-Infinity'", "-Infinity"),
    ("smallint", "-32768", -32768),
    ("bigint", "9223372036854775807", 9223372036854775807),
    ("boolean", "true", True),
    ("timestamp", "'2026-01-02 03:04:05.123456'", "2026-01-02T03:04:05.123456"),
    ("timestamp", "'infinity'", "infinity"),
    ("timestamp", "'-infinity'", "-infinity"),
    ("timestamptz", "'2026-01-02 03:04:05.123456+02'", "2026-01-02T01:04:05.123456Z"),
    ("timestamptz", "'-infinity'", "-infinity"),
    ("date", "'2026-01-02'", "2026-01-02"),
    ("date", "'0044-03-15 BC'", "-0043-03-15"),  # ISO 8601's year -43 is 44 BC
    ("date", "'1500-03-01'", "1500-03-01"),  # Julian 1500-02-19: the JDBC driver's calendar
    ("date", "'1582-10-10'", "1582-10-10"),  # not in the JDBC driver's calendar: a snapshot reads it as text
    ("date", "'infinity'", "infinity"),
    ("date", "'-infinity'", "-infinity"),
    ("time", "'23:59:59.999999'", "23:59:59.999999"),
    ("time", "'24:00:00'", "24:00:00"),
    ("timetz", "'10:00:00+02'", "08:00:00Z"),
    ("interval", "'1 year 2 months 3 days 04:05:06.789'", "P1Y2M3DT4H5M6.789S"),
    ("interval", "'178000000 years'", "P178000000Y0M0DT0H0M0S"),
    ("interval", "'-1 mon +2 days'", "P0Y-1M2DT0H0M0S"),
    ("bytea", "'\\x00ff'", "AP8="),
    ("bytea", "''", ""),
    ("jsonb", "'{\"a\": [1, 2.50]}'", '{"a": [1, 2.50]}'),
    ("json", "'null'", "null"),
    ("uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    ("int[]", "'{1,NULL,3}'", [1, None, 3]),
    ("text[]", "'{\"a b\",NULL}'", ["a b", None]),
    ("smallint[]", "'{-32768,NULL}'", [-32768, None]),
    ("bigint[]", "'{9223372036854775807}'", [9223372036854775807]),
    ("real[]", "'{1.5,-2.25}'", [Decimal("1.5"), Decimal("-2.25")]),
    ("double precision[]", "'{0.1}'", [Decimal("0.1")]),
    ("boolean[]", "'{t,NULL,f}'", [True, None, False]),
    ("varchar(3)[]", "'{ab,\"c d\"}'", ["ab", "c d"]),
    ("char(2)[]", "'{ab,c}'", ["ab", "c "]),
    ("uuid[]", "'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}'", ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", None]),
    ("jsonb[]", "ARRAY['{\"a\": [1, 2.50]}'::jsonb]", ['{"a": [1, 2.50]}']),
    ("inet[]", "'{10.0.0.1/24,::1}'", ["10.0.0.1/24", "::1"]),
    ("date[]", "'{2026-01-02,1582-10-10,1500-03-01,NULL}'", ["2026-01-02", "1582-10-10", "1500-03-01", None]),
    ("numeric[]", "'{1.500,-2}'", [Decimal("1.500"), -2]),
    ("numeric(5,2)[]", "'{1.5,NULL}'", [Decimal("1.50"), None]),
    ("numeric[]", "'{1.5,NaN}'", [Decimal("1.5"), "NaN"]),
    ("interval[]", "'{\"1 year 2 mons\",\"-1 mon +2 days\"}'", ["P1Y2M0DT0H0M0S", "P0Y-1M2DT0H0M0S"]),
    ("bit(4)[]", "'{0101,NULL}'", ["0101", None]),
    ("name[]", "'{a,\"b c\"}'", ["a", "b c"]),
    ("time[]", "'{23:59:59.999999,00:00:00.5}'", ["23:59:59.999999", "00:00:00.5"]),
    ("time[]", "'{24:00:00}'", ["24:00:00"]),
    ("timestamp[]", "'{\"2026-01-02 03:04:05.123456\",\"1500-03-01 00:00:00\"}'",
     ["2026-01-02T03:04:05.123456", "1500-03-01T00:00:00"]),
    ("timestamp[]", "'{infinity,\"0044-03-15 01:00:00 BC\"}'", ["infinity", "-0043-03-15T01:00:00"]),
    ("timestamptz[]", "'{\"2026-01-02 03:04:05.123456+02\",\"1500-03-01 00:00:00+00\"}'",
     ["2026-01-02T01:04:05.123456Z", "1500-03-01T00:00:00.000000Z"]),
    ("timestamptz[]", "'{\"0044-03-15 01:00:00.5+00 BC\",\"1582-10-10 00:00:00+05:30\",-infinity}'",
     ["-0043-03-15T01:00:00.500000Z", "1582-10-09T18:30:00.000000Z", "-infinity"]),
    # A column declared int[][] is left out (shapes test); PostgreSQL lets one declared int[] hold more.
    ("int[]", "'{{1,2},{3,4}}'", [[1, 2], [3, 4]]),
    ("text[]", "'{{\"a\\\"b\",NULL},{c,d}}'", [['a"b', None], ["c", "d"]]),
    ("date[]", "'{{1582-10-10,NULL},{infinity,\"0044-03-15 BC\"}}'", [["1582-10-10", None], ["infinity", "-0043-03-15"]]),
    ("numeric[]", "'{{1.5},{2}}'", [[Decimal("1.5")], [2]]),
    ("sales.mood", "'happy'", "happy"),
    ("sales.positive", "5", 5),
    ("bit(4)", "B'0101'", "BQ=="),  # the bits, little-endian, in bytes; the declared length says 4
    ("varbit", "B'0010'", "0010"),
    ("varbit(1)", "B'0'", "0"),
    ("inet", "'10.0.0.1/24'", "10.0.0.1/24"),
    ("cidr", "'::/0'", "::/0"),
    ("macaddr", "'08:00:2b:01:02:03'", "08:00:2b:01:02:03"),
    ("hstore", "'a=>1, b=>NULL'", '{"a":"1","b":null}'),
    ("int4range", "'[1,5)'", "[1,5)"),
    ("numrange", "'(1.5,2.5]'", "(1.5,2.5]"),
    ("tstzrange", "'empty'", "empty"),
    ("xml", "'<a>x</a>'", "<a>x</a>"),
    ("tsvector", "'fat cat'", "'cat' 'fat'"),
    ("char(3)", "'ab'", "ab "),
    ("varchar(5)", "'abcde'", "abcde"),
    ("text", "'ü\u2028'", "ü\u2028"),
    ("point", "'(1.5,2)'", {"x": Decimal("1.5"), "y": Decimal("2.0"), "wkb": "AQEAAAAAAAAAAAD4PwAAAAAAAABA",
                           "srid": None}),
]


EVERY_TYPE_TYPES = ("CREATE EXTENSION IF NOT EXISTS hstore; CREATE TYPE sales.mood AS ENUM ('sad', 'happy'); "
                    "CREATE DOMAIN sales.positive AS int CHECK (VALUE > 0)")


def every_type_statements(table: str, left_out: frozenset[int] = frozenset()) -> list[str]:
    """The table with a column per case (c0, c1, …; none for the cases left out), and its one row."""
    cases = [(n, kind, value) for n, (kind, value, _) in enumerate(TYPE_CASES) if n not in left_out]
    return [f"CREATE TABLE {table} (id int PRIMARY KEY, {', '.join(f'c{n} {kind}' for n, kind, _ in cases)})",
            f"INSERT INTO {table} (id, {', '.join(f'c{n}' for n, _, _ in cases)}) "
            f"VALUES (1, {', '.join(value for _, _, value in cases)})"]


def same(found, expected) -> bool:
    """Equal, and a decimal with the same scale (1.500 is not 1.5), a NaN where a NaN was, in lists too."""
    if isinstance(expected, Decimal):
        return isinstance(found, Decimal) and found.as_tuple() == expected.as_tuple()
    if isinstance(expected, list):
        return isinstance(found, list) and len(found) == len(expected) and all(map(same, found, expected))
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(found, float) and math.isnan(found)
    return type(found) is type(expected) and found == expected


# Iceberg's time ends at 23:59:59.999999: PostgreSQL's 24:00:00 stops the sink, naming the column
# (README, "What is captured"), so the Iceberg row leaves those cases out; and the lists of timestamps
# with ±infinity and 44 BC, which Iceberg holds but pyarrow cannot read into Python's datetime.
NOT_IN_ICEBERG = frozenset(n for n, (kind, value, _) in enumerate(TYPE_CASES)
                           if value in ("'24:00:00'", "'{24:00:00}'", "'{infinity,\"0044-03-15 01:00:00 BC\"}'",
                                        "'{\"0044-03-15 01:00:00.5+00 BC\",\"1582-10-10 00:00:00+05:30\",-infinity}'"))

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
    ("real[]", "'{1.5,-2.25}'"): [1.5, -2.25],
    ("double precision[]", "'{0.1}'"): [0.1],
    # No list of the column's element type holds these: null, their JSON in _cdc.arrays.
    ("int[]", "'{{1,2},{3,4}}'"): None,
    ("text[]", "'{{\"a\\\"b\",NULL},{c,d}}'"): None,
    ("date[]", "'{{1582-10-10,NULL},{infinity,\"0044-03-15 BC\"}}'"): None,
    ("numeric[]", "'{{1.5},{2}}'"): None,
    ("numeric[]", "'{1.5,NaN}'"): None,  # a NaN no list of decimals holds
    ("numeric[]", "'{1.500,-2}'"): ["1.500", "-2"],  # as a numeric column without scale: its text
    ("time[]", "'{23:59:59.999999,00:00:00.5}'"): [time(23, 59, 59, 999999), time(0, 0, 0, 500000)],
    ("timestamp[]", "'{\"2026-01-02 03:04:05.123456\",\"1500-03-01 00:00:00\"}'"):
        [datetime(2026, 1, 2, 3, 4, 5, 123456), datetime(1500, 3, 1)],
    ("timestamptz[]", "'{\"2026-01-02 03:04:05.123456+02\",\"1500-03-01 00:00:00+00\"}'"):
        [datetime(2026, 1, 2, 1, 4, 5, 123456, tzinfo=timezone.utc), datetime(1500, 3, 1, tzinfo=timezone.utc)],
    ("date[]", "'{2026-01-02,1582-10-10,1500-03-01,NULL}'"): [date(2026, 1, 2), date(1582, 10, 10), date(1500, 3, 1), None],
    ("point", "'(1.5,2)'"): {"x": 1.5, "y": 2.0, "wkb": b"\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\xf8?"
                                                  b"\x00\x00\x00\x00\x00\x00\x00@", "srid": None},
}


def in_iceberg(kind: str, value: str, expected):
    """A case's value as its Iceberg table holds it (read with pyiceberg)."""
    return ICEBERG_VALUES.get((kind, value), expected)
