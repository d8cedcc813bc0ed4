"""A real Kubernetes API server on loopback: kube-apiserver and etcd, built from the Go module proxy
(scripts/build-kube-apiserver.sh) and started per test module.

Authentication by a static token of `system:masters`; RBAC and the admission plugins a cluster runs,
Pod Security among them, so a namespace's `pod-security.kubernetes.io/enforce` label is enforced by
the server itself. No controller manager runs: nothing creates Pods from workloads, or namespaces'
`default` ServiceAccounts.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from harness.needs import CACHE, require
from harness.net import free_port

KUBERNETES_VERSION = "1.36.3"
BUILD = Path(__file__).resolve().parents[1] / "scripts" / "build-kube-apiserver.sh"
FIELD_MANAGER = "pulumi-kubernetes"  # what Pulumi's provider applies as


def binaries() -> Path:
    """The directory holding kube-apiserver and etcd, built once into the cache."""
    built = CACHE / "kube-apiserver" / KUBERNETES_VERSION
    if not (built / "kube-apiserver").exists():
        require(shutil.which("go") is not None, f"kube-apiserver {KUBERNETES_VERSION}",
                "install Go: scripts/build-kube-apiserver.sh builds it from the module proxy")
        subprocess.run([str(BUILD), KUBERNETES_VERSION], check=True, stdout=subprocess.DEVNULL, timeout=3600)
    return built


class ApiServer:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="di-apiserver-"))
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(16)
        self.processes: list[subprocess.Popen] = []
        self._collections: dict[tuple[str, str], tuple[str, bool]] = {}

    def start(self, timeout: float = 60) -> ApiServer:
        built = binaries()
        etcd_port, etcd_peer = free_port(), free_port()
        self._spawn("etcd", [str(built / "etcd"), "--data-dir", str(self.root / "etcd"),
                             "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
                             "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
                             "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
                             "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
                             "--initial-cluster", f"default=http://127.0.0.1:{etcd_peer}"])
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (self.root / "sa.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                             serialization.NoEncryption()))
        (self.root / "sa.pub").write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
        (self.root / "tokens.csv").write_text(f'{self.token},admin,admin,"system:masters"\n')
        self._spawn("kube-apiserver", [
            str(built / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", f"--secure-port={self.port}", f"--cert-dir={self.root / 'certs'}",
            f"--token-auth-file={self.root / 'tokens.csv'}", "--authorization-mode=RBAC",
            f"--service-account-key-file={self.root / 'sa.pub'}",
            f"--service-account-signing-key-file={self.root / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc", "--service-cluster-ip-range=10.96.0.0/16",
            "--enable-priority-and-fairness=false", "--profiling=false"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{process.args[0]} exited {process.returncode}:\n{self.logs()}")
            try:
                if self._get("/readyz").status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the API server not ready within {timeout}s:\n{self.logs()}")

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.root / f"{name}.log", "w")
        self.processes.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.root))

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in self.root.glob("*.log"))

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- the API ------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        with warnings.catch_warnings():
            # The server's certificate is its own, self-signed: only the token matters here.
            warnings.simplefilter("ignore")
            return requests.request(method, f"{self.url}{path}", verify=False, timeout=30,
                                    headers={"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})},
                                    **kwargs)

    def _get(self, path: str) -> requests.Response:
        return self._request("GET", path)

    def resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        """(the collection's path, namespaced) of a kind, from the server's discovery, read once."""
        if not self._collections:
            groups = ["/api/v1"] + [f"/apis/{version['groupVersion']}" for group in self._get("/apis").json()["groups"]
                                    for version in group["versions"]]
            for prefix in groups:
                listing = self._get(prefix).json()
                for entry in listing.get("resources", []):
                    if "/" not in entry["name"]:  # a subresource (status, scale) is not a collection
                        self._collections[(listing["groupVersion"], entry["kind"])] = (f"{prefix}/{entry['name']}",
                                                                                      entry["namespaced"])
        return self._collections[(api_version, kind)]

    def path_of(self, body: dict[str, Any]) -> str:
        collection, namespaced = self.resource(body["apiVersion"], body["kind"])
        metadata = body["metadata"]
        if namespaced:
            prefix, plural = collection.rsplit("/", 1)
            collection = f"{prefix}/namespaces/{metadata.get('namespace', 'default')}/{plural}"
        return f"{collection}/{metadata['name']}"

    def apply(self, body: dict[str, Any], dry_run: bool = False) -> requests.Response:
        """Server-side apply, as Pulumi's Kubernetes provider applies (its field manager, forced), with
        the server's strict field validation: a field the schema lacks, or given twice, is refused."""
        params = {"fieldManager": FIELD_MANAGER, "force": "true", "fieldValidation": "Strict",
                  **({"dryRun": "All"} if dry_run else {})}
        return self._request("PATCH", self.path_of(body), params=params, json=body,
                             headers={"Content-Type": "application/apply-patch+yaml"})

    def create(self, body: dict[str, Any], dry_run: bool = False) -> requests.Response:
        path = self.path_of(body).rsplit("/", 1)[0]
        return self._request("POST", path, json=body, params={"dryRun": "All"} if dry_run else {})


    def claim_volumes(self, stateful_set: dict[str, Any]) -> None:
        """What the StatefulSet controller and a provisioner do for an applied StatefulSet (neither runs
        here): a claim per pod and template, bound to a volume of its size."""
        spec, name = stateful_set["spec"], stateful_set["metadata"]["name"]
        namespace = stateful_set["metadata"]["namespace"]
        for ordinal in range(spec.get("replicas", 1)):
            for template in spec.get("volumeClaimTemplates", []):
                claim = f"{template['metadata']['name']}-{name}-{ordinal}"
                size = template["spec"]["resources"]["requests"]["storage"]
                volume = f"pv-{namespace}-{claim}"
                for body in (
                    {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": volume},
                     "spec": {"capacity": {"storage": size}, "accessModes": template["spec"]["accessModes"],
                              "storageClassName": template["spec"]["storageClassName"],
                              "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": f"/var/lib/{volume}"},
                              "claimRef": {"namespace": namespace, "name": claim}}},
                    {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                     "metadata": {"name": claim, "namespace": namespace, "labels": template["metadata"].get("labels", {})},
                     "spec": {**template["spec"], "volumeName": volume}},
                ):
                    answer = self.create(body)
                    assert answer.status_code in (201, 409), answer.text  # 409: made for an earlier apply
                bound = {"status": {"phase": "Bound", "capacity": {"storage": size},
                                    "accessModes": template["spec"]["accessModes"]}}
                answer = self._request("PATCH", f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}/status",
                                       json=bound, headers={"Content-Type": "application/merge-patch+json"})
                assert answer.status_code == 200, answer.text

    def get(self, body: dict[str, Any]) -> dict[str, Any]:
        """The object the server holds under a body's kind, namespace and name."""
        return self._get(self.path_of(body)).json()
