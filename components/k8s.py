"""Small builders every tier uses for its pods: hardening, resources, labels, config checksums."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from .quantity import Memory
from .settings import Settings
from .topology import HostPort, Workload

# Our machines, and the laptops we target, have 2 cores: a CPU limit at that never throttles a
# burst, yet still states the bound.
CPU_LIMIT = "2"


def pod_security_context(uid: int) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(read_only_root: bool = True) -> dict[str, Any]:
    """The Pod Security Standard "restricted", plus a read-only root file system."""
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": read_only_root,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources(memory: Memory, cpu_request: str) -> dict[str, Any]:
    # Memory request equals the limit: the budget is a promise, not a hope.
    return {
        "requests": {"memory": memory.quantity(), "cpu": cpu_request},
        "limits": {"memory": memory.quantity(), "cpu": CPU_LIMIT},
    }


def checksum(*parts: Any) -> str:
    """A stable digest of rendered configuration; in a pod annotation it rolls the pods on change."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _probe(action: dict[str, Any], period: int, failures: int, timeout: int) -> dict[str, Any]:
    return {**action, "periodSeconds": period, "failureThreshold": failures, "timeoutSeconds": timeout}


def exec_probe(command: list[str], period: int, failures: int, timeout: int = 5) -> dict[str, Any]:
    return _probe({"exec": {"command": command}}, period, failures, timeout)


def jvm_heap(limit: Memory, fraction: float) -> Memory:
    """The heap for a JVM in a container of `limit`: the rest is metaspace, code cache, thread
    stacks, direct buffers and GC bookkeeping, which a JVM needs on top of its heap."""
    return Memory.mebibytes(int(limit.mib * fraction))


def jvm_heap_options(heap: Memory) -> str:
    return f"-Xms{heap.mib}m -Xmx{heap.mib}m"


def jvm_options(metaspace_mib: int, code_cache_mib: int, direct_mib: int, *extra: str, pause_ms: int = 20) -> str:
    """G1 with a pause goal, and the JVM's memory beside the heap."""
    return f"-XX:+UseG1GC -XX:MaxGCPauseMillis={pause_ms} {jvm_memory_options(metaspace_mib, code_cache_mib, direct_mib, *extra)}"


def jvm_memory_options(metaspace_mib: int, code_cache_mib: int, direct_mib: int, *extra: str) -> str:
    """The JVM's memory beside the heap, capped so that heap + the rest fit the limit."""
    return " ".join([
        *extra, f"-XX:MaxMetaspaceSize={metaspace_mib}m", f"-XX:ReservedCodeCacheSize={code_cache_mib}m",
        f"-XX:MaxDirectMemorySize={direct_mib}m", "-Djava.awt.headless=true",
    ])


def volume_claim(labels: dict[str, str], storage_class: str, size: Memory, name: str = "data") -> dict[str, Any]:
    """A volume claim template of a StatefulSet (`data` unless named)."""
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage_class,
            "resources": {"requests": {"storage": size.quantity()}},
        },
    }


def metadata_for(settings: Settings, workload: Workload) -> Callable[[str], dict[str, Any]]:
    """Object metadata of a workload's objects: the name given, the stack's namespace, the labels."""
    labels = workload.labels(settings.names.instance)
    return lambda name: {"name": name, "namespace": settings.config.namespace, "labels": labels}


def http_probe(path: str, port: str, period: int, failures: int, timeout: int = 5) -> dict[str, Any]:
    return _probe({"httpGet": {"path": path, "port": port}}, period, failures, timeout)


def tcp_probe(port: str, period: int, failures: int, timeout: int = 5) -> dict[str, Any]:
    return _probe({"tcpSocket": {"port": port}}, period, failures, timeout)


def pod_ip_env() -> dict[str, Any]:
    return {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}


def service_specs(workload: Workload, port_name: str, host_port: HostPort) -> tuple[dict[str, Any], dict[str, Any]]:
    """An in-cluster Service and a NodePort Service (published on the laptop) for one HTTP port."""
    port = workload.ports[port_name]
    in_cluster = {"selector": workload.selector, "ports": [{"name": port_name, "port": port, "targetPort": port_name}]}
    external = {
        "type": "NodePort",
        "selector": workload.selector,
        "ports": [{"name": port_name, "port": port, "targetPort": port_name, "nodePort": host_port.node_port}],
    }
    return in_cluster, external


# kafka-topics.sh, run before a pod's main container to create a topic it needs.
TOPIC_TOOL_MEMORY = Memory.mebibytes(256)


def init_container(name: str, image: str, command: list[str], env: dict[str, str], memory: Memory,
                   mounts: list[dict] | None = None) -> dict:
    """A step a pod runs before its main container, hardened like it, with /tmp writable."""
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "env": [{"name": key, "value": value} for key, value in env.items()],
        "resources": resources(memory, "100m"),
        "securityContext": container_security_context(),
        "volumeMounts": [*(mounts or []), {"name": "tmp", "mountPath": "/tmp"}],
    }


def topic_creator(name: str, kafka_image: str, arguments: list[str]) -> dict:
    """An init container that creates a topic with kafka-topics.sh (brokers create none on their own)."""
    return init_container(name, kafka_image, ["/opt/kafka/bin/kafka-topics.sh", *arguments],
                          {"KAFKA_HEAP_OPTS": "-Xmx128m", "LOG_DIR": "/tmp/topic-tool-logs"}, TOPIC_TOOL_MEMORY)
