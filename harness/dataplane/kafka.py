"""Kafka brokers (KRaft) and a Kafka Connect worker as real processes, from Maven Central jars.

Each broker runs the Kafka tier's own `broker_properties`, the worker the Connect tier's own
`worker_properties`; only addresses, ports and paths differ. JVM heaps are the ones the stack gives
each pod. Everything listens on 127.0.0.1 ports chosen free, and stop() ends every process.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from components import connect_config as cconf
from components import kafka_config as kconf
from components.k8s import jvm_heap_options
from components.settings import Settings
from components.topology import KAFKA_VERSION
from harness.net import free_port
from harness.needs import CACHE, require

POM = Path(__file__).parent / "kafka" / "pom.xml"
LOG4J2 = """\
Configuration:
  status: warn
  Appenders:
    File:
      name: file
      fileName: "${sys:kafka.logs.file}"
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: file
    Logger:
      - name: org.apache.kafka.clients
        level: WARN
      - name: org.reflections
        level: ERROR
"""


def require_kafka_tools() -> None:
    require(shutil.which("java") is not None, "Java (17 or newer)", "install a JDK, e.g. `apt-get install openjdk-17-jdk-headless`")
    require(shutil.which("mvn") is not None, "Maven", "install it (`apt-get install maven`): it fetches Kafka's jars from Maven Central")


def kafka_libs() -> Path:
    """The jars of Kafka KAFKA_VERSION (server, tools, Connect), resolved once into the cache."""
    # Keyed by the pom too: a jar added to it is resolved into a fresh directory.
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:8]
    libs = CACHE / f"kafka-{KAFKA_VERSION}-{digest}" / "libs"
    done = libs / ".complete"
    if not done.exists():
        libs.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies", f"-Dkafka.version={KAFKA_VERSION}",
             f"-DoutputDirectory={libs}", "-DincludeScope=runtime"],
            capture_output=True, text=True, timeout=900,
        )
        if result.returncode != 0:
            raise RuntimeError(f"cannot resolve Kafka {KAFKA_VERSION} from Maven Central:\n{result.stdout}{result.stderr}")
        done.touch()
    return libs


def _log_config(root: Path) -> Path:
    path = root / "log4j2.yaml"
    if not path.exists():
        path.write_text(LOG4J2)
    return path


def _java(libs: Path, jvm: str, log_file: Path, log_config: Path, main: str, *args: str) -> list[str]:
    """`jvm`: the heap and JVM options the pod's container gets."""
    return ["java", *jvm.split(), f"-Dlog4j2.configurationFile={log_config}",
            f"-Dkafka.logs.file={log_file}", "-cp", f"{libs}/*", main, *args]


class Exited(RuntimeError):
    """The process waited for is gone: no point in waiting longer."""


def wait_for(check, timeout: float, what: str, log: Path | None = None, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exited as error:
            raise Exited(f"{what}: {error}; log tail:\n{_tail(log)}") from None
        except Exception as error:  # the service is not up yet
            last = error
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s ({last}); log tail:\n{_tail(log)}")


def _tail(log: Path | None) -> str:
    if log and log.exists():
        return "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    return ""


# The tests' JVMs compile with C1 only: a test moves thousands of rows, not millions, and the C2
# compiler's warm-up of a dozen short-lived JVMs was most of the suite's CPU on 2 cores. The stack's
# own JVM options are kept beside it, and `make bench` runs without it (jit_options="").
TEST_JIT_OPTIONS = "-XX:TieredStopAtLevel=1"


class KafkaCluster:
    """`settings.brokers` combined broker+controller nodes on loopback."""

    def __init__(self, settings: Settings, jit_options: str = TEST_JIT_OPTIONS, volumes: bool = False):
        self.settings = settings
        self.jit_options = jit_options
        self.volumes: list[Path] = []
        self.libs = kafka_libs()
        self.root = Path(tempfile.mkdtemp(prefix="di-kafka-"))
        self.log_config = _log_config(self.root)
        if volumes:
            self._mount_volumes()
        self.endpoints = []
        for _ in range(settings.brokers):
            internal, controller, external = free_port(), free_port(), free_port()
            self.endpoints.append(
                kconf.Endpoints("127.0.0.1", internal, "127.0.0.1", controller, "127.0.0.1", external, external)
            )
        self.processes: dict[int, subprocess.Popen] = {}

    def _mount_volumes(self) -> None:
        """A tmpfs of kafkaStorage's size under each broker's log directory: a full one fails the
        broker as a full claim does."""
        require(os.geteuid() == 0 and shutil.which("mount") is not None, "root, to mount a broker's own volume",
                "run the test as root (CI does)")
        size = self.settings.config.kafka_storage.bytes
        for ordinal in range(self.settings.brokers):
            directory = self.root / f"data-{ordinal}"
            directory.mkdir()
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)], check=True)
            self.volumes.append(directory)

    def volume_use(self) -> dict[int, float]:
        """Each broker's volume, the share in use (as `df` counts it)."""
        use = {}
        for ordinal, directory in enumerate(self.volumes):
            found = os.statvfs(directory)
            use[ordinal] = 1 - found.f_bavail / found.f_blocks
        return use

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{node.internal_port}" for node in self.endpoints)

    def topics_tool(self, arguments: list[str]) -> None:
        """kafka-topics.sh with these arguments (its main class, on the same jars)."""
        command = _java(self.libs, "-Xmx128m", self.root / "topics.log", self.log_config,
                        "org.apache.kafka.tools.TopicCommand", *arguments)
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"kafka-topics {' '.join(arguments)} failed:\n{result.stdout}{result.stderr}")

    def properties_path(self, ordinal: int) -> Path:
        return self.root / f"broker-{ordinal}.properties"

    def log(self, ordinal: int) -> Path:
        return self.root / f"broker-{ordinal}.log"

    def start(self) -> KafkaCluster:
        for ordinal in range(self.settings.brokers):
            properties = kconf.broker_properties(
                self.settings, ordinal, self.endpoints, data_dir=str(self.root / f"data-{ordinal}")
            )
            # Loopback only on a laptop or CI runner; in the pod every interface is the pod's own.
            properties["listeners"] = properties["listeners"].replace("0.0.0.0", "127.0.0.1")
            self.properties_path(ordinal).write_text(kconf.render_properties(properties))
        formats = [subprocess.Popen(
            _java(self.libs, "-Xmx256m", self.root / f"format-{ordinal}.log", self.log_config, "kafka.tools.StorageTool",
                  "format", "--cluster-id", kconf.cluster_id(self.settings), "--config",
                  str(self.properties_path(ordinal)), "--ignore-formatted"),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ) for ordinal in range(self.settings.brokers)]  # one JVM each, side by side
        for ordinal, formatting in enumerate(formats):
            output, _ = formatting.communicate(timeout=120)
            if formatting.returncode != 0:
                raise RuntimeError(f"formatting broker {ordinal}'s log directory failed:\n{output}")
        for ordinal in range(self.settings.brokers):
            self.start_node(ordinal)
        for ordinal in range(self.settings.brokers):
            self.wait_node(ordinal)
        return self

    def start_node(self, ordinal: int) -> None:
        jvm = f"{jvm_heap_options(kconf.heap(self.settings))} {kconf.JVM_OPTIONS} {self.jit_options}"
        self.processes[ordinal] = subprocess.Popen(
            _java(self.libs, jvm, self.log(ordinal), self.log_config, "kafka.Kafka", str(self.properties_path(ordinal))),
            stdout=subprocess.DEVNULL, stderr=open(self.root / f"broker-{ordinal}.stderr", "w"),
        )

    def wait_node(self, ordinal: int, timeout: float = 120) -> None:
        from confluent_kafka.admin import AdminClient

        node = self.endpoints[ordinal]
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{node.internal_port}", "log_level": 0})

        registered = lambda: ordinal in admin.list_topics(timeout=2).brokers  # noqa: E731
        wait_for(registered, timeout, f"Kafka broker {ordinal}", self.log(ordinal))

    def kill(self, ordinal: int) -> None:
        process = self.processes.pop(ordinal)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def restart_node(self, ordinal: int) -> None:
        self.start_node(ordinal)
        self.wait_node(ordinal)

    def pids(self) -> dict[str, int]:
        return {f"kafka-{ordinal}": process.pid for ordinal, process in self.processes.items()}

    def stop(self) -> None:
        for process in self.processes.values():
            process.send_signal(signal.SIGKILL)
        for process in self.processes.values():
            process.wait(timeout=30)
        self.processes.clear()
        for directory in self.volumes:
            subprocess.run(["umount", "--lazy", str(directory)], check=False)
        self.volumes.clear()
        shutil.rmtree(self.root, ignore_errors=True)


class ConnectWorker:
    """One distributed worker with the tier's worker properties and the declared plugins."""

    def __init__(self, settings: Settings, kafka: KafkaCluster, plugin_dir: Path, secrets_dir: Path):
        self.settings = settings
        self.kafka = kafka
        self.secrets_dir = secrets_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root = Path(tempfile.mkdtemp(prefix="di-connect-"))
        properties = cconf.worker_properties(
            settings, bootstrap=kafka.bootstrap, rest_port=self.port,
            plugin_path=str(plugin_dir), secrets_dir=str(secrets_dir),
        )
        properties["listeners"] = properties["listeners"].replace("0.0.0.0", "127.0.0.1")
        self.properties = properties
        # The REST API's credentials, as the pod mounts them: the Secret's files and the JAAS file.
        self.auth = (cconf.REST_USER, "rest-secret-for-tests")
        rest_dir = self.root / "rest"
        rest_dir.mkdir()
        for name, text in cconf.rest_credentials(self.auth[1]).items():
            (rest_dir / name).write_text(text)
        self.jaas_path = self.root / cconf.JAAS_FILE
        self.jaas_path.write_text(cconf.rest_jaas_config(str(rest_dir)))
        self.rest_dir = rest_dir
        self.properties_path = self.root / "worker.properties"
        self.properties_path.write_text(kconf.render_properties(properties))
        self.log = self.root / "connect.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 180) -> ConnectWorker:
        jvm = (f"{jvm_heap_options(cconf.connect_heap(self.settings))} {cconf.CONNECT_JVM_OPTIONS} "
               f"{cconf.rest_jvm_option(str(self.jaas_path))} {self.kafka.jit_options}")
        # The worker config keeps its ${env:POD_IP} placeholder: the env provider resolves it here too.
        # As in the pod: the AWS SDK reads the sink's key from the mounted secrets, nothing else.
        env = {**os.environ, "POD_IP": "127.0.0.1", **cconf.aws_environment(str(self.secrets_dir))}
        self.process = subprocess.Popen(
            _java(self.kafka.libs, jvm, self.log, _log_config(self.root),
                  "org.apache.kafka.connect.cli.ConnectDistributed", str(self.properties_path)),
            stdout=subprocess.DEVNULL, stderr=open(self.root / "connect.stderr", "w"), env=env,
        )

        def ready():
            if self.process.poll() is not None:
                raise Exited(f"the worker exited with {self.process.returncode}")
            requests.get(f"{self.url}/connectors", timeout=5, auth=self.auth).raise_for_status()
            return True

        wait_for(ready, timeout, "Kafka Connect worker", self.log)
        return self

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
            self.process = None

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)
