"""The cluster tier: a Kind cluster of this stack's own, or a cluster the user already has."""

from __future__ import annotations

import os
import shlex
from typing import Any

import pulumi
import pulumi_kubernetes as kubernetes
import yaml
from pulumi_command import local

from . import connect_config as cconf
from . import kafka_config as kconf
from . import postgres_config as pgconf
from .settings import Settings

KIND_API_VERSION = "kind.x-k8s.io/v1alpha4"
WORKERS = 2
# Every image the stack's pods run (pinned tags), loaded into the Kind nodes before any workload.
WORKLOAD_IMAGES = tuple(sorted({pgconf.IMAGE, kconf.IMAGE, cconf.IMAGE, cconf.INSTALLER_IMAGE, cconf.SCHEMA_REGISTRY_IMAGE}))


def kind_config(settings: Settings) -> dict[str, Any]:
    """One control plane and two workers; every NodePort of the port table published on loopback."""
    image = settings.config.kind_node_image
    mappings = [
        {
            "containerPort": port.node_port,
            "hostPort": port.host_port,
            # Loopback only: PostgreSQL and Kafka are not for the rest of the network.
            "listenAddress": "127.0.0.1",
            "protocol": "TCP",
        }
        for port in settings.host_ports
    ]
    return {
        "kind": "Cluster",
        "apiVersion": KIND_API_VERSION,
        "name": settings.names.cluster,
        "nodes": [{"role": "control-plane", "image": image, "extraPortMappings": mappings}]
        + [{"role": "worker", "image": image} for _ in range(WORKERS)],
    }


def render_kind_config(settings: Settings) -> str:
    return yaml.safe_dump(kind_config(settings), sort_keys=False)


# Runs on `pulumi up`. Idempotent: a cluster of this name is reused, but only if it publishes the
# ports this stack expects; otherwise traffic would silently go to another stack's cluster.
_ENSURE_CLUSTER = r"""
set -euo pipefail
for tool in docker kind; do
  command -v "$tool" >/dev/null || { echo "cluster tier: '$tool' is not on PATH; install it (see docs/setup.md, Prerequisites)" >&2; exit 1; }
done
docker info >/dev/null 2>&1 || { echo "cluster tier: the Docker engine is not running; start Docker and run pulumi up again" >&2; exit 1; }
mkdir -p "$(dirname "$KUBECONFIG_PATH")"
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  echo "cluster tier: reusing the existing Kind cluster $CLUSTER" >&2
  for mapping in $EXPECTED_PORTS; do
    node_port=${mapping%%:*}; host_port=${mapping##*:}
    if ! docker port "$CLUSTER-control-plane" "$node_port/tcp" 2>/dev/null | grep -q ":$host_port\$"; then
      echo "cluster tier: Kind cluster $CLUSTER exists but does not publish NodePort $node_port on host port $host_port." >&2
      echo "It was made with other settings. Delete it (kind delete cluster --name $CLUSTER) and run pulumi up again." >&2
      exit 1
    fi
  done
else
  config=$(mktemp)
  trap 'rm -f "$config"' EXIT
  printf '%s\n' "$KIND_CONFIG" > "$config"
  kind create cluster --name "$CLUSTER" --config "$config" --kubeconfig "$KUBECONFIG_PATH" --wait 300s >&2
fi
# Each image is pulled once into the laptop's Docker (skipped if there) and loaded into the nodes
# (kind skips nodes that have it), all in parallel: pods then start from local images, and a
# replaced cluster downloads nothing again.
preload() {
  local image=$1
  if docker image inspect "$image" >/dev/null 2>&1; then
    echo "cluster tier: $image is in Docker already" >&2
  else
    echo "cluster tier: pulling $image" >&2
    docker pull --quiet "$image" >&2 || {
      echo "cluster tier: cannot pull $image. Check the network and Docker Hub's pull limit (docker login lifts it), then run pulumi up again" >&2
      return 1
    }
  fi
  load "$image"
}
# Docker's containerd image store (Docker Desktop's default, Docker Engine 29's) keeps only the
# host's platform of a multi-platform image, and `kind load docker-image` then fails asking for the
# others (kind#3795): save the nodes' platform alone and load that archive. A Docker too old for
# `image save --platform` has the classic store, where `kind load docker-image` works.
load() {
  local image=$1 archive saved
  archive="$ARCHIVES/$(printf '%s' "$image" | tr '/:@' '___').tar"
  if saved=$(docker image save --platform "$PLATFORM" --output "$archive" "$image" 2>&1); then
    kind load image-archive "$archive" --name "$CLUSTER" >&2 || {
      echo "cluster tier: cannot load $image ($PLATFORM, saved to $archive) into Kind cluster $CLUSTER: check free disk space (docker system df; df -h $ARCHIVES), then run pulumi up again" >&2
      return 1
    }
  elif printf '%s' "$saved" | grep -q -- "unknown flag: --platform"; then
    kind load docker-image "$image" --name "$CLUSTER" >&2 || {
      echo "cluster tier: cannot load $image into Kind cluster $CLUSTER: check free disk space in Docker (docker system df), then run pulumi up again" >&2
      return 1
    }
  else
    echo "cluster tier: cannot save $image for $PLATFORM from Docker: $saved" >&2
    echo "Pull it for that platform (docker pull --platform $PLATFORM $image), then run pulumi up again" >&2
    return 1
  fi
}
# The nodes run on Docker's own platform.
PLATFORM=$(docker version --format '{{.Server.Os}}/{{.Server.Arch}}')
ARCHIVES=$(mktemp -d)
trap 'rm -rf "$ARCHIVES" "${config:-}"' EXIT
loading=()
for image in $IMAGES; do
  preload "$image" &
  loading+=("$!")
done
failed=0
for pid in "${loading[@]}"; do wait "$pid" || failed=1; done
[ "$failed" = 0 ] || exit 1
kind export kubeconfig --name "$CLUSTER" --kubeconfig "$KUBECONFIG_PATH" >&2
kind get kubeconfig --name "$CLUSTER"
"""

_DELETE_CLUSTER = r"""
set -euo pipefail
kind delete cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG_PATH" >&2
"""


class Cluster(pulumi.ComponentResource):
    """Creates (or adopts) the Kubernetes cluster and hands out a provider bound to it."""

    kubeconfig: pulumi.Output[str] | None
    provider: kubernetes.Provider

    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("data-ingestion:cluster:Cluster", name, None, opts)
        config = settings.config
        self.mode = config.cluster
        if config.cluster == "kind":
            self.kind_config = render_kind_config(settings)
            self.cluster_name = settings.names.cluster
            self.kube_context = settings.names.kube_context
            self.kubeconfig_path = settings.names.kubeconfig_path
            self.command = local.Command(
                "kind-cluster",
                create=_ENSURE_CLUSTER,
                update=_ENSURE_CLUSTER,
                delete=_DELETE_CLUSTER,
                interpreter=["/bin/bash", "-c"],
                environment={
                    "CLUSTER": self.cluster_name,
                    "KUBECONFIG_PATH": self.kubeconfig_path,
                    "KIND_CONFIG": self.kind_config,
                    "EXPECTED_PORTS": " ".join(
                        f"{port.node_port}:{port.host_port}" for port in settings.host_ports
                    ),
                    "IMAGES": " ".join(WORKLOAD_IMAGES),
                },
                # A Kind cluster's nodes and port mappings cannot change in place: a new config
                # means a new cluster. The old one must go first, or create would adopt it.
                triggers=[self.kind_config],
                # The kubeconfig is stdout: keep it out of the console and the state's plain text.
                logging=local.Logging.STDERR,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    additional_secret_outputs=["stdout"],
                    delete_before_replace=True,
                ),
            )
            self.kubeconfig = pulumi.Output.secret(self.command.stdout)
            provider_args: dict[str, Any] = {"kubeconfig": self.kubeconfig}
        else:
            self.command = None
            self.cluster_name = config.kube_context or "current-context"
            self.kube_context = config.kube_context
            self.kubeconfig_path = os.path.expanduser(
                config.kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or "~/.kube/config"
            )
            self.kind_config = ""
            self.kubeconfig = None
            provider_args = {"kubeconfig": self.kubeconfig_path}
            if config.kube_context:
                provider_args["context"] = config.kube_context

        self.provider = kubernetes.Provider(
            "kubernetes",
            **provider_args,
            # Objects are addressed by their explicit names; a destroyed Kind cluster takes them
            # with it, so a later destroy must not fail on an unreachable API server.
            delete_unreachable=config.cluster == "kind",
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(
            {
                "clusterName": self.cluster_name,
                "kubeconfigPath": self.kubeconfig_path,
                "kubeContext": self.kube_context,
            }
        )


def kubectl_hint(cluster: Cluster) -> str:
    context = f" --context {shlex.quote(cluster.kube_context)}" if cluster.kube_context else ""
    return f"kubectl --kubeconfig {shlex.quote(cluster.kubeconfig_path)}{context}"
