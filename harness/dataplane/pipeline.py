"""The whole data plane on loopback: PostgreSQL, Kafka, a Connect worker, moto's S3, the connectors.

Every piece runs the configuration the stack renders; only addresses, ports and paths differ, and
the S3 sink is pointed at moto instead of AWS. Used by the data-plane tests and the benchmark.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests
from pulumi.runtime.proto import provider_pb2

from components import connect_config as cconf
from components import postgres_config as pgconf
from components.formats import JSONL, plugins_for
from components.postgres_config import CDC_PASSWORD_KEY, CDC_ROLE
from components.settings import Settings
from components.stack import parse_settings
from connectors import configs
from operations import smoke
from operations.completeness import Coverage
from operations.smoke import archived_records
from harness.awsfake import FakeAws, apply_archive
from harness.needs import require
from harness.tally import tally
from harness.dataplane.faultproxy import FaultProxy
from harness.dataplane.kafka import TEST_JIT_OPTIONS, ConnectWorker, KafkaCluster, require_kafka_tools, wait_for
from harness.dataplane.plugins import installed_plugins, require_jdk
from harness.dataplane.postgres import INSTALL_HINT, PostgresServer, postgres_bin_dir
from harness.dataplane.registry import RegistryServer
from harness.providerhost import ProviderHost, connectors_of
from harness.stackgraph import run_stack

BATCH = 25  # rows per transaction of a Load
CAPTURE, SIGNAL = "capture", "snapshot-signal"  # the program's names of the database steps
ADMIN_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


def stack_config(brokers: int, **keys: Any) -> dict[str, Any]:
    """The dev stack's config keys; with one broker, that broker gets one broker's share of memory."""
    return {**({} if brokers == 3 else {"kafkaBrokers": brokers, "kafkaMemory": "682Mi"}), **keys}


def stack_settings(brokers: int, **keys: Any) -> Settings:
    return parse_settings("data-ingestion", "dev", stack_config(brokers, **keys))


def require_dataplane() -> None:
    require(postgres_bin_dir() is not None, "PostgreSQL server", INSTALL_HINT)
    require_jdk()
    require_kafka_tools()


@dataclass
class Pipeline:
    settings: Settings
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="di-pipeline-")))
    pg: PostgresServer | None = None
    kafka: KafkaCluster | None = None
    connect: ConnectWorker | None = None
    aws: FakeAws | None = None
    registry: RegistryServer | None = None  # with serialization avro
    # The sink reaches moto through a proxy that the fault tests can cut or stall.
    with_s3_proxy: bool = False
    s3_proxy: FaultProxy | None = None
    jit_options: str = TEST_JIT_OPTIONS  # "" for the JVMs' own compilation, as make bench runs them
    # Each broker's log directory on a filesystem of its own, kafkaStorage in size, as a claim is.
    kafka_volumes: bool = False
    _read: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict, repr=False)
    state: dict[str, dict[str, Any]] = field(default_factory=dict)  # each deployed resource's outputs

    def start(self) -> Pipeline:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.pg = PostgresServer(self.settings).start()
        self.pg.run_init()

        self.aws = FakeAws()
        if self.with_s3_proxy:
            self.s3_proxy = FaultProxy(self.aws.port)
        if self.settings.config.serialization.registry:
            self.registry = RegistryServer(self.settings)
        graph = run_stack("dev", {"archiveFormat": self.settings.config.archive_format.name,
                                  "serialization": self.settings.config.serialization.name})
        self.registered = connectors_of(graph)
        self.archive = apply_archive(graph, self.aws, prefix=self.settings.config.archive_prefix)
        self.region = graph.outputs["archive"]["region"]
        self.operator = self._operator_credentials()
        self.aws.enforce_iam()  # from here on the sink writes with its own least-privilege key

        self.secrets_dir = self.root / "secrets"
        self._secret("s3", "aws-access-key-id", self.archive.sink_credentials["aws_access_key_id"])
        self._secret("s3", "aws-secret-access-key", self.archive.sink_credentials["aws_secret_access_key"])
        self._secret("s3", cconf.AWS_PROFILE_FILE, cconf.aws_profile(self.archive.sink_credentials["aws_access_key_id"],
                                                                      self.archive.sink_credentials["aws_secret_access_key"]))
        self._secret("postgres", CDC_PASSWORD_KEY, self.pg.cdc_password)

        self.plugin_dir = installed_plugins(plugins_for(self.settings.config.archive_format,
                                                        self.settings.config.serialization))
        self.kafka = KafkaCluster(self.settings, self.jit_options, self.kafka_volumes).start()
        self._before_connect()
        self.connect = ConnectWorker(self.settings, self.kafka, self.plugin_dir, self.secrets_dir).start()

    def _before_connect(self) -> None:
        """What the Connect pod runs before its worker: for Iceberg, the control topic's creation."""
        if self.settings.config.archive_format.typed:
            self.kafka.topics_tool(cconf.control_topic_arguments(self.settings, bootstrap=self.kafka.bootstrap))

    def replace_kafka(self) -> None:
        """A new Kafka cluster and Connect worker, empty, as after the Kind cluster is replaced:
        PostgreSQL and the bucket stay (the bucket is kept on destroy)."""
        self.connect.stop()
        self.kafka.stop()
        self.kafka = KafkaCluster(self.settings, self.jit_options, self.kafka_volumes).start()
        self._before_connect()
        self.connect = ConnectWorker(self.settings, self.kafka, self.plugin_dir, self.secrets_dir).start()

    def _operator_credentials(self) -> dict[str, str]:
        iam = self.aws.client("iam")
        iam.create_user(UserName="operator")
        iam.put_user_policy(UserName="operator", PolicyName="admin", PolicyDocument=ADMIN_POLICY)
        key = iam.create_access_key(UserName="operator")["AccessKey"]
        return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}

    def _secret(self, folder: str, name: str, value: str) -> None:
        directory = self.secrets_dir / folder
        directory.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(value)
        (directory / name).chmod(0o400)

    # -- the connectors, as the stack renders them -------------------------------------------------
    def source_config(self, settings: Settings | None = None) -> dict[str, str]:
        database = configs.Database(host="127.0.0.1", port=self.pg.port)
        excluded = self.state.get(CAPTURE, {}).get("excluded", ())
        return configs.debezium_source(settings or self.settings, database, secrets_dir=str(self.secrets_dir),
                                       registry_url=self.registry_url, excluded=excluded)

    def buffer_guard_config(self) -> dict[str, str]:
        return configs.buffer_guard(self.settings, kafka_bootstrap=self.kafka.bootstrap, rest_url=self.connect.url,
                                    rest_secrets_dir=str(self.connect.rest_dir))

    @property
    def registry_url(self) -> str | None:
        return self.registry.url if self.registry else None

    @property
    def sink_name(self) -> str:
        return self.settings.config.archive_format.sink_name

    def sink_config(self) -> dict[str, str]:
        endpoint = self.s3_proxy.endpoint if self.s3_proxy else self.aws.endpoint
        bucket = configs.Bucket(self.archive.bucket, self.region, self.archive.prefix, endpoint=endpoint)
        return configs.archive_sink(self.settings, bucket, self.archive.glue_database, secrets_dir=str(self.secrets_dir),
                                    kafka_bootstrap=self.kafka.bootstrap, registry_url=self.registry_url)

    def declared(self, name: str, config: dict[str, str], like: str = JSONL.sink_name) -> dict[str, Any]:
        """The properties the program registers for connector `like` (the pickled provider included),
        named `name`, with the harness's Connect and this config."""
        declared = {**self.registered[like], "connectorName": name, "connectUrl": self.connect.url, "config": config,
                    "timeoutSeconds": 180,
                    "connectAuth": {"username": self.connect.auth[0], "password": self.connect.auth[1]}}
        if "slotWatch" in declared:  # the source reads its slot as the CDC role, as from the laptop
            declared["slotWatch"] = {**declared["slotWatch"], "dsn": self.pg.dsn(user=CDC_ROLE)}
        return declared

    def capture_step(self, settings: Settings) -> dict[str, Any]:
        """The capture step as the program registers it for `settings`, reaching this PostgreSQL."""
        return {**self.registered[CAPTURE], "dsn": self.pg.dsn(), "sql": pgconf.capture_sql(settings),
                "slot": settings.names.replication_slot}

    def snapshot_signal(self) -> dict[str, Any]:
        """The signal as the program registers it: fed by the capture step's outputs."""
        step = self.state[CAPTURE]
        return {**self.registered[SIGNAL], "dsn": self.pg.dsn(user=CDC_ROLE), "tables": step["snapshot"],
                "revision": step["revision"]}

    def deploy_connectors(self) -> None:
        """The database steps and the rendered connectors, created as `pulumi up` creates them
        (through the SDK's provider host, in the program's order; the connectors at once): Check,
        then Create, which for a connector returns once it has stayed RUNNING."""
        with ProviderHost() as host, ThreadPoolExecutor(3) as pool:
            self.state = dict([host.up(CAPTURE, self.capture_step(self.settings))])
            wanted = {configs.SOURCE_NAME: self.source_config(), self.sink_name: self.sink_config(),
                      configs.BUFFER_GUARD_NAME: self.buffer_guard_config()}
            created = [pool.submit(host.up, name, self.declared(name, config, like=name))
                       for name, config in wanted.items()]
            self.state.update(future.result() for future in created)
            self.state.update([host.up(SIGNAL, self.snapshot_signal())])

    def refresh_capture(self) -> None:
        """`pulumi refresh` of the capture step: its outputs read again from the database."""
        with ProviderHost() as host:
            _, self.state[CAPTURE] = host.read(CAPTURE, CAPTURE, self.state[CAPTURE], self.capture_step(self.settings))

    def update_stack(self, settings: Settings) -> list[str]:
        """`pulumi up` after a config change (`pulumi config set --path 'capture[1]' ...`): in the
        program's order, each resource is checked and diffed against its state, and updated where
        it changed. Returns the names of those updated."""
        updated = []
        with ProviderHost() as host:
            for name, declared in ((CAPTURE, lambda: self.capture_step(settings)),
                                   (configs.SOURCE_NAME, lambda: self.declared(configs.SOURCE_NAME,
                                                                               self.source_config(settings),
                                                                               like=configs.SOURCE_NAME)),
                                   (SIGNAL, self.snapshot_signal)):
                olds = self.state[name]
                checked = host.check(name, olds, declared())
                assert checked.failures == [], checked.failures
                if host.diff(name, name, olds, checked.inputs).changes == provider_pb2.DiffResponse.DIFF_SOME:
                    self.state[name] = host.update(name, name, olds, checked.inputs)
                    updated.append(name)
        self.settings = settings
        return updated

    # -- what reached S3 --------------------------------------------------------------------------
    def s3_listing(self, topic: str = "") -> dict[str, str]:
        """Every archived object's key and ETag (of one topic's folder, if given)."""
        s3 = self.s3_client()
        found = {}
        folder = f"{self.archive.prefix}/{topic}/" if topic else f"{self.archive.prefix}/"
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.archive.bucket, Prefix=folder):
            found.update((item["Key"], item["ETag"]) for item in page.get("Contents", []))
        return found

    def s3_objects(self) -> list[str]:
        return list(self.s3_listing())

    def s3_records(self, topic: str = "") -> Iterator[dict[str, Any]]:
        """Every archived record (of one topic, if given), in key order. An object is read and parsed once per
        ETag: the tests poll the archive every few seconds, and moto serving it again competes with the
        pipeline for CPU."""
        s3 = self.s3_client()
        for key, etag in self.s3_listing(topic).items():
            if (key, etag) not in self._read:
                body = s3.get_object(Bucket=self.archive.bucket, Key=key, IfMatch=etag)["Body"].read()
                self._read[key, etag] = [{**record, "_object": key} for record in archived_records(key, body)]
            yield from self._read[key, etag]

    def snapshot_reads(self) -> Counter[str]:
        """Archived records read by a snapshot (`op` `r`), per topic."""
        return Counter(record["topic"] for record in self.s3_records()
                       if record["value"] and record["value"]["op"] == "r")

    def iceberg_catalog(self):
        """The Glue catalog as a reader downstream sees it, through pyiceberg, with the operator's key."""
        from pyiceberg.catalog.glue import GlueCatalog

        key = {"access-key-id": self.operator["aws_access_key_id"],
               "secret-access-key": self.operator["aws_secret_access_key"], "region": self.region}
        return GlueCatalog("archive", **{f"{service}.{name}": value for service in ("glue", "s3")
                                         for name, value in key.items()},
                           **{"glue.endpoint": self.aws.endpoint, "s3.endpoint": self.aws.endpoint,
                              "s3.force-virtual-addressing": "false"})

    def iceberg_rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of the changelog table of captured table `schema.table` (none before its first commit)."""
        from pyiceberg.exceptions import NoSuchTableError

        name = configs.iceberg_table(self.archive.glue_database, table)
        try:
            return self.iceberg_catalog().load_table(name).scan().to_arrow().to_pylist()
        except NoSuchTableError:
            return []

    def s3_client(self):
        """The operator's S3 client: reads everything, as a user's own credentials would."""
        return self.aws.client("s3", self.operator)

    def endpoints(self) -> smoke.Endpoints:
        """What `make verify` and `make status` read from a live stack's outputs, for this pipeline."""
        return smoke.Endpoints(
            connect_url=self.connect.url, postgres_dsn=self.pg.dsn(), kafka_bootstrap=self.kafka.bootstrap,
            bucket=self.archive.bucket, prefix=self.archive.prefix, s3=self.s3_client,
            replication_slot=self.settings.names.replication_slot, connect_auth=self.connect.auth,
            archive=self.settings.config.archive_format, glue_database=self.archive.glue_database or "",
            catalog=self.iceberg_catalog if self.settings.config.archive_format.typed else None,
            registry_url=self.registry.confluent_url if self.registry else "",
        )

    def archive_coverage(self) -> list[Coverage]:
        """The completeness check that `make verify` runs, on this pipeline."""
        return smoke.archive_coverage(self.endpoints())

    def sql(self, statement: str, *params: Any) -> list[tuple] | None:
        """Run one statement as the superuser, in autocommit; its rows, if it returns any."""
        with psycopg.connect(self.pg.dsn(), autocommit=True) as conn:
            cursor = conn.execute(statement, params or None)
            return cursor.fetchall() if cursor.description else None

    def snapshot_source_again(self) -> None:
        """The README's recovery when the source cannot read on from its slot: drop the slot and
        restart the source, which then snapshots the captured tables again (snapshotMode when_needed)."""
        self.sql("SELECT pg_drop_replication_slot(%s)", self.settings.names.replication_slot)
        requests.post(f"{self.connect.url}/connectors/{configs.SOURCE_NAME}/restart?includeTasks=true",
                      timeout=30, auth=self.connect.auth).raise_for_status()

    # -- faults, as the fault tests inflict them ----------------------------------------------------
    def kill_and_restart_connect(self) -> None:
        """SIGKILL the Connect worker, and start it again 3 s later."""
        self.connect.kill()
        time.sleep(3)
        self.connect.start()

    def kill_and_restart_broker(self, node: int = 1) -> None:
        """SIGKILL one broker for 10 s: the load goes on with two (min.insync.replicas is 2)."""
        self.kafka.kill(node)
        time.sleep(10)
        self.kafka.restart_node(node)

    def source_state(self) -> str:
        """The source connector's state as Connect reports it (RUNNING, PAUSED, FAILED...)."""
        status = requests.get(f"{self.connect.url}/connectors/{configs.SOURCE_NAME}/status", timeout=10,
                              auth=self.connect.auth).json()
        return status["connector"]["state"]

    def failed_source_task(self) -> dict[str, Any] | None:
        """The source's task 0 if it is FAILED, else None."""
        status = requests.get(f"{self.connect.url}/connectors/{configs.SOURCE_NAME}/status", timeout=10,
                              auth=self.connect.auth).json()
        tasks = status.get("tasks") or []
        return tasks[0] if tasks and tasks[0]["state"] == "FAILED" else None

    def pids(self) -> dict[str, int]:
        found = dict(self.kafka.pids()) if self.kafka else {}
        if self.connect and self.connect.process:
            found["connect"] = self.connect.process.pid
        if self.registry and self.registry.process:
            found["registry"] = self.registry.process.pid
        return found

    def stop(self) -> None:
        for part in (self.connect, self.kafka, self.s3_proxy, self.aws, self.registry, self.pg):
            if part is not None:
                try:
                    part.stop()
                except Exception:  # keep stopping the rest
                    pass
        shutil.rmtree(self.root, ignore_errors=True)


def deployed(settings: Settings, **options: Any) -> Iterator[Pipeline]:
    """A module's pipeline fixture: started, its connectors created as `pulumi up` creates them,
    stopped after the module's last test."""
    require_dataplane()
    running = Pipeline(settings, **options).start()
    try:
        running.deploy_connectors()
        yield running
    finally:
        running.stop()


class Load(threading.Thread):
    """Commits `rows` customer rows in transactions of BATCH; counts only what PostgreSQL acknowledged."""

    def __init__(self, pipeline: Pipeline, label: str, rows: int, pause: float = 0.01):
        super().__init__(daemon=True)
        self.pipeline, self.label, self.rows, self.pause = pipeline, label, rows, pause
        self.committed: list[str] = []
        self.retries = 0

    def run(self) -> None:
        next_row = 0
        conn = None
        while next_row < self.rows:
            try:
                conn = conn or psycopg.connect(self.pipeline.pg.dsn(), connect_timeout=5)
                emails = [f"{self.label}-{i}@load.test" for i in range(next_row, min(next_row + BATCH, self.rows))]
                with conn.transaction():
                    conn.cursor().executemany(
                        "INSERT INTO inventory.customers (email, full_name) VALUES (%s, 'load')", [(e,) for e in emails]
                    )
                self.committed += emails
                next_row += len(emails)
                time.sleep(self.pause)
            except psycopg.OperationalError:
                self.retries += 1  # PostgreSQL is restarting: this batch was not committed, try again
                conn = None
                time.sleep(0.5)

    def wait_for(self, rows: int, timeout: float = 120) -> None:
        wait_for(lambda: len(self.committed) >= rows, timeout, f"{rows} committed rows")


def load_through(pipeline: Pipeline, label: str, fault, rows: int, pause: float = 0.01) -> Load:
    """Commit `rows` rows labelled `label`, inflicting `fault` once a third are in; the finished load."""
    load = Load(pipeline, label, rows, pause)
    load.start()
    load.wait_for(rows // 3)
    fault()
    load.join(timeout=600)
    assert not load.is_alive(), "the load did not finish"
    return load


# -- a fault under load, and what it cost: for the fault tests of either serialization -------------
ROWS = 3000
LOAD_TOPIC = configs.change_topic("inventory.customers")


def archived(pipeline: Pipeline, label: str) -> Counter:
    """The load's rows labelled `label` in the archive: how often each was archived as a row."""
    emails = Counter()
    for record in pipeline.s3_records(LOAD_TOPIC):
        after = (record["value"] or {}).get("after") or {}
        if str(after.get("email", "")).startswith(f"{label}-") and record["value"]["op"] in ("c", "r"):
            emails[after["email"]] += 1
    return emails


def assert_archive_complete(pipeline: Pipeline) -> None:
    """Every offset the sink committed is in an object: no check may read OK over a gap."""
    covered = pipeline.archive_coverage()
    for partition in covered:
        print(f"  {partition.describe()}")
    assert covered and all(partition.ok for partition in covered)


def run_with_fault(pipeline: Pipeline, label: str, fault, rows: int = ROWS, pause: float = 0.01) -> None:
    load = load_through(pipeline, label, fault, rows, pause)
    committed = set(load.committed)

    def all_archived():
        seen = archived(pipeline, label)
        return seen if committed <= set(seen) else None

    try:
        wait_for(all_archived, 300, f"all {len(committed)} rows of '{label}' in S3", pipeline.connect.log, 5)
    finally:
        seen = archived(pipeline, label)
        lost = len(committed - set(seen))
        duplicates = sum(count - 1 for count in seen.values())
        tally(f"{label}: committed {len(committed)}, archived {len(committed & set(seen))}, "
              f"lost {lost}, duplicates {duplicates}, load retries {load.retries}")
    assert not committed - set(seen)
    assert_archive_complete(pipeline)
