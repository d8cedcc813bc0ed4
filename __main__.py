"""data-ingestion: PostgreSQL ──► Debezium ──► Kafka ──► archive sink (JSONL or Iceberg) ──► S3, as one stack."""

import pulumi

from components.archive import Archive
from components.buffer_config import RATE
from components.cluster import Cluster, kubectl_hint
from components.connect import Connect
from components.kafka import Kafka
from components.platform import Platform
from components.postgres import Postgres
from components.schema_registry import SchemaRegistry
from components.stack import load_settings
from components.storage import Storage
from connectors.cdc import Connectors
from connectors.configs import BUFFER_GUARD_NAME, SOURCE_NAME

settings = load_settings()  # every config problem is reported here, before any resource exists

cluster = Cluster("cluster", settings)
on_cluster = pulumi.ResourceOptions(providers=[cluster.provider])
storage = Storage("storage", settings, on_cluster)
platform = Platform("platform", settings, on_cluster)
postgres = Postgres("postgres", settings, platform, storage, on_cluster)
kafka = Kafka("kafka", settings, platform, storage, on_cluster)
schema_registry = SchemaRegistry("schema-registry", settings, platform, kafka, on_cluster)
archive = Archive("archive", settings)
connect = Connect("connect", settings, platform, kafka, schema_registry, postgres, archive, storage, on_cluster)
connectors = Connectors("connectors", settings, cluster, postgres, connect, archive)

pulumi.export("clusterName", cluster.cluster_name)
pulumi.export("kubeconfigPath", cluster.kubeconfig_path)
pulumi.export("kubectl", kubectl_hint(cluster))
pulumi.export("namespace", platform.namespace)
pulumi.export("storageClasses", {"database": storage.database_class, "streaming": storage.streaming_class,
                                  "cache": storage.cache_class})
pulumi.export("hostPorts", {port.name: port.host_port for port in settings.host_ports})
pulumi.export(
    "postgres",
    {
        "inCluster": f"{postgres.host}:{postgres.port}",
        "host": f"localhost:{postgres.host_port}",
        "database": postgres.database,
        "cdcUser": postgres.cdc_user,
        "credentialsSecret": postgres.secret_name,
    },
)
pulumi.export("kafka", {"inCluster": kafka.bootstrap_servers, "host": kafka.host_bootstrap_servers})
pulumi.export("schemaRegistry", {"inCluster": schema_registry.url, "host": schema_registry.host_url,
                                "confluentCompatible": schema_registry.confluent_url})
pulumi.export("connect", {"inCluster": connect.url, "host": connect.host_url})
# Connect's REST API asks for these: `pulumi stack output --show-secrets connectCredentials`.
pulumi.export("connectCredentials", {"user": connect.rest_user, "password": connect.rest_password})
pulumi.export(
    "connectors",
    {
        "source": {"name": SOURCE_NAME, "state": connectors.source.state, "slot": connectors.source.slot},
        "sink": {"name": settings.config.archive_format.sink_name, "state": connectors.sink.state},
        "bufferGuard": {"name": BUFFER_GUARD_NAME, "state": connectors.buffer_guard.state},
        "serialization": settings.config.serialization.name,
    },
)
# What an archive outage the stack survives, losing nothing, at the rate it is built for.
pulumi.export("outageWindow", {"eventsPerSecond": RATE, "seconds": round(connectors.outage_window.seconds),
                               "text": connectors.outage_window.describe()})
pulumi.export(
    "archive",
    {"bucket": archive.bucket_name, "arn": archive.bucket_arn, "region": archive.region, "prefix": archive.prefix,
     "format": settings.config.archive_format.name, "glueDatabase": archive.catalog_database},
)
