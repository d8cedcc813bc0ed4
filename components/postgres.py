"""The PostgreSQL tier: a StatefulSet ready for change data capture, set up entirely by the stack."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as kubernetes
import pulumi_random as random

from . import postgres_config as pgconf
from .k8s import (
    checksum,
    container_security_context,
    exec_probe,
    metadata_for,
    pod_security_context,
    resources,
    service_specs,
    volume_claim,
)
from .platform import Platform
from .settings import Settings
from .storage import CLAIM_TEMPLATES, Storage, grown_claims
from .topology import POSTGRES

IMAGE = pgconf.IMAGE
UID = 999  # the image's postgres user
PORT = POSTGRES.ports["postgres"]
DATA_DIR = "/var/lib/postgresql/data"
SECRETS_DIR = "/run/secrets/postgres"
INIT_SQL_PATH = f"{pgconf.CONFIG_DIR}/init.sql"

SECRET_NAME = pgconf.CREDENTIALS_SECRET
SUPERUSER_PASSWORD_KEY = "superuser-password"
CDC_PASSWORD_KEY = pgconf.CDC_PASSWORD_KEY
CDC_USER_KEY = "cdc-user"


def config_files(settings: Settings) -> dict[str, str]:
    return {
        "postgresql.conf": pgconf.render_postgresql_conf(settings.config),
        "pg_hba.conf": pgconf.render_pg_hba(),
        "init.sql": pgconf.init_sql(),
        "10-init.sh": pgconf.render_init_script(INIT_SQL_PATH),
    }


class Postgres(pulumi.ComponentResource):
    host: str
    port: int
    host_port: int
    database: str
    cdc_user: str
    secret_name: str
    cdc_password: pulumi.Output[str]
    superuser_password: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        settings: Settings,
        platform: Platform,
        storage: Storage,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("data-ingestion:postgres:Postgres", name, None, opts)
        namespace = settings.config.namespace
        child = pulumi.ResourceOptions(parent=self)
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[platform.namespace_resource])

        metadata = metadata_for(settings, POSTGRES)

        superuser_password = random.RandomPassword("postgres-superuser-password", length=32, special=False, opts=child)
        cdc_password = random.RandomPassword("postgres-cdc-password", length=32, special=False, opts=child)
        self.secret = kubernetes.core.v1.Secret(
            "postgres-credentials",
            metadata=metadata(SECRET_NAME),
            type="Opaque",
            string_data={
                SUPERUSER_PASSWORD_KEY: superuser_password.result,
                CDC_PASSWORD_KEY: cdc_password.result,
                CDC_USER_KEY: pgconf.CDC_ROLE,
            },
            opts=in_namespace,
        )

        files = config_files(settings)
        self.config_map = kubernetes.core.v1.ConfigMap(
            "postgres-config", metadata=metadata("postgres-config"), data=files, opts=in_namespace
        )

        in_cluster, external = service_specs(POSTGRES, "postgres", settings.host_port(POSTGRES))
        self.headless_service = kubernetes.core.v1.Service(
            "postgres-headless-service",
            metadata=metadata("postgres"),
            spec={**in_cluster, "clusterIP": "None"},  # the StatefulSet's serviceName
            opts=in_namespace,
        )
        self.node_port_service = kubernetes.core.v1.Service(
            "postgres-node-port-service", metadata=metadata("postgres-external"), spec=external, opts=in_namespace
        )

        pg_isready = ["pg_isready", "--host=127.0.0.1", f"--port={PORT}", f"--username={pgconf.SUPERUSER}"]
        self.stateful_set = kubernetes.apps.v1.StatefulSet(
            "postgres",
            metadata=metadata("postgres"),
            spec={
                "serviceName": "postgres",
                "replicas": 1,
                "selector": {"matchLabels": POSTGRES.selector},
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                "template": {
                    "metadata": {
                        "labels": POSTGRES.labels(settings.names.instance),
                        "annotations": {"data-ingestion/config-checksum": checksum(files)},
                    },
                    "spec": {
                        "serviceAccountName": POSTGRES.service_account,
                        "automountServiceAccountToken": False,
                        "enableServiceLinks": False,
                        "terminationGracePeriodSeconds": 60,
                        "securityContext": pod_security_context(UID),
                        "containers": [
                            {
                                "name": "postgres",
                                "image": IMAGE,
                                "imagePullPolicy": "IfNotPresent",
                                "args": ["-c", f"config_file={pgconf.CONFIG_DIR}/postgresql.conf"],
                                "env": [
                                    {"name": "POSTGRES_USER", "value": pgconf.SUPERUSER},
                                    {"name": "POSTGRES_PASSWORD_FILE", "value": f"{SECRETS_DIR}/{SUPERUSER_PASSWORD_KEY}"},
                                    {"name": "CDC_PASSWORD_FILE", "value": f"{SECRETS_DIR}/{CDC_PASSWORD_KEY}"},
                                    # A subdirectory: initdb refuses a mount point that holds lost+found.
                                    {"name": "PGDATA", "value": f"{DATA_DIR}/pgdata"},
                                ],
                                "ports": [{"name": "postgres", "containerPort": PORT, "protocol": "TCP"}],
                                "resources": resources(settings.config.postgres_memory, "250m"),
                                "securityContext": container_security_context(),
                                "startupProbe": exec_probe(pg_isready, 5, 60),
                                "readinessProbe": exec_probe(pg_isready, 10, 3),
                                "livenessProbe": exec_probe(pg_isready, 10, 6),
                                "volumeMounts": [
                                    {"name": "data", "mountPath": DATA_DIR},
                                    {"name": "config", "mountPath": pgconf.CONFIG_DIR, "readOnly": True},
                                    {"name": "initdb", "mountPath": "/docker-entrypoint-initdb.d", "readOnly": True},
                                    {"name": "credentials", "mountPath": SECRETS_DIR, "readOnly": True},
                                    {"name": "run", "mountPath": "/var/run/postgresql"},
                                    {"name": "tmp", "mountPath": "/tmp"},
                                ],
                            }
                        ],
                        "volumes": [
                            {
                                "name": "config",
                                "configMap": {
                                    "name": "postgres-config",
                                    "items": [{"key": key, "path": key} for key in ("postgresql.conf", "pg_hba.conf", "init.sql")],
                                },
                            },
                            {
                                "name": "initdb",
                                "configMap": {
                                    "name": "postgres-config",
                                    "items": [{"key": "10-init.sh", "path": "10-init.sh", "mode": 0o555}],
                                },
                            },
                            {
                                "name": "credentials",
                                "secret": {
                                    "secretName": SECRET_NAME,
                                    "defaultMode": 0o400,
                                    "items": [
                                        {"key": SUPERUSER_PASSWORD_KEY, "path": SUPERUSER_PASSWORD_KEY},
                                        {"key": CDC_PASSWORD_KEY, "path": CDC_PASSWORD_KEY},
                                    ],
                                },
                            },
                            {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                        ],
                    },
                },
                "volumeClaimTemplates": [volume_claim(POSTGRES.claim_labels, storage.database_class, settings.config.postgres_storage)],
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                ignore_changes=[CLAIM_TEMPLATES],
                depends_on=[platform.namespace_resource, platform.service_accounts[POSTGRES.name],
                            self.secret, self.config_map, self.headless_service],
            ),
        )
        self.claims = grown_claims(self.stateful_set, "postgres", settings.config.namespace, 1,
                                   settings.config.postgres_storage, storage)

        self.host = f"postgres.{namespace}.svc.cluster.local"
        self.port = PORT
        self.host_port = settings.host_port(POSTGRES).host_port
        self.database = pgconf.DATABASE
        self.cdc_user = pgconf.CDC_ROLE
        self.publication = pgconf.PUBLICATION
        self.secret_name = SECRET_NAME
        self.cdc_password = pulumi.Output.secret(cdc_password.result)
        self.superuser_password = pulumi.Output.secret(superuser_password.result)
        self.register_outputs(
            {
                "host": self.host,
                "port": self.port,
                "hostPort": self.host_port,
                "database": self.database,
                "cdcUser": self.cdc_user,
                "publication": self.publication,
                "secretName": self.secret_name,
                "cdcPassword": self.cdc_password,
            }
        )

    def host_dsn(self, user: str, password: pulumi.Output[str]) -> pulumi.Output[str]:
        """A libpq connection string from where `pulumi up` runs (the laptop, through the NodePort);
        a secret, as it carries the password."""
        return pulumi.Output.secret(password.apply(
            lambda secret: f"host=localhost port={self.host_port} dbname={self.database} user={user} "
                           f"password={secret} connect_timeout=5"
        ))
