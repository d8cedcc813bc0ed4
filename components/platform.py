"""The platform tier: the namespace, an identity per workload, RBAC and the network's allowed flows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as kubernetes

from .settings import KUBERNETES_VERSION, MAVEN_CENTRAL, Settings
from .topology import CONNECT, KAFKA, POSTGRES, PROJECT, SCHEMA_REGISTRY, WORKLOADS, Workload

ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class Flow:
    """One arrow of the architecture diagram: `source` may open TCP connections to `ports`."""

    name: str
    ports: tuple[int, ...]
    destination: Workload | None = None  # None: outside the cluster (by `cidr`)
    source: Workload | None = None  # None: anyone, e.g. the laptop through a NodePort
    cidr: str = ANYWHERE
    protocols: tuple[str, ...] = field(default=("TCP",))


def _port_of(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def flows(cluster: str = "kind", plugin_repository: str = MAVEN_CENTRAL) -> list[Flow]:
    """The arrows of the diagram; `cluster` and `plugin_repository` are the stack's settings."""
    internal = KAFKA.ports["internal"]
    inside = [
        Flow("connect-to-postgres", (POSTGRES.ports["postgres"],), POSTGRES, CONNECT),
        Flow("connect-to-kafka", (internal,), KAFKA, CONNECT),
        Flow("schema-registry-to-kafka", (internal,), KAFKA, SCHEMA_REGISTRY),
        Flow("kafka-to-kafka", (internal, KAFKA.ports["controller"]), KAFKA, KAFKA),
        Flow("connect-to-schema-registry", (SCHEMA_REGISTRY.ports["http"],), SCHEMA_REGISTRY, CONNECT),
        # Distributed workers forward REST calls to the leader (with the caller's credentials).
        Flow("connect-to-connect", (CONNECT.ports["rest"],), CONNECT, CONNECT),
        # The sink writes to S3 (443) and the plugin installer downloads from the plugin repository.
        Flow("connect-to-internet", tuple(sorted({443, _port_of(plugin_repository)})), None, CONNECT),
    ]
    if cluster != "kind":
        # On an existing, possibly shared cluster the laptop arrives through `kubectl port-forward`,
        # which enters the pod on its loopback, where no NetworkPolicy applies. So no host-to-*
        # rule: the NodePorts answer nobody, and no pod of another namespace reaches the tiers.
        return inside
    # On the stack's own Kind cluster, the laptop arrives through Kind's port mappings and the
    # NodePort Services. Kubernetes does not fix the source address of node-to-pod traffic (kube-proxy
    # masquerades it to an address of the node, which on Kind may be the node's pod-network gateway),
    # so no narrower peer set can name the laptop: these rules have no `from`. The cluster holds
    # only this stack's pods and Kind's own; Connect's REST API asks for credentials all the same.
    return inside + [
        Flow("host-to-postgres", (POSTGRES.ports["postgres"],), POSTGRES),
        Flow("host-to-kafka", (KAFKA.ports["external"],), KAFKA),
        Flow("host-to-schema-registry", (SCHEMA_REGISTRY.ports["http"],), SCHEMA_REGISTRY),
        Flow("host-to-connect", (CONNECT.ports["rest"],), CONNECT),
    ]


def _ports(flow: Flow) -> list[dict[str, Any]]:
    return [{"port": port, "protocol": protocol} for port in flow.ports for protocol in flow.protocols]


def network_policy_specs(cluster: str = "kind", plugin_repository: str = MAVEN_CENTRAL) -> dict[str, dict[str, Any]]:
    """Default deny, DNS for everyone, then per flow an ingress rule on the server and an egress rule on the client."""
    specs: dict[str, dict[str, Any]] = {
        "default-deny": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        "allow-dns": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                }
            ],
        },
    }
    for flow in flows(cluster, plugin_repository):
        if flow.destination is not None:
            peers = [{"podSelector": {"matchLabels": flow.source.selector}}] if flow.source else []
            rule: dict[str, Any] = {"ports": _ports(flow)}
            if peers:
                rule["from"] = peers
            specs[f"{flow.name}-ingress"] = {
                "podSelector": {"matchLabels": flow.destination.selector},
                "policyTypes": ["Ingress"],
                "ingress": [rule],
            }
        if flow.source is not None:
            to = (
                {"podSelector": {"matchLabels": flow.destination.selector}}
                if flow.destination
                else {"ipBlock": {"cidr": flow.cidr}}
            )
            specs[f"{flow.name}-egress"] = {
                "podSelector": {"matchLabels": flow.source.selector},
                "policyTypes": ["Egress"],
                "egress": [{"to": [to], "ports": _ports(flow)}],
            }
    return specs


# Read-only view of the pipeline for dashboards and smoke checks, without the admin kubeconfig.
# Secrets are deliberately absent.
OBSERVER_RULES = [
    {"apiGroups": [""], "resources": ["pods", "pods/log", "services", "endpoints", "events",
                                      "configmaps", "persistentvolumeclaims"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["apps"], "resources": ["statefulsets", "deployments", "replicasets"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ["get", "list", "watch"]},
]
OBSERVER = "observer"


class Platform(pulumi.ComponentResource):
    namespace: pulumi.Output[str]
    service_accounts: dict[str, kubernetes.core.v1.ServiceAccount]

    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("data-ingestion:platform:Platform", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        common_labels = {"app.kubernetes.io/part-of": PROJECT, "app.kubernetes.io/managed-by": "pulumi",
                         "app.kubernetes.io/instance": settings.names.instance}
        pss = {
            f"pod-security.kubernetes.io/{mode}{suffix}": value
            for mode in ("enforce", "audit", "warn")
            for suffix, value in (("", "restricted"), ("-version", f"v{KUBERNETES_VERSION}"))
        }
        self.namespace_resource = kubernetes.core.v1.Namespace(
            "namespace",
            metadata=kubernetes.meta.v1.ObjectMetaArgs(
                name=settings.config.namespace, labels={**common_labels, **pss}
            ),
            opts=child,
        )
        self.namespace = self.namespace_resource.metadata.name
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace_resource])

        def metadata(object_name: str, labels: dict[str, str] | None = None):
            return kubernetes.meta.v1.ObjectMetaArgs(
                name=object_name, namespace=self.namespace, labels=labels or common_labels
            )

        # No workload talks to the Kubernetes API, so none gets a token.
        self.service_accounts = {
            workload.name: kubernetes.core.v1.ServiceAccount(
                f"{workload.name}-service-account",
                metadata=metadata(workload.service_account, workload.labels(settings.names.instance)),
                automount_service_account_token=False,
                opts=in_namespace,
            )
            for workload in WORKLOADS
        }
        self.observer_account = kubernetes.core.v1.ServiceAccount(
            "observer-service-account",
            metadata=metadata(OBSERVER),
            automount_service_account_token=False,
            opts=in_namespace,
        )
        self.observer_role = kubernetes.rbac.v1.Role(
            "observer-role", metadata=metadata(OBSERVER), rules=OBSERVER_RULES, opts=in_namespace
        )
        self.observer_binding = kubernetes.rbac.v1.RoleBinding(
            "observer-role-binding",
            metadata=metadata(OBSERVER),
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": OBSERVER},
            subjects=[{"kind": "ServiceAccount", "name": OBSERVER, "namespace": settings.config.namespace}],
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.namespace_resource, self.observer_role, self.observer_account]
            ),
        )
        self.network_policies = {
            policy_name: kubernetes.networking.v1.NetworkPolicy(
                f"{policy_name}-network-policy",
                metadata=metadata(policy_name),
                spec=spec,
                opts=in_namespace,
            )
            for policy_name, spec in network_policy_specs(settings.config.cluster, settings.config.plugin_repository).items()
        }
        self.register_outputs(
            {
                "namespace": self.namespace,
                "serviceAccounts": {workload.name: workload.service_account for workload in WORKLOADS},
            }
        )
