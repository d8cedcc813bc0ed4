"""The storage tier: StorageClasses for databases and streaming (kept), and for caches (not)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as kubernetes

from .settings import Settings
from .topology import PROJECT


class Storage(pulumi.ComponentResource):
    database_class: str
    streaming_class: str
    cache_class: str

    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("data-ingestion:storage:Storage", name, None, opts)
        # StorageClasses are cluster-wide: prefix them with the namespace so that two stacks on
        # one shared cluster (cluster=existing, different namespaces) do not fight over them.
        prefix = settings.config.namespace
        self.database_class = f"{prefix}-database"
        self.streaming_class = f"{prefix}-streaming"
        self.cache_class = f"{prefix}-cache"
        # Losing a PersistentVolumeClaim (a renamed StatefulSet, a destroy) must not lose the WAL or
        # the Kafka log with it; a cache holds only what can be downloaded again.
        reclaim = {"database": "Retain", "streaming": "Retain", "cache": "Delete"}
        self.classes = {
            purpose: kubernetes.storage.v1.StorageClass(
                f"{purpose}-storage-class",
                metadata=kubernetes.meta.v1.ObjectMetaArgs(
                    name=class_name,
                    labels={"app.kubernetes.io/part-of": PROJECT, "app.kubernetes.io/managed-by": "pulumi"},
                ),
                provisioner=settings.config.storage_provisioner,
                reclaim_policy=reclaim[purpose],
                # Bind where the pod is scheduled: a local volume on the wrong node is unusable.
                volume_binding_mode="WaitForFirstConsumer",
                allow_volume_expansion=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for purpose, class_name in (
                ("database", self.database_class), ("streaming", self.streaming_class), ("cache", self.cache_class)
            )
        }
        self.register_outputs(
            {"databaseClass": self.database_class, "streamingClass": self.streaming_class, "cacheClass": self.cache_class}
        )
