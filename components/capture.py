"""What the pipeline captures: `capture`, a list of schemas (every table in them, now and later) and
single tables (`schema.table`).

Everything that selects tables follows from this one list: the publication and the database's
capture step (components/postgres_config.py), Debezium's include list (connectors/configs.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

# The pipeline's own schema: heartbeats, signals, the capture list, the check rows of `make verify`.
INTERNAL_SCHEMA = "cdc"
DEMO_SCHEMA = "inventory"
DEFAULT = (DEMO_SCHEMA,)
MAX_IDENTIFIER_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1

_UNQUOTED = re.compile(r"[a-z_][a-z0-9_]*")
# What a captured schema's or table's name may hold: Debezium replaces any other character in a topic
# name with _ (so "Order Items" and "Order_Items" would share a topic) and a dot would split the
# name; a table named otherwise is left out (the capture SQL, and the source's include list).
CAPTURABLE_NAME = "[A-Za-z0-9_]+"
# Keywords PostgreSQL 15 does not accept as an unquoted table or schema name: its "reserved" and
# "reserved (can be function or type)" ones (pg_get_keywords(), catcode R and T; a data-plane test
# compares this list with the server's).
RESERVED = frozenset("""
all analyse analyze and any array as asc asymmetric authorization binary both case cast check collate
collation column concurrently constraint create cross current_catalog current_date current_role
current_schema current_time current_timestamp current_user default deferrable desc distinct do else
end except false fetch for foreign freeze from full grant group having ilike in initially inner
intersect into is isnull join lateral leading left like limit localtime localtimestamp natural not
notnull null offset on only or order outer overlaps placing primary references returning right select
session_user similar some symmetric table tablesample then to trailing true union unique
user using variadic verbose when where window with
""".split())


def parse_entries(raw: object) -> tuple[str, ...]:
    """The list as the runtime hands it over: a JSON array (the CLI's form of a list set with
    `--path`), a list (the mock runtime's), or a plain comma-separated string."""
    if isinstance(raw, (list, tuple)):
        return tuple(str(entry) for entry in raw)
    text = str(raw).strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError as error:
            raise ValueError(f"{text!r} is not a JSON list: {error}") from None
        if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
            raise ValueError(f"{text!r} must be a list of strings")
        return tuple(value)
    return tuple(entry.strip() for entry in text.split(",")) if text else ()


def _identifier_problem(name: str) -> str | None:
    if not name:
        return "has an empty name"
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        return f"{name!r} is longer than PostgreSQL's {MAX_IDENTIFIER_BYTES} bytes"
    if not _UNQUOTED.fullmatch(name):
        hint = " (PostgreSQL folds unquoted names to lower case: write it in lower case)" if name.lower() != name else ""
        return (f"{name!r} is not a name PostgreSQL accepts unquoted: lower-case letters, digits and '_', "
                f"not starting with a digit{hint}")
    if name in RESERVED:
        return f"{name!r} is a reserved word in PostgreSQL"
    return None


def entry_problems(entries: tuple[str, ...]) -> list[str]:
    """Every problem of the list, each naming its entry and how to fix it."""
    if not entries:
        return [f"is empty: name at least one schema (e.g. {DEMO_SCHEMA}) or schema.table to capture"]
    problems = []
    seen: set[str] = set()
    for entry in entries:
        parts = entry.split(".")
        if len(parts) > 2:
            problems.append(f"entry {entry!r} has more than schema.table; the database is the stack's own, "
                            "so name a schema or schema.table")
            continue
        found = [problem for part in parts if (problem := _identifier_problem(part))]
        if found:
            problems.append(f"entry {entry!r}: " + "; ".join(found))
            continue
        schema = parts[0]
        if schema == INTERNAL_SCHEMA:
            problems.append(f"entry {entry!r} is in the pipeline's own schema {INTERNAL_SCHEMA!r} (heartbeats, "
                            "signals); keep your tables in another schema")
        elif schema.startswith("pg_") or schema == "information_schema":
            problems.append(f"entry {entry!r} is a PostgreSQL system schema; name a schema of your own")
        elif entry in seen:
            problems.append(f"entry {entry!r} is listed twice; remove one")
        seen.add(entry)
    schemas = {entry for entry in entries if "." not in entry}
    for entry in entries:
        schema, dot, _ = entry.partition(".")
        if dot and schema in schemas:
            problems.append(f"entry {entry!r} is already captured by schema {schema!r}, which takes every "
                            f"table in it; remove {entry!r}")
    return problems


@dataclass(frozen=True)
class Capture:
    """A valid `capture` list."""

    entries: tuple[str, ...]

    @property
    def schemas(self) -> tuple[str, ...]:
        return tuple(entry for entry in self.entries if "." not in entry)

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(entry for entry in self.entries if "." in entry)

    def include_list(self, left_out: Iterable[str] = ()) -> list[str]:
        """Debezium's table.include.list: a regular expression per entry, matched against
        `schema.table` as a whole. `left_out` names the tables in what `capture` names that the
        database cannot capture (the capture step finds them): the source must not read them either."""
        skipped = set(left_out)
        patterns = []
        for schema in self.schemas:
            # A name with other characters than CAPTURABLE_NAME's never matches (and a comma in it would
            # split Debezium's list): only the others need naming.
            names = sorted(table for name in skipped for owner, _, table in [name.partition(".")]
                           if owner == schema and re.fullmatch(CAPTURABLE_NAME, table))
            not_these = f"(?!(?:{'|'.join(re.escape(name) for name in names)})$)" if names else ""
            patterns.append(f"{re.escape(schema)}\\.{not_these}{CAPTURABLE_NAME}")
        return patterns + [re.escape(table) for table in self.tables if table not in skipped]
