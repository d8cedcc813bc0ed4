"""The connectors tier: the database side of `capture`, the Debezium source, the snapshot signal for
tables added to `capture`, the archive sink, and the buffer guard, as resources of the stack."""

from __future__ import annotations

import pulumi

from components import buffer_config as bconf
from components import postgres_config as pgconf
from components.archive import Archive
from components.cluster import Cluster
from components.connect import Connect
from components.postgres import Postgres
from components.settings import Settings

from . import configs
from .capture_step import CaptureStep, SnapshotSignal
from .provider import KafkaConnector


class Connectors(pulumi.ComponentResource):
    capture: CaptureStep
    source: KafkaConnector
    snapshot_signal: SnapshotSignal
    sink: KafkaConnector
    buffer_guard: KafkaConnector
    outage_window: bconf.Window  # at the design rate, with empty volumes

    def __init__(
        self,
        name: str,
        settings: Settings,
        cluster: Cluster,
        postgres: Postgres,
        connect: Connect,
        archive: Archive,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("data-ingestion:connectors:Connectors", name, None, opts)
        # How long the archive may be unreachable with nothing lost: Kafka's volumes, then the slot's WAL.
        self.outage_window = bconf.configured_window(settings.config)
        if warning := bconf.window_warning(settings.config):
            pulumi.log.warn(warning, resource=self)
        # The provider talks to Connect from where `pulumi up` runs: the laptop, through the NodePort.
        url = connect.host_url
        auth = connect.rest_password.apply(lambda password: {"username": connect.rest_user, "password": password})
        # A new cluster has an empty Connect: its connectors must be created anew, not assumed.
        cluster_id = cluster.command.id if cluster.command is not None else cluster.cluster_name
        database = configs.Database(host=postgres.host, port=postgres.port)
        slot = settings.names.replication_slot
        cdc_dsn = postgres.host_dsn(database.user, postgres.cdc_password)
        # The database side of `capture`, before the source starts or changes: a table it newly
        # publishes is already in the stream when the source's new include list takes it.
        self.capture = CaptureStep(
            "capture", dsn=postgres.host_dsn(pgconf.SUPERUSER, postgres.superuser_password),
            sql=pgconf.capture_sql(settings), slot=slot, cluster_id=cluster_id,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[postgres.stateful_set]),
        )
        # The provider reads the source's replication slot through the host port, as the CDC role,
        # so that `pulumi refresh` shows how much WAL it holds back (a secret: it carries a password).
        slot_watch = cdc_dsn.apply(lambda dsn: {"dsn": dsn, "slot": slot})
        self.source = KafkaConnector(
            configs.SOURCE_NAME,
            connect_url=url,
            connector_name=configs.SOURCE_NAME,
            # Less the tables the database cannot capture, which the capture step finds: in a preview
            # that changes `capture`, only the include list waits for it.
            config={**configs.debezium_source(settings, database),
                    "table.include.list": self.capture.excluded.apply(
                        lambda excluded: configs.table_include_list(settings, excluded))},
            cluster_id=cluster_id,
            slot_watch=slot_watch,
            connect_auth=auth,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[postgres.stateful_set, connect.stateful_set, self.capture]),
        )
        # Once the source runs with its new include list: the rows of tables just added to `capture`.
        self.snapshot_signal = SnapshotSignal(
            "snapshot-signal", dsn=cdc_dsn, tables=self.capture.snapshot, revision=self.capture.revision,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.source]),
        )
        sink_config = pulumi.Output.all(archive.bucket_name, archive.catalog_database).apply(
            lambda args: configs.archive_sink(settings, configs.Bucket(args[0], archive.region, archive.prefix), args[1])
        )
        sink_name = settings.config.archive_format.sink_name
        self.sink = KafkaConnector(
            sink_name,
            connect_url=url,
            connector_name=sink_name,
            config=sink_config,
            cluster_id=cluster_id,
            connect_auth=auth,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[connect.stateful_set, connect.s3_credentials, *archive.sink_grants]
            ),
        )
        # Stops the source before any broker's volume fills, and resumes it when the archive is back.
        self.buffer_guard = KafkaConnector(
            configs.BUFFER_GUARD_NAME,
            connect_url=url,
            connector_name=configs.BUFFER_GUARD_NAME,
            config=configs.buffer_guard(settings),
            cluster_id=cluster_id,
            connect_auth=auth,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[connect.stateful_set]),
        )
        self.register_outputs({"source": self.source.state, "sink": self.sink.state,
                               "bufferGuard": self.buffer_guard.state})
