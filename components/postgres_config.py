"""PostgreSQL's configuration as pure functions: server settings, client authentication, init SQL.

The PostgreSQL tier ships these into the cluster; the data-plane tests run them on a real server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .capture import DEMO_SCHEMA, INTERNAL_SCHEMA
from .quantity import Memory, below_minimum

if TYPE_CHECKING:
    from .settings import Settings, StackConfig

VERSION = "15.19"
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


def capture_sql(settings: Settings) -> str:
    """The capture step: brings the database in line with `capture`, run as the superuser (PostgreSQL
    15 lets only a superuser publish a whole schema or create an event trigger) on every change.
    Plain SQL in one transaction, safe to run any number of times."""
    capture = settings.capture
    entries = ", ".join(f"({_literal(entry)})" for entry in capture.entries)
    schemas = "".join(
        f"CREATE SCHEMA IF NOT EXISTS {schema};\nGRANT USAGE ON SCHEMA {schema} TO {CDC_ROLE};\n"
        for schema in capture.schemas
    )
    table_entries = "ARRAY[" + ", ".join(_literal(table) for table in capture.tables) + "]::text[]"
    schema_clause = (", TABLES IN SCHEMA " + ", ".join(capture.schemas)) if capture.schemas else ""
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
GRANT USAGE ON SCHEMA {INTERNAL_SCHEMA} TO {CDC_ROLE};
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

-- A captured table: in the publication, readable by the CDC role, and with full before-images
-- (an update or delete in the archive carries every old value, not only the key). Runs as its
-- owner, the superuser, for whoever created the table.
CREATE OR REPLACE FUNCTION {INTERNAL_SCHEMA}.capture_table(relation oid) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $function$
DECLARE
    target record;
BEGIN
    SELECT n.nspname AS schema, c.relname AS name, c.relreplident AS identity, c.relkind AS kind
      INTO target FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = relation;
    IF NOT FOUND OR target.kind <> 'r' OR NOT EXISTS (
        SELECT FROM {CAPTURE_TABLE} WHERE entry IN (target.schema, target.schema || '.' || target.name)) THEN
        RETURN false;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_publication_tables WHERE pubname = '{PUBLICATION}'
                   AND schemaname = target.schema AND tablename = target.name) THEN
        EXECUTE format('ALTER PUBLICATION {PUBLICATION} ADD TABLE %I.%I', target.schema, target.name);
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO {CDC_ROLE}', target.schema);
    EXECUTE format('GRANT SELECT ON %I.%I TO {CDC_ROLE}', target.schema, target.name);
    -- DEFAULT only: an identity chosen on purpose (an index, or nothing) is the owner's to keep.
    IF target.identity = 'd' THEN
        EXECUTE format('ALTER TABLE %I.%I REPLICA IDENTITY FULL', target.schema, target.name);
    END IF;
    RETURN true;
END
$function$;
REVOKE ALL ON FUNCTION {INTERNAL_SCHEMA}.capture_table(oid) FROM PUBLIC;

-- Tables created later, or moved or renamed into what `capture` names, are captured as they appear.
CREATE OR REPLACE FUNCTION {INTERNAL_SCHEMA}.capture_new_tables() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $function$
BEGIN
    PERFORM {INTERNAL_SCHEMA}.capture_table(command.objid)
       FROM pg_event_trigger_ddl_commands() AS command WHERE command.object_type = 'table';
END
$function$;
DO $trigger$
BEGIN
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
-- The publication holds exactly the internal tables, the captured schemas and the captured tables
-- that exist (one created later is added by the event trigger).
DO $publication$
DECLARE
    tables text;
BEGIN
    SELECT string_agg(format('%I.%I', split_part(entry, '.', 1), split_part(entry, '.', 2)), ', ')
      INTO tables FROM unnest({table_entries}) AS entry WHERE to_regclass(entry) IS NOT NULL;
    EXECUTE 'ALTER PUBLICATION {PUBLICATION} SET TABLE {internal}'
        || coalesce(', ' || tables, '') || '{schema_clause}';
END $publication$;
SELECT {INTERNAL_SCHEMA}.capture_table(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN {CAPTURE_TABLE} ON entry IN (n.nspname, n.nspname || '.' || c.relname) WHERE c.relkind = 'r';

-- A table no longer captured: the CDC role may not read it any more.
DO $revoke$
DECLARE
    stale record;
BEGIN
    FOR stale IN SELECT n.nspname AS schema, c.relname AS name FROM pg_class c
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('{INTERNAL_SCHEMA}', 'pg_catalog', 'information_schema')
                    AND has_table_privilege('{CDC_ROLE}', c.oid, 'SELECT')
                    AND NOT EXISTS (SELECT FROM {CAPTURE_TABLE} WHERE entry IN (n.nspname, n.nspname || '.' || c.relname))
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
