"""PostgreSQL's configuration as pure functions: server settings, client authentication, init SQL.

The PostgreSQL tier ships these into the cluster; the data-plane tests run them on a real server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .quantity import Memory

if TYPE_CHECKING:
    from .settings import StackConfig

VERSION = "15.19"
MAJOR = VERSION.split(".")[0]  # the data-plane tests run this major too: settings and SQL must hold for it
IMAGE = f"postgres:{VERSION}-bookworm"
DATABASE = "appdb"
SCHEMA = "inventory"
CAPTURED_TABLES = (f"{SCHEMA}.customers", f"{SCHEMA}.orders")
# The Secret with the tier's passwords; Connect mounts the CDC role's key from it.
CREDENTIALS_SECRET = "postgres-credentials"
CDC_PASSWORD_KEY = "cdc-password"
HEARTBEAT_SCHEMA = "cdc"
HEARTBEAT_TABLE = f"{HEARTBEAT_SCHEMA}.heartbeat"
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
        "min_wal_size": "80MB",
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
    """A psql script, safe to run any number of times. The CDC password arrives as :'cdc_password'."""
    captured = ", ".join(CAPTURED_TABLES)
    published = f"{captured}, {HEARTBEAT_TABLE}"
    replica_identity = "\n".join(f"ALTER TABLE {table} REPLICA IDENTITY FULL;" for table in CAPTURED_TABLES)
    return f"""\\set ON_ERROR_STOP on
SELECT 'CREATE DATABASE {DATABASE}'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{DATABASE}') \\gexec
\\connect {DATABASE}

CREATE SCHEMA IF NOT EXISTS {SCHEMA};

CREATE TABLE IF NOT EXISTS {SCHEMA}.customers (
    id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    email       text NOT NULL UNIQUE,
    full_name   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS {SCHEMA}.orders (
    id           bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id  bigint NOT NULL REFERENCES {SCHEMA}.customers (id),
    status       text NOT NULL DEFAULT 'new',
    amount       numeric(12, 2) NOT NULL,
    attributes   jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    ordered_at   timestamptz NOT NULL DEFAULT now()
);

-- Full before-images: an update or delete in the archive carries every column's old value, not
-- only the key (with the rest filled in with defaults by Debezium).
{replica_identity}

-- Debezium's heartbeat action query writes here, so that the slot advances even while the
-- captured tables are quiet and WAL from other databases piles up.
CREATE SCHEMA IF NOT EXISTS {HEARTBEAT_SCHEMA};
CREATE TABLE IF NOT EXISTS {HEARTBEAT_TABLE} (
    id        integer PRIMARY KEY,
    beat_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO {HEARTBEAT_TABLE} (id) VALUES (1) ON CONFLICT (id) DO NOTHING;

-- The connector's role: may stream WAL, may read what it captures, is nothing more.
SELECT 'CREATE ROLE {CDC_ROLE}'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{CDC_ROLE}') \\gexec
ALTER ROLE {CDC_ROLE} WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS
    PASSWORD :'cdc_password';
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT CONNECT ON DATABASE {DATABASE} TO {CDC_ROLE};
GRANT USAGE ON SCHEMA {SCHEMA}, {HEARTBEAT_SCHEMA} TO {CDC_ROLE};
GRANT SELECT ON {captured} TO {CDC_ROLE};
GRANT SELECT, INSERT, UPDATE ON {HEARTBEAT_TABLE} TO {CDC_ROLE};

-- Created here, so the connector needs no ownership of the tables (autocreate disabled).
SELECT 'CREATE PUBLICATION {PUBLICATION} FOR TABLE {published}'
 WHERE NOT EXISTS (SELECT FROM pg_publication WHERE pubname = '{PUBLICATION}') \\gexec
ALTER PUBLICATION {PUBLICATION} SET TABLE {published};
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
