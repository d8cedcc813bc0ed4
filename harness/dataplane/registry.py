"""The real Apicurio Registry server on loopback, built from Maven Central (scripts/build-registry.sh).

It runs with the registry tier's own environment and JVM options (`connect_config.
schema_registry_environment`): the global rules, the Confluent-compatible API's ids, the heap and
flags the pod gets. Two things differ from the pod, because Maven Central serves only this build:

- the version, SERVER_VERSION, the newest that builds from Central; the cluster runs the converter's
  own release (connect_config.SCHEMA_REGISTRY_IMAGE). What differs between the two for every call
  the pipeline makes is tests/dataplane/test_registry_versions.py's to say.
- the storage: SQL (H2) in a file of this server's own, where the pod keeps its journal in Kafka.
  Both survive a restart, which is what the registry-away test needs of them.

The server's access log is on, so that the tests read which calls the pipeline's clients made.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path

import requests

from components import connect_config as cconf
from components.settings import Settings
from harness.needs import CACHE, require
from harness.net import free_port

SERVER_VERSION = "2.4.2.Final"
BUILD = Path(__file__).resolve().parents[2] / "scripts" / "build-registry.sh"
ACCESS = re.compile(r'apicurio-registry\.access method="(\w+)" path="([^"]+)" response_code="(\d+)".* user_agent="([^"]*)"')
# The harness's own reads, told apart from the pipeline's and the users' calls in the access log.
HARNESS = {"User-Agent": "data-ingestion-tests"}
REFUSAL = re.compile(r'apicurio\.audit action="createArtifact" result="failure" .*?error_msg="([^"]*)"')

# Every call made of the registry, as template() writes it, and who makes it: the converters (both
# connectors), Confluent's client (make verify, and the README's consumers), the README's commands.
CALLS: dict[tuple[str, str], str | None] = {
    ("POST", f"{cconf.REGISTRY_API}/groups/{{group}}/artifacts?ifExists=RETURN_OR_UPDATE&canonical"):
        "the converters register, or find, a schema",
    ("GET", f"{cconf.REGISTRY_API}/ids/contentIds/{{id}}"): "the converters read a schema by its id",
    ("GET", f"{cconf.REGISTRY_API}/ids/contentIds/{{id}}/references"): "and its references",
    ("GET", f"{cconf.CONFLUENT_COMPATIBLE_API}/schemas/ids/{{id}}?subject"): "Confluent's client reads a schema by its id",
    # Confluent's client first asks which subject a topic is associated with, which no Apicurio
    # Registry serves: on the 404 it takes the topic's `-value` subject.
    ("GET", f"{cconf.CONFLUENT_COMPATIBLE_API}/associations/resources/-/{{resource}}?resourceType&associationType"): None,
    ("POST", f"{cconf.REGISTRY_API}/groups/{{group}}/artifacts/{{artifact}}/rules"): "the README gives a subject a rule",
    ("DELETE", f"{cconf.REGISTRY_API}/groups/{{group}}/artifacts/{{artifact}}/rules/COMPATIBILITY"):
        "the README takes it away",
}


def server_jar() -> Path:
    """The server's runnable jar, built once into the cache."""
    jar = CACHE / "apicurio-registry" / SERVER_VERSION / "quarkus-app" / "quarkus-run.jar"
    if not jar.exists():
        require(shutil.which("mvn") is not None and shutil.which("java") is not None,
                f"Apicurio Registry {SERVER_VERSION}", "install Maven and a JDK: scripts/build-registry.sh builds it")
        subprocess.run([str(BUILD), SERVER_VERSION], check=True, stdout=subprocess.DEVNULL, timeout=1800)
    return jar


def server_api_spec(api: str) -> dict:
    """The OpenAPI document the tested server publishes for `api` ("registry/v2", "ccompat/v7")."""
    app = next((server_jar().parent / "app").glob("*.jar"))
    with zipfile.ZipFile(app) as archive:
        return json.loads(archive.read(f"META-INF/resources/api-specifications/{api}/openapi.json"))


class RegistryServer:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.root = Path(tempfile.mkdtemp(prefix="di-registry-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.root / "registry.log"
        self.process: subprocess.Popen | None = None
        self.start_server()

    @property
    def confluent_url(self) -> str:
        """What a Confluent client is given as its registry URL."""
        return f"{self.url}{cconf.CONFLUENT_COMPATIBLE_API}"

    # -- process control ---------------------------------------------------------------------------
    def start_server(self, timeout: float = 120) -> None:
        """Up, with every schema and rule registered before (kept in its database file)."""
        pod = cconf.schema_registry_environment(self.settings)
        env = {**os.environ, **pod, "QUARKUS_HTTP_PORT": str(self.port), "HOME": "/nonexistent",
               "REGISTRY_DATASOURCE_URL": f"jdbc:h2:file:{self.root / 'db' / 'registry'}", "ENABLE_ACCESS_LOG": "true"}
        command = ["java", *cconf.schema_registry_java_options(pod), f"-Djava.io.tmpdir={self.root}",
                   "-Dquarkus.http.host=127.0.0.1", "-jar", str(server_jar())]
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.root)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the registry exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/health/ready", timeout=2).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the registry not ready within {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop_server(self) -> None:
        """Down as a pod is stopped (SIGTERM): connections to the port are refused until start_server()."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        self.stop_server()
        shutil.rmtree(self.root, ignore_errors=True)

    def rss_mib(self) -> float:
        """The server's resident memory, as the container's limit counts it."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status)[1]) / 1024

    # -- what the tests read, through the server's own API and log ---------------------------------
    def versions(self, artifact: str, group: str = "default") -> list[dict]:
        """Every registered version of an artifact (a subject: `<topic>-key`, `<topic>-value`), parsed."""
        api = f"{self.url}{cconf.REGISTRY_API}/groups/{group}/artifacts/{artifact}"
        listing = requests.get(f"{api}/versions", params={"limit": 1000}, headers=HARNESS, timeout=10)
        if listing.status_code == 404:
            return []
        listing.raise_for_status()
        numbers = sorted(int(version["version"]) for version in listing.json()["versions"])
        return [requests.get(f"{api}/versions/{number}", headers=HARNESS, timeout=10).json() for number in numbers]

    def register(self, artifact: str, schema: str, group: str = "default") -> None:
        """An Avro schema as a new artifact's first version, as the harness's own call."""
        answer = requests.post(f"{self.url}{cconf.REGISTRY_API}/groups/{group}/artifacts", data=schema, timeout=30,
                               headers={**HARNESS, "Content-Type": "application/json", "X-Registry-ArtifactId": artifact,
                                        "X-Registry-ArtifactType": "AVRO"})
        answer.raise_for_status()

    def rules(self, artifact: str, group: str = "default") -> list[str]:
        """The rules of the artifact's own (beside the global ones)."""
        answer = requests.get(f"{self.url}{cconf.REGISTRY_API}/groups/{group}/artifacts/{artifact}/rules", headers=HARNESS,
                              timeout=10)
        answer.raise_for_status()
        return answer.json()

    def _log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    @property
    def refused(self) -> list[str]:
        """Why each refused registration was refused, as the server's audit log says."""
        return [match[1] for line in self._log_lines() if (match := REFUSAL.search(line))]

    @property
    def calls(self) -> list[tuple[str, str, int]]:
        """(method, path with ids and names generalised, status) of every request the server answered
        but the harness's own."""
        return [(match[1], template(match[2]), int(match[3])) for line in self._log_lines()
                if (match := ACCESS.search(line)) and match[4] != HARNESS["User-Agent"]]


def template(path: str) -> str:
    """A request's path with its ids and names generalised: `/groups/{group}/`, `/{id}`, the
    artifact after `artifacts/`; the query's names kept, their values only where they choose a
    behaviour (`ifExists`)."""
    path, _, query = path.partition("?")
    path = re.sub(r"/groups/[^/]+/", "/groups/{group}/", path)
    path = re.sub(r"/artifacts/[^/]+", "/artifacts/{artifact}", path)
    path = re.sub(r"/subjects/[^/]+", "/subjects/{subject}", path)
    path = re.sub(r"/resources/-/[^/]+", "/resources/-/{resource}", path)
    path = re.sub(r"/(\d+)(?=/|$)", "/{id}", path)
    kept = [part if part.startswith("ifExists=") else part.split("=")[0] for part in query.split("&") if part]
    return path + (f"?{'&'.join(kept)}" if kept else "")
