"""PostgreSQL's configuration as pure functions: server settings, client authentication, init SQL.

The PostgreSQL tier ships these into the cluster; the data-plane tests run them on a real server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .capture import CAPTURABLE_NAME, DEMO_SCHEMA, INTERNAL_SCHEMA
from .quantity import Memory, below_minimum
from .topology import POSTGRES_VERSION

if TYPE_CHECKING:
    from .settings import Settings, StackConfig

VERSION = POSTGRES_VERSION
MAJOR = VERSION.split(".")[0]  # the data-plane tests run this major too: settings and SQL must hold for it
IMAGE = f"postgres:{VERSION}-bookworm"
DATABASE = "appdb"
# The Secret with the tier's passwords; Connect mounts the CDC role's key from it.
CREDENTIALS_SECRET = "postgres-credentials"
CDC_PASSWORD_KEY = "cdc-password"
HEARTBEAT_TABLE = f"{INTERNAL_SCHEMA}.heartbeat"
SIGNAL_TABLE = f"{INTERNAL_SCHEMA}.debezium_signal"
MARKER_TABLE = f"{INTERNAL_SCHEMA}.marker"
CAPTURE_TABLE = f"{INTERNAL_SCHEMA}.capture"
INTERNAL_TABLES = (HEARTBEAT_TABLE, SIGNAL_TABLE, MARKER_TABLE)
EVENT_TRIGGER = "cdc_capture_new_tables"
DROP_TRIGGER = "cdc_recheck_after_drop"
CDC_ROLE = "cdc_reader"
PUBLICATION = "cdc_publication"
SUPERUSER = "postgres"

CONFIG_DIR = "/etc/postgresql"
WORK_MEM = Memory.mebibytes(4)
MAINTENANCE_WORK_MEM = Memory.mebibytes(64)
AUTOVACUUM_WORKERS = 2
AUTOVACUUM_WORK_MEM = Memory.mebibytes(32)
# What a backend costs beyond its work_mem (catalog caches, stack, buffers), and the postmaster,
# WAL writer and checkpointer together.
PER_CONNECTION_OVERHEAD = Memory.mebibytes(2)
BASE_OVERHEAD = Memory.mebibytes(48)


def shared_buffers(config: StackConfig) -> Memory:
    return config.postgres_shared_buffers or Memory.mebibytes(config.postgres_memory.mib // 4)


def memory_need(config: StackConfig) -> Memory:
    """Worst case resident memory of the server with every connection busy."""
    per_connection = WORK_MEM.bytes + PER_CONNECTION_OVERHEAD.bytes
    return Memory(
        shared_buffers(config).bytes
        + config.postgres_max_connections * per_connection
        + MAINTENANCE_WORK_MEM.bytes
        + AUTOVACUUM_WORKERS * AUTOVACUUM_WORK_MEM.bytes
        + BASE_OVERHEAD.bytes
    )


def memory_problem(config: StackConfig) -> tuple[str, str] | None:
    need = memory_need(config)
    if need <= config.postgres_memory:
        return None
    return (
        "postgresMemory",
        f"{config.postgres_memory} is too small for shared_buffers {shared_buffers(config).mib}Mi and "
        f"{config.postgres_max_connections} connections (about {need.mib}Mi with every connection "
        "busy); raise postgresMemory, or lower postgresMaxConnections or postgresSharedBuffers",
    )


# WAL kept for recycling; max_wal_size (a quarter of the volume) must not fall below it.
MIN_WAL_SIZE = Memory.mebibytes(80)
MINIMUM_STORAGE = Memory.mebibytes(4 * MIN_WAL_SIZE.mib)


def storage_problem(config: StackConfig) -> tuple[str, str] | None:
    return below_minimum("postgresStorage", config.postgres_storage, MINIMUM_STORAGE,
                         f": a quarter of the volume is max_wal_size, and PostgreSQL needs at least "
                         f"min_wal_size {MIN_WAL_SIZE.mib}MB of it")


def slot_wal_keep(config: StackConfig) -> Memory:
    # A stalled or abandoned slot may pin at most half the volume; past that PostgreSQL drops the
    # slot's claim (the connector must then re-snapshot) instead of filling the disk.
    return Memory.mebibytes(config.postgres_storage.mib // 2)


def server_settings(config: StackConfig) -> dict[str, str]:
    """postgresql.conf for the tier: logical decoding on, memory within the limit."""
    storage_mib = config.postgres_storage.mib
    return {
        "listen_addresses": "'*'",
        "port": "5432",
        "max_connections": str(config.postgres_max_connections),
        "shared_buffers": f"{shared_buffers(config).mib}MB",
        "effective_cache_size": f"{config.postgres_memory.mib // 2}MB",
        "work_mem": f"{WORK_MEM.mib}MB",
        "maintenance_work_mem": f"{MAINTENANCE_WORK_MEM.mib}MB",
        "autovacuum_max_workers": str(AUTOVACUUM_WORKERS),
        "autovacuum_work_mem": f"{AUTOVACUUM_WORK_MEM.mib}MB",
        "wal_level": "logical",
        "max_wal_senders": "10",
        "max_replication_slots": "10",
        "max_slot_wal_keep_size": f"{slot_wal_keep(config).mib}MB",
        "wal_sender_timeout": "60s",
        "max_wal_size": f"{min(1024, storage_mib // 4)}MB",
        "min_wal_size": f"{MIN_WAL_SIZE.mib}MB",
        "synchronous_commit": "on",
        "password_encryption": "'scram-sha-256'",
        "hba_file": f"'{CONFIG_DIR}/pg_hba.conf'",
        "log_destination": "'stderr'",
        "log_min_messages": "warning",
        "log_connections": "off",
        "log_replication_commands": "on",
    }


def render_postgresql_conf(config: StackConfig, overrides: dict[str, str] | None = None) -> str:
    merged = {**server_settings(config), **(overrides or {})}
    return "".join(f"{key} = {value}\n" for key, value in merged.items())


def render_pg_hba() -> str:
    """Passwords (SCRAM) over TCP for everyone; the superuser by peer on the socket, for init."""
    return (
        "# TYPE  DATABASE  USER  ADDRESS    METHOD\n"
        f"local   all       {SUPERUSER}  peer\n"
        "host    all       all   0.0.0.0/0  scram-sha-256\n"
        "host    all       all   ::/0       scram-sha-256\n"
    )


def init_sql() -> str:
    """The initdb hook's psql script: the database and the CDC role with its password (arriving as
    :'cdc_password'). Safe to run any number of times. What the role may read, the publication and
    the tables are the capture step's (capture_sql), which runs on every change of `capture`."""
    return f"""\\set ON_ERROR_STOP on
SELECT 'CREATE DATABASE {DATABASE}'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{DATABASE}') \\gexec

-- The connector's role: may stream WAL, may read what it captures, is nothing more.
SELECT 'CREATE ROLE {CDC_ROLE}'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{CDC_ROLE}') \\gexec
ALTER ROLE {CDC_ROLE} WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS
    PASSWORD :'cdc_password';
GRANT CONNECT ON DATABASE {DATABASE} TO {CDC_ROLE};
\\connect {DATABASE}
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
"""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _demo_sql() -> str:
    """The demo tables, created with a few rows once; never dropped or refilled afterwards."""
    return f"""
DO $demo$
BEGIN
    CREATE SCHEMA IF NOT EXISTS {DEMO_SCHEMA};
    IF to_regclass('{DEMO_SCHEMA}.customers') IS NULL THEN
        CREATE TABLE {DEMO_SCHEMA}.customers (
            id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            email       text NOT NULL UNIQUE,
            full_name   text NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now()
        );
        INSERT INTO {DEMO_SCHEMA}.customers (email, full_name) VALUES
            ('grace@example.com', 'Grace Hopper'), ('alan@example.com', 'Alan Turing'),
            ('barbara@example.com', 'Barbara Liskov');
    END IF;
    IF to_regclass('{DEMO_SCHEMA}.orders') IS NULL THEN
        CREATE TABLE {DEMO_SCHEMA}.orders (
            id           bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            customer_id  bigint NOT NULL REFERENCES {DEMO_SCHEMA}.customers (id),
            status       text NOT NULL DEFAULT 'new',
            amount       numeric(12, 2) NOT NULL,
            attributes   jsonb NOT NULL DEFAULT '{{}}'::jsonb,
            ordered_at   timestamptz NOT NULL DEFAULT now()
        );
        INSERT INTO {DEMO_SCHEMA}.orders (customer_id, status, amount, attributes)
        SELECT c.id, o.status, o.amount, o.attributes::jsonb
          FROM (VALUES ('grace@example.com', 'paid', 120.50, '{{"channel": "web"}}'),
                       ('alan@example.com', 'new', 9.99, '{{}}'),
                       ('barbara@example.com', 'shipped', 1024.00, '{{"gift": true}}')) AS o (email, status, amount, attributes)
          JOIN {DEMO_SCHEMA}.customers c USING (email);
    END IF;
END $demo$;
"""


# The array types Debezium gives no schema (its DBZ-459): such a column would be left out of every
# change without a word. (Arrays of intervals, names and bit strings, which it also leaves, our
# converter reads.)
UNREAD_ARRAYS = ("_money", "_xml", "_point", "_refcursor")


def _avro_name(column: str) -> str:
    """A column's name in Avro, as Debezium adjusts it (field.name.adjustment.mode avro): a digit
    first gets a _ before it, and each other character Avro does not allow becomes _."""
    return f"regexp_replace(regexp_replace({column}, '^([0-9])', '_\\1'), '[^A-Za-z0-9_]', '_', 'g')"


# As wal_sender_timeout, for the other direction: a minute without progress ends the connection;
# Debezium reconnects and resumes from its last confirmed position.
REPLICATION_TCP_USER_TIMEOUT_SECONDS = 60


def capture_sql(settings: Settings) -> str:
    """The capture step: brings the database in line with `capture`, run as the superuser (only a
    superuser may create an event trigger, or publish a table it does not own) on every change.
    Plain SQL in one transaction, safe to run any number of times."""
    capture = settings.capture
    entries = ", ".join(f"({_literal(entry)})" for entry in capture.entries)
    schemas = "".join(
        f"CREATE SCHEMA IF NOT EXISTS {schema};\nGRANT USAGE ON SCHEMA {schema} TO {CDC_ROLE};\n"
        for schema in capture.schemas
    )
    internal = ", ".join(INTERNAL_TABLES)
    return f"""-- The pipeline's own schema: heartbeats, signals, the capture list, the check rows.
CREATE SCHEMA IF NOT EXISTS {INTERNAL_SCHEMA};
-- Debezium's heartbeat action query writes here, so that the slot advances even while the
-- captured tables are quiet and WAL from other databases piles up.
CREATE TABLE IF NOT EXISTS {HEARTBEAT_TABLE} (
    id        integer PRIMARY KEY,
    beat_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO {HEARTBEAT_TABLE} (id) VALUES (1) ON CONFLICT (id) DO NOTHING;
-- Debezium's signal table: a row asks the source for an incremental snapshot of the tables it names.
CREATE TABLE IF NOT EXISTS {SIGNAL_TABLE} (
    id    varchar(64) PRIMARY KEY,
    type  varchar(32) NOT NULL,
    data  varchar(2048)
);
-- `make verify` inserts a row here and follows it into the archive.
CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (
    id         text PRIMARY KEY,
    marked_at  timestamptz NOT NULL DEFAULT now()
);
-- `capture` as the event trigger reads it.
CREATE TABLE IF NOT EXISTS {CAPTURE_TABLE} (entry text PRIMARY KEY);
CREATE OR REPLACE FUNCTION {INTERNAL_SCHEMA}.in_capture(schema_name text, table_name text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $function$
    SELECT EXISTS (SELECT FROM {CAPTURE_TABLE} WHERE entry IN (schema_name, schema_name || '.' || table_name))
$function$;
GRANT USAGE ON SCHEMA {INTERNAL_SCHEMA} TO {CDC_ROLE};
-- A replication client that stops reading (Debezium while Kafka is down) must not hold up a
-- checkpoint: its walsender, ended when the slot is given up, would wait for ever to write into the
-- full socket, and the checkpoint for it. The kernel closes a connection unread this long.
ALTER ROLE {CDC_ROLE} SET tcp_user_timeout = '{REPLICATION_TCP_USER_TIMEOUT_SECONDS}s';
GRANT SELECT, INSERT, UPDATE ON {HEARTBEAT_TABLE} TO {CDC_ROLE};
GRANT SELECT, INSERT ON {SIGNAL_TABLE} TO {CDC_ROLE};
GRANT SELECT ON {MARKER_TABLE} TO {CDC_ROLE};
DO $publication$
BEGIN
    -- Created here, so the connector needs no ownership of the tables (autocreate disabled).
    IF NOT EXISTS (SELECT FROM pg_publication WHERE pubname = '{PUBLICATION}') THEN
        CREATE PUBLICATION {PUBLICATION} FOR TABLE {internal};
    END IF;
END $publication$;

-- Why a relation that `capture` names is left out, or NULL when it is captured. A table is left out
-- rather than published when publishing it would change what the owner's own statements may do (an
-- unlogged table cannot be published; with REPLICA IDENTITY NOTHING a published table refuses
-- UPDATE and DELETE), or when its changes could not arrive under a name of their own.
CREATE OR REPLACE FUNCTION {INTERNAL_SCHEMA}.capture_problem(relation oid) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $function$
    SELECT CASE
        WHEN c.relkind = 'p' THEN coalesce((
            SELECT 'partitioned: its partitions are captured one by one, and ' || string_agg(
                       format('%I.%I', pn.nspname, pc.relname), ', ' ORDER BY pc.relname)
                   || ' is in a schema `capture` does not name: add it (or its schema) to `capture`'
              FROM pg_partition_tree(c.oid) AS tree JOIN pg_class pc ON pc.oid = tree.relid
              JOIN pg_namespace pn ON pn.oid = pc.relnamespace
             WHERE tree.isleaf AND NOT {INTERNAL_SCHEMA}.in_capture(pn.nspname, pc.relname)),
            'partitioned: its partitions are captured one by one, each under a topic of its own')
        WHEN c.relkind = 'f' THEN 'a foreign table: its rows live in another server, whose WAL this one never sees'
        WHEN c.relkind = 'm' THEN 'a materialized view: PostgreSQL cannot publish it; capture the tables it reads'
        WHEN c.relkind <> 'r' THEN NULL
        WHEN c.relpersistence = 'u' THEN 'unlogged: PostgreSQL writes no WAL for it, so there is nothing to stream; '
            || format('ALTER TABLE %I.%I SET LOGGED', n.nspname, c.relname) || ' captures it'
        WHEN c.relpersistence = 't' THEN 'temporary: it lives for one session only'
        WHEN c.relreplident = 'n' THEN 'REPLICA IDENTITY NOTHING, as its owner set it: published, its UPDATE and '
            || 'DELETE statements would be refused; '
            || format('ALTER TABLE %I.%I REPLICA IDENTITY DEFAULT', n.nspname, c.relname) || ' captures it'
        WHEN c.relreplident = 'i' AND NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident) THEN
            'REPLICA IDENTITY USING INDEX, and that index was dropped: PostgreSQL then takes it for NOTHING, and '
            || 'published, its UPDATE and DELETE statements would be refused; '
            || format('ALTER TABLE %I.%I REPLICA IDENTITY DEFAULT', n.nspname, c.relname) || ' captures it'
        WHEN c.relreplident = 'i' AND EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                                                 AND NOT a.attisdropped AND a.attstorage IN ('x', 'e')) THEN
            'REPLICA IDENTITY USING INDEX, as its owner set it: an update that leaves a long value (text, bytea, '
            || 'jsonb, an array) unchanged would carry a placeholder instead of it; '
            || format('ALTER TABLE %I.%I REPLICA IDENTITY FULL', n.nspname, c.relname) || ' captures it exactly'
        WHEN n.nspname !~ '^{CAPTURABLE_NAME}$' OR c.relname !~ '^{CAPTURABLE_NAME}$' THEN
            'its name holds a character other than letters, digits and _, which a topic, an archive folder and an '
            || 'Iceberg table cannot carry one to one (two such tables could merge); rename it to capture it'
        ELSE coalesce((
            SELECT format('its column %I is declared with %s dimensions (%s): Debezium reads arrays of one '
                          'dimension only, and its values would arrive as nulls; store it as jsonb to capture it',
                          a.attname, a.attndims, format_type(a.atttypid, a.atttypmod) || repeat('[]', a.attndims - 1))
              FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attndims > 1
             ORDER BY a.attnum LIMIT 1), (
            SELECT format('its column %I is an array of %s, which Debezium does not read: the column would be '
                          'missing from every change; store it as text[] or jsonb to capture it',
                          a.attname, format_type(t.typelem, NULL))
              FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
               AND t.typname IN ({", ".join(f"'{name}'" for name in UNREAD_ARRAYS)})
             ORDER BY a.attnum LIMIT 1), (
            SELECT format('its columns %s would all be named %s in Avro, which allows letters, digits and _ only; '
                          'rename all but one to capture it', string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum), {_avro_name("a.attname")})
              FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             GROUP BY {_avro_name("a.attname")} HAVING count(*) > 1 LIMIT 1), (
            SELECT format('its archive name %s is already %I.%I''s (Iceberg folds names to lower case and joins '
                            'schema and table with _); rename one to capture both', lower(n.nspname || '_' || c.relname),
                            other_n.nspname, other.relname)
                FROM pg_class other JOIN pg_namespace other_n ON other_n.oid = other.relnamespace
               WHERE other.relkind = 'r' AND other.oid < c.oid AND other.relpersistence = 'p'
                 AND lower(other_n.nspname || '_' || other.relname) = lower(n.nspname || '_' || c.relname)
                 AND {INTERNAL_SCHEMA}.in_capture(other_n.nspname, other.relname)
               ORDER BY other.oid LIMIT 1))
    END
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = relation
$function$;

CREATE OR REPLACE FUNCTION {INTERNAL_SCHEMA}.published(relation oid) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $function$
    SELECT EXISTS (SELECT FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid
                    WHERE p.pubname = '{PUBLICATION}' AND r.prrelid = relation)
$function$;

-- A captured table: in the publication, readable by the CDC role, and with full before-images
-- (an update or delete in the archive carries every old value, not only the key). A table that
-- `capture` names but cannot be captured leaves the publication, and the CDC role may not read it.
-- Runs as its owner, the superuser, for whoever created or altered the table.
CREATE OR REPLACE FUNCTION {INTERNAL_SCHEMA}.capture_table(relation oid) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $function$
DECLARE
    target record;
BEGIN
    SELECT n.nspname AS schema, c.relname AS name, c.relreplident AS identity, c.relkind AS kind
      INTO target FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = relation;
    IF NOT FOUND OR target.kind <> 'r' OR target.schema = '{INTERNAL_SCHEMA}' THEN
        RETURN false;
    END IF;
    IF NOT {INTERNAL_SCHEMA}.in_capture(target.schema, target.name)
       OR {INTERNAL_SCHEMA}.capture_problem(relation) IS NOT NULL THEN
        -- Moved or renamed out of `capture`, or altered into a table that cannot be captured.
        IF {INTERNAL_SCHEMA}.published(relation) THEN
            EXECUTE format('ALTER PUBLICATION {PUBLICATION} DROP TABLE %I.%I', target.schema, target.name);
            EXECUTE format('REVOKE SELECT ON %I.%I FROM {CDC_ROLE}', target.schema, target.name);
        END IF;
        RETURN false;
    END IF;
    -- DEFAULT only: an identity chosen on purpose (an index) is the owner's to keep.
    IF target.identity = 'd' THEN
        EXECUTE format('ALTER TABLE %I.%I REPLICA IDENTITY FULL', target.schema, target.name);
    END IF;
    -- Looked up after it: the ALTER TABLE above ran this function for the table already.
    IF NOT {INTERNAL_SCHEMA}.published(relation) THEN
        EXECUTE format('ALTER PUBLICATION {PUBLICATION} ADD TABLE %I.%I', target.schema, target.name);
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO {CDC_ROLE}', target.schema);
    EXECUTE format('GRANT SELECT ON %I.%I TO {CDC_ROLE}', target.schema, target.name);
    RETURN true;
END
$function$;
REVOKE ALL ON FUNCTION {INTERNAL_SCHEMA}.capture_table(oid) FROM PUBLIC;

-- What `capture` names that is not captured, and why: read by the capture step and `make status`.
-- `relation` as SQL names it, `name` as Debezium does (schema.table, unquoted).
CREATE OR REPLACE FUNCTION {INTERNAL_SCHEMA}.not_captured() RETURNS TABLE (relation text, name text, reason text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $function$
    SELECT format('%I.%I', n.nspname, c.relname), n.nspname || '.' || c.relname, problem.reason
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     CROSS JOIN LATERAL (SELECT {INTERNAL_SCHEMA}.capture_problem(c.oid) AS reason) AS problem
     WHERE c.relkind IN ('r', 'p', 'f', 'm') AND n.nspname <> '{INTERNAL_SCHEMA}'
       AND {INTERNAL_SCHEMA}.in_capture(n.nspname, c.relname) AND problem.reason IS NOT NULL
     ORDER BY 2
$function$;

-- Tables created later, or moved, renamed or altered into (or out of) what `capture` names, are
-- captured (or left out) as they change.
CREATE OR REPLACE FUNCTION {INTERNAL_SCHEMA}.capture_new_tables() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $function$
BEGIN
    PERFORM {INTERNAL_SCHEMA}.capture_table(command.objid)
       FROM pg_event_trigger_ddl_commands() AS command WHERE command.object_type = 'table';
END
$function$;
-- Dropping the index a table's replica identity uses leaves it with none: it leaves the publication
-- in the same statement, before an UPDATE of it could be refused.
CREATE OR REPLACE FUNCTION {INTERNAL_SCHEMA}.recheck_after_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $function$
BEGIN
    PERFORM {INTERNAL_SCHEMA}.capture_table(r.prrelid)
       FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid
      WHERE p.pubname = '{PUBLICATION}' AND {INTERNAL_SCHEMA}.capture_problem(r.prrelid) IS NOT NULL;
END
$function$;
DO $trigger$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = '{DROP_TRIGGER}') THEN
        CREATE EVENT TRIGGER {DROP_TRIGGER} ON sql_drop WHEN TAG IN ('DROP INDEX', 'ALTER TABLE')
            EXECUTE FUNCTION {INTERNAL_SCHEMA}.recheck_after_drop();
    END IF;
    IF NOT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = '{EVENT_TRIGGER}') THEN
        CREATE EVENT TRIGGER {EVENT_TRIGGER} ON ddl_command_end
            WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE')
            EXECUTE FUNCTION {INTERNAL_SCHEMA}.capture_new_tables();
    END IF;
END $trigger$;

-- What `capture` names now.
DELETE FROM {CAPTURE_TABLE};
INSERT INTO {CAPTURE_TABLE} (entry) VALUES {entries};
{schemas}{_demo_sql() if settings.config.demo_data else ""}
-- The publication holds exactly the internal tables and the captured tables that can be captured
-- (one created later is added by the event trigger): table by table, never a whole schema, so that a
-- table in a captured schema that cannot be published is left out instead of refusing its owner.
DO $publication$
DECLARE
    tables text;
BEGIN
    SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', ' ORDER BY n.nspname, c.relname) INTO tables
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND n.nspname <> '{INTERNAL_SCHEMA}' AND {INTERNAL_SCHEMA}.in_capture(n.nspname, c.relname)
       AND {INTERNAL_SCHEMA}.capture_problem(c.oid) IS NULL;
    EXECUTE 'ALTER PUBLICATION {PUBLICATION} SET TABLE {internal}' || coalesce(', ' || tables, '');
END $publication$;
SELECT {INTERNAL_SCHEMA}.capture_table(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND {INTERNAL_SCHEMA}.in_capture(n.nspname, c.relname);

-- A table no longer captured, or that cannot be: the CDC role may not read it.
DO $revoke$
DECLARE
    stale record;
BEGIN
    FOR stale IN SELECT n.nspname AS schema, c.relname AS name FROM pg_class c
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('{INTERNAL_SCHEMA}', 'pg_catalog', 'information_schema')
                    AND has_table_privilege('{CDC_ROLE}', c.oid, 'SELECT')
                    AND (NOT {INTERNAL_SCHEMA}.in_capture(n.nspname, c.relname)
                         OR {INTERNAL_SCHEMA}.capture_problem(c.oid) IS NOT NULL)
    LOOP
        EXECUTE format('REVOKE SELECT ON %I.%I FROM {CDC_ROLE}', stale.schema, stale.name);
    END LOOP;
END $revoke$;
"""


def render_init_script(init_sql_path: str) -> str:
    """The initdb hook: feeds init.sql to psql with the CDC password read from its Secret file.

    The password goes through psql's backquote expansion, so it is never an argument, an
    environment value or a line of the SQL file.
    """
    return f"""#!/bin/bash
# Runs once, when the data volume is new. init.sql is idempotent: re-applying it changes nothing.
set -euo pipefail
: "${{CDC_PASSWORD_FILE:?the CDC password file is not mounted}}"
{{
  printf '\\\\set cdc_password `cat %s`\\n' "$CDC_PASSWORD_FILE"
  cat {init_sql_path}
}} | psql --no-psqlrc --quiet --username "${{POSTGRES_USER:-{SUPERUSER}}}" --dbname postgres
"""
