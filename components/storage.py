"""The storage tier: StorageClasses for databases and streaming (kept), and for caches (not); the
kept volumes' sizes, which may grow and never shrink.

VolumeSizesProvider is pickled by reference (this module must stay importable by Pulumi's dynamic
provider host)."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as kubernetes
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ResourceProvider, UpdateResult

from .quantity import Memory
from .settings import Settings
from .topology import PROJECT

# A StatefulSet's volume claim templates cannot change (the API server refuses the update, and
# Pulumi's provider would replace the StatefulSet instead: every pod stopped at once, and the new
# ones bound to the old claims at their old size). Each StatefulSet ignores changes to them, and a
# size set later reaches the claims through grown_claims.
CLAIM_TEMPLATES = "spec.volumeClaimTemplates"


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
                # A kept volume grows with its setting (grown_claims); a cache's is sized once.
                allow_volume_expansion=purpose != "cache",
                opts=pulumi.ResourceOptions(parent=self),
            )
            for purpose, class_name in (
                ("database", self.database_class), ("streaming", self.streaming_class), ("cache", self.cache_class)
            )
        }
        self.sizes = VolumeSizes("volume-sizes", {"kafkaStorage": settings.config.kafka_storage,
                                                  "postgresStorage": settings.config.postgres_storage},
                                 opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs(
            {"databaseClass": self.database_class, "streamingClass": self.streaming_class, "cacheClass": self.cache_class}
        )


def grown_claims(stateful_set: kubernetes.apps.v1.StatefulSet, name: str, namespace: str, replicas: int,
                 size: Memory, storage: Storage, template: str = "data") -> list[kubernetes.core.v1.PersistentVolumeClaimPatch]:
    """The claims the StatefulSet `name` made of its template `template`, one per pod, asked for
    `size`: the claims of a first `up` already have it; a size raised later grows them, where the
    StorageClass's provisioner can expand a volume. A smaller size VolumeSizes refuses at preview
    (Pulumi's provider previews no patch); the API server would refuse it at `up`, naming each claim."""
    return [
        kubernetes.core.v1.PersistentVolumeClaimPatch(
            f"{name}-{template}-{ordinal}",
            metadata={"name": f"{template}-{name}-{ordinal}", "namespace": namespace,
                      # The StatefulSet controller created the claim and owns its size: take it over.
                      "annotations": {"pulumi.com/patchForce": "true"}},
            spec={"resources": {"requests": {"storage": size.quantity()}}},
            opts=pulumi.ResourceOptions(parent=stateful_set,
                                        depends_on=[stateful_set, storage.sizes, *storage.classes.values()]),
        )
        for ordinal in range(replicas)
    ]


def shrunk(olds: dict[str, Any], news: dict[str, Any]) -> list[tuple[str, str]]:
    """(setting, why) for each volume size set smaller than the volumes it has: none can shrink."""
    problems = []
    for setting, new in news.items():
        if setting.startswith("__"):  # the engine's own (__provider)
            continue
        old = olds.get(setting)
        if isinstance(old, str) and isinstance(new, str) and Memory.parse(new) < Memory.parse(old):
            problems.append((setting, (
                f"{setting} {new} is smaller than the {old} its volumes already have, and a volume cannot shrink "
                f"(Kubernetes refuses it). Set it back: pulumi config set data-ingestion:{setting} {old}")))
    return problems


class VolumeSizesProvider(ResourceProvider):
    """Refuses, at preview, a kept volume's size made smaller than it was; holds nothing else."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, [CheckFailure(setting, why) for setting, why in shrunk(olds or {}, news)])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in news if not key.startswith("__") and olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult("volume-sizes", props)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(news)


class VolumeSizes(pulumi.dynamic.Resource):
    """The size of each kept volume, by the setting that gives it (kafkaStorage: "5Gi")."""

    def __init__(self, name: str, sizes: dict[str, Memory], opts: pulumi.ResourceOptions | None = None):
        super().__init__(VolumeSizesProvider(), name, {setting: str(size) for setting, size in sizes.items()}, opts)
