"""The stack's configuration, read once into a typed model and validated as a whole.

Every problem is collected and reported in one error that names the config key and says how to
fix it, before the program declares a single resource.
"""

from __future__ import annotations

import difflib
import getpass
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import pulumi
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, ValidationError
from pydantic.alias_generators import to_camel

from . import archive_config as archive  # the archive tier owns S3's rules
from .archive_config import auto_bucket_prefix
from .capture import DEFAULT as DEFAULT_CAPTURE
from .capture import Capture, entry_problems, parse_entries
from .formats import AVRO, ICEBERG, JSONL, ArchiveFormat, Serialization
from .quantity import Memory
from .topology import HOST_PORT_RANGE, NODE_PORT_RANGE, PROJECT, HostPort, Workload, host_ports

KIND_NODE_IMAGE = (
    "kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5"
)
KUBERNETES_VERSION = "1.37"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"

# Below these a tier cannot start: a JVM needs its heap plus metaspace, threads and direct buffers.
MINIMUM_MEMORY = {
    "postgresMemory": Memory.mebibytes(256),
    "schemaRegistryMemory": Memory.mebibytes(256),
    "connectMemory": Memory.mebibytes(512),
}
MINIMUM_BROKER_MEMORY = Memory.mebibytes(384)
# Kafka's own default is the floor; above the ceiling one record would crowd a worker's heap.
RECORD_BYTES_RANGE = (Memory.mebibytes(1), Memory.mebibytes(16))

# Docker names Kind's node containers <cluster>-control-plane, and a host name holds 63 characters.
MAX_STACK_SLUG = 63 - len(f"{PROJECT}-") - len("-control-plane")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(/[a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$")


def _whole_number(raw: object) -> int:
    # The CLI hands config values over as strings; the mock runtime as floats.
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not a whole number")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        if raw.is_integer():
            return int(raw)
        raise ValueError(f"{raw!r} is not a whole number")
    text = str(raw).strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    raise ValueError(f"{text!r} is not a whole number")


def _boolean(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise ValueError(f"{raw!r} is not true or false")


def _pinned_image(raw: object) -> str:
    image = str(raw).strip()
    if "@sha256:" in image:
        return image
    repository, separator, tag = image.rpartition(":")
    if not repository or not separator or "/" in tag or tag == "latest":
        raise ValueError(f"{image!r} is not pinned; give a tag other than latest, or a @sha256: digest")
    return image


def _dns_label(raw: object) -> str:
    text = str(raw).strip()
    if len(text) > 63 or not _DNS_LABEL.match(text):
        raise ValueError(
            f"{text!r} is not a DNS label (lower-case letters, digits and '-', at most 63 characters)"
        )
    return text


# Keys whose validators show the value themselves, with anything secret in it masked.
_NOT_ECHOED = {"pluginRepository"}


def _repository_url(raw: object) -> str:
    text = str(raw).strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"{text!r} is not the http(s) URL of a Maven repository, such as {MAVEN_CENTRAL}")
    if parts.username or parts.password:
        shown = parts._replace(netloc=f"***@{parts.netloc.rpartition('@')[2]}").geturl()
        raise ValueError(f"{shown!r}: credentials in the URL would be written into the pod spec; use a "
                         "mirror or proxy that serves anonymous reads")
    try:
        parts.port
    except ValueError as error:
        raise ValueError(f"{text!r}: {error}") from None
    return text


def _provisioner(raw: object) -> str:
    text = str(raw).strip()
    if not _DNS_SUBDOMAIN.match(text):
        raise ValueError(f"{text!r} is not a provisioner name such as rancher.io/local-path")
    return text


MemoryValue = Annotated[Memory, BeforeValidator(Memory.parse), PlainSerializer(str)]
OptionalMemory = Annotated[
    Memory | None,
    BeforeValidator(lambda raw: None if str(raw).strip() == "" else Memory.parse(raw)),
    PlainSerializer(lambda memory: "" if memory is None else str(memory)),
]
ArchiveFormatValue = Annotated[ArchiveFormat, BeforeValidator(ArchiveFormat.parse), PlainSerializer(str)]
SerializationValue = Annotated[Serialization, BeforeValidator(Serialization.parse), PlainSerializer(str)]
WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
Boolean = Annotated[bool, BeforeValidator(_boolean)]
PinnedImage = Annotated[str, BeforeValidator(_pinned_image)]
DnsLabel = Annotated[str, BeforeValidator(_dns_label)]
Provisioner = Annotated[str, BeforeValidator(_provisioner)]
RepositoryUrl = Annotated[str, BeforeValidator(_repository_url)]
# The entries are checked as a whole in the cross-checks, so that every bad one is reported.
CaptureEntries = Annotated[tuple[str, ...], BeforeValidator(parse_entries), PlainSerializer(list)]


class StackConfig(BaseModel):
    """The keys of the `data-ingestion:` config namespace. Pulumi.yaml declares the same keys and defaults."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, validate_default=True
    )

    memory_budget: MemoryValue = Field(
        "4Gi", description="Memory the whole pipeline may use; the tiers' limits must fit in it."
    )
    postgres_memory: MemoryValue = Field("768Mi", description="Memory limit of PostgreSQL.")
    kafka_memory: MemoryValue = Field(
        "2Gi", description="Memory of all Kafka brokers together, split evenly between them."
    )
    schema_registry_memory: MemoryValue = Field("320Mi", description="Memory limit of Schema Registry.")
    connect_memory: MemoryValue = Field("960Mi", description="Memory limit of each Kafka Connect worker.")
    connect_workers: WholeNumber = Field(
        1, ge=1, description="Kafka Connect workers in the distributed group; each one gets connectMemory."
    )
    postgres_storage: MemoryValue = Field(
        "5Gi", description="Size of PostgreSQL's volume; a stalled replication slot may hold at most half of it."
    )
    postgres_max_connections: WholeNumber = Field(
        50, ge=10, description="PostgreSQL max_connections; each one is budgeted within postgresMemory."
    )
    postgres_shared_buffers: OptionalMemory = Field(
        "", description="PostgreSQL shared_buffers; empty means a quarter of postgresMemory."
    )
    kafka_brokers: WholeNumber = Field(
        3, ge=1, description="Number of combined broker+controller KRaft nodes."
    )
    kafka_storage: MemoryValue = Field("5Gi", description="Size of each Kafka broker's log volume.")
    capture: CaptureEntries = Field(
        list(DEFAULT_CAPTURE),
        description="What the pipeline captures: schemas (every table in them, including tables created "
        "later) and single tables as schema.table.",
    )
    demo_data: Boolean = Field(
        True, description="Create the demo schema inventory's tables with a few rows, so the quick start shows changes flowing."
    )
    snapshot_mode: Literal["when_needed", "initial", "no_data"] = Field(
        "when_needed",
        description="When the source snapshots the captured tables: when_needed (first start, and whenever "
        "its position is gone from PostgreSQL, e.g. a lost replication slot), initial (first start only), "
        "no_data (never).",
    )
    max_record_bytes: MemoryValue = Field(
        "4Mi",
        description="Largest change event the pipeline carries, as JSON (an update holds the row twice: "
        "before and after); sets the producer's, the topics' and the brokers' limits and the sink's fetch size.",
    )
    host_port_offset: WholeNumber = Field(
        0, description="Added to every host port, so that several stacks can run on one laptop."
    )
    cluster: Literal["kind", "existing"] = Field(
        "kind",
        description="'kind' creates a Kind cluster for this stack; 'existing' deploys to the cluster "
        "of kubeconfig/kubeContext.",
    )
    kubeconfig: str = Field(
        "", description="With cluster=existing: path of the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)."
    )
    kube_context: str = Field("", description="With cluster=existing: the kubeconfig context to use.")
    kind_node_image: PinnedImage = Field(
        KIND_NODE_IMAGE, description="Kind node image (Kubernetes version), pinned by digest."
    )
    namespace: DnsLabel = Field(PROJECT, description="Kubernetes namespace of the pipeline.")
    storage_provisioner: Provisioner = Field(
        "rancher.io/local-path",
        description="Volume provisioner of the StorageClasses (Kind ships rancher.io/local-path).",
    )
    plugin_repository: RepositoryUrl = Field(
        MAVEN_CENTRAL,
        description="Maven repository the Connect pods download their plugins from: Maven Central, or a "
        "mirror or proxy of it. The pinned sha256 of every file is checked either way.",
    )
    archive_format: ArchiveFormatValue = Field(
        JSONL,
        description="How changes are archived: jsonl (gzipped JSON lines, one object per batch) or iceberg "
        "(an Iceberg changelog table per captured table, typed Parquet, cataloged in AWS Glue).",
    )
    serialization: SerializationValue = Field(
        AVRO,
        description="How changes travel through Kafka: avro (keys and values typed, their schemas in the registry) "
        "or json (Kafka's JSON, without schemas for the JSONL archive, with a schema in every record for Iceberg).",
    )
    archive_partition_by: Literal["day", "hour"] = Field(
        "day", description="With archiveFormat iceberg: partition the tables by the day or the hour of the commit time.",
    )
    exactly_once_source: Boolean = Field(
        False,
        description="true writes the source's changes and its position in one Kafka transaction, so that a "
        "restarted Connect worker sends no change twice; the sinks then read committed records only.",
    )
    archive_region: str = Field("us-east-1", description="AWS region of the archive bucket.")
    archive_bucket_name: str = Field(
        "", description="Name of the archive bucket; empty means a unique name starting data-ingestion-<stack>-."
    )
    archive_prefix: str = Field("cdc", description="Key prefix (folder) the S3 sink writes under.")
    archive_kms_key: str = Field(
        "", description="KMS key ARN or alias/<name> for SSE-KMS; empty means SSE-S3 (AES-256)."
    )
    archive_disposable: Boolean = Field(
        False,
        description="true lets `pulumi destroy` delete the bucket and every archived object; "
        "false (default) leaves the bucket and its data in AWS.",
    )
    archive_noncurrent_days: WholeNumber = Field(
        30, ge=1, description="Days an overwritten or deleted object version is kept before it expires."
    )
    archive_transition_days: WholeNumber = Field(
        0, ge=0, description="Days after which archived objects move to archiveTransitionStorageClass; 0 = never."
    )
    archive_transition_storage_class: str = Field(
        "GLACIER_IR", description="Colder storage class for archiveTransitionDays."
    )
    owner: str = Field("", description="Owner tag of the AWS resources; empty means your login name.")

    @property
    def shared_cluster(self) -> bool:
        """A cluster other stacks may share: cluster-wide names and ports must differ per stack."""
        return self.cluster == "existing"

    @classmethod
    def keys(cls) -> list[str]:
        return [field.alias or name for name, field in cls.model_fields.items()]

    @classmethod
    def field_for(cls, key: str) -> str:
        return next(name for name, field in cls.model_fields.items() if field.alias == key)


@dataclass(frozen=True)
class Problem:
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


class SettingsError(pulumi.RunError):
    """The stack's configuration cannot be deployed; raised before any resource is declared."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(
            f"The stack's configuration has {count}; nothing was created:\n{lines}\n"
            "Fix each with `pulumi config set <key> <value>` (or `pulumi config rm <key>`) and run again."
        )


@dataclass(frozen=True)
class Names:
    """Everything that could collide between two stacks on one machine derives from the stack name."""

    stack_slug: str

    @property
    def instance(self) -> str:
        """The stack among the project's others: its Kind cluster's name and its objects' instance label."""
        return f"{PROJECT}-{self.stack_slug}"

    @property
    def cluster(self) -> str:
        return self.instance

    @property
    def kube_context(self) -> str:
        return f"kind-{self.cluster}"

    @property
    def replication_slot(self) -> str:
        # One slot per stack: two stacks streaming from one database must not steal each other's WAL.
        return "debezium_" + self.stack_slug.replace("-", "_")

    @property
    def bucket_prefix(self) -> str:
        digest = hashlib.sha256(self.stack_slug.encode()).hexdigest()[:4]
        return auto_bucket_prefix(PROJECT, self.stack_slug, digest)

    @property
    def glue_database(self) -> str:
        # Glue names hold lower-case letters, digits and '_'; Iceberg's Glue catalog refuses '-'.
        return f"{PROJECT}_{self.stack_slug}".replace("-", "_")

    @property
    def kubeconfig_path(self) -> str:
        return os.path.join(os.path.expanduser("~"), ".kube", f"{self.cluster}.yaml")


@dataclass(frozen=True)
class Settings:
    project: str
    stack: str
    config: StackConfig
    names: Names

    @property
    def brokers(self) -> int:
        return self.config.kafka_brokers

    @property
    def replication_factor(self) -> int:
        return min(3, self.brokers)

    @property
    def min_insync_replicas(self) -> int:
        # Below the replication factor, so that one broker may be down and writes still succeed.
        return max(1, min(2, self.replication_factor - 1))

    @property
    def capture(self) -> Capture:
        return Capture(self.config.capture)

    @property
    def broker_memory(self) -> Memory:
        return Memory.mebibytes(self.config.kafka_memory.mib // self.brokers)

    @property
    def owner(self) -> str:
        return self.config.owner or getpass.getuser()

    @cached_property
    def host_ports(self):
        return host_ports(self.brokers, self.config.host_port_offset, self.config.shared_cluster)

    def host_port(self, workload: Workload) -> HostPort:
        """The one port-table entry of a workload published on a single port."""
        [port] = [port for port in self.host_ports if port.workload is workload]
        return port


def stack_slug(stack: str) -> str:
    """The stack name as a DNS label: lower case, anything else becomes '-'."""
    slug = re.sub(r"[^a-z0-9]+", "-", stack.lower()).strip("-")
    return slug


def _own_keys(project: str, config: Mapping[str, Any]) -> dict[str, Any]:
    prefix = f"{project}:"
    return {key[len(prefix) :]: value for key, value in config.items() if key.startswith(prefix)}


def config_from_runtime(project: str) -> dict[str, Any]:
    """Every key of the project's namespace that the stack sets, as the runtime hands it over."""
    return _own_keys(project, {**pulumi.runtime.config.get_config_env(), **pulumi.runtime.config.CONFIG.get()})


def config_from_stack_file(project: str, stack: str, directory: Path | None = None) -> dict[str, Any]:
    """The same keys, from Pulumi.<stack>.yaml beside the program (none before `pulumi stack init`)."""
    path = (directory or Path(__file__).resolve().parents[1]) / f"Pulumi.{stack}.yaml"
    if not path.exists():
        return {}
    return _own_keys(project, (yaml.safe_load(path.read_text()) or {}).get("config") or {})


TierCheck = Callable[["StackConfig"], "tuple[str, str] | None"]


def parse(project: str, stack: str, raw: Mapping[str, Any], tier_checks: Iterable[TierCheck]) -> Settings:
    """Validate the whole configuration, the model's rules and each tier's (`tier_checks`, which the
    tiers own: components/stack.py); raise SettingsError naming every problem at once."""

    def qualified(key: str) -> str:
        return f"{project}:{key}"

    known = StackConfig.keys()
    problems = [
        Problem(qualified(key), _unknown_key_message(key, known))
        for key in sorted(raw)
        if key not in known
    ]
    slug = stack_slug(stack)
    if not slug:
        problems.append(
            Problem("stack name", f"{stack!r} has no letters or digits; name the stack like dev-alice")
        )
    elif len(slug) > MAX_STACK_SLUG:
        problems.append(
            Problem(
                "stack name",
                f"{stack!r} is too long for the Kind cluster's node names; use at most "
                f"{MAX_STACK_SLUG} characters (`pulumi stack rename`)",
            )
        )

    config: StackConfig | None = None
    try:
        config = StackConfig.model_validate({key: value for key, value in raw.items() if key in known})
    except ValidationError as exc:
        for error in exc.errors():
            key = str(error["loc"][0]) if error["loc"] else "?"
            shown = raw.get(key)
            message = error["msg"].removeprefix("Value error, ")
            if repr(shown) not in message and key not in _NOT_ECHOED:
                message = f"{shown!r}: {message}"
            problems.append(Problem(qualified(key), message))

    # `capture` is checked entry by entry even when other keys are wrong, so that one run names every problem.
    try:
        capture = config.capture if config is not None else parse_entries(raw.get("capture", list(DEFAULT_CAPTURE)))
    except ValueError:
        capture = None  # its shape is wrong: reported above
    if capture is not None:
        problems += [Problem(qualified("capture"), message) for message in entry_problems(capture)]
    if config is not None:
        problems += [Problem(qualified(key), message) for key, message in _cross_checks(config)]
        found = [check(config) for check in tier_checks]
        problems += [Problem(qualified(key), message) for key, message in filter(None, found)]
    if problems:
        raise SettingsError(problems)
    assert config is not None
    return Settings(project=project, stack=stack, config=config, names=Names(slug))


def _unknown_key_message(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if not close:
        lowered = {k.lower(): k for k in known}
        close = [lowered[key.lower()]] if key.lower() in lowered else []
    hint = f"did you mean {close[0]}? " if close else ""
    return f"unknown key; {hint}Remove it with `pulumi config rm {key}`. Known keys: {', '.join(known)}"


def tier_memory(config: StackConfig) -> dict[str, Memory]:
    return {
        "postgresMemory": config.postgres_memory,
        "kafkaMemory": config.kafka_memory,
        "schemaRegistryMemory": config.schema_registry_memory,
        "connectMemory": config.connect_memory,
    }


def pods_memory(config: StackConfig) -> Memory:
    """What the stack's pods hold (requests equal limits): every tier, each Connect worker."""
    tiers = tier_memory(config)
    return Memory(sum(memory.bytes for memory in tiers.values()) + (config.connect_workers - 1) * config.connect_memory.bytes)


def _cross_checks(config: StackConfig) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []

    tiers = tier_memory(config)
    workers = config.connect_workers
    total = pods_memory(config)
    if total > config.memory_budget:
        parts = " + ".join(
            f"{key} {memory}" + (f" × connectWorkers {workers}" if key == "connectMemory" and workers > 1 else "")
            for key, memory in tiers.items()
        )
        problems.append(
            (
                "memoryBudget",
                f"the tiers need {parts} = {total.mib}Mi, more than memoryBudget "
                f"{config.memory_budget} ({config.memory_budget.mib}Mi); lower a tier or raise memoryBudget",
            )
        )
    low, high = RECORD_BYTES_RANGE
    if not low <= config.max_record_bytes <= high:
        problems.append(("maxRecordBytes", f"{config.max_record_bytes} is outside {low}–{high}; a row larger than "
                         f"{high} belongs in S3 itself, referenced from the table"))
    for key, minimum in MINIMUM_MEMORY.items():
        if tiers[key] < minimum:
            problems.append((key, f"{tiers[key]} is below the {minimum} this tier needs to start"))
    per_broker = Memory.mebibytes(config.kafka_memory.mib // config.kafka_brokers)
    if per_broker < MINIMUM_BROKER_MEMORY:
        problems.append(
            (
                "kafkaMemory",
                f"{config.kafka_memory} split over {config.kafka_brokers} brokers leaves {per_broker} "
                f"each, below the {MINIMUM_BROKER_MEMORY} a broker needs; raise kafkaMemory or lower kafkaBrokers",
            )
        )

    shared = config.shared_cluster
    table = host_ports(config.kafka_brokers, config.host_port_offset, shared)
    outside = [p for p in table if p.host_port not in HOST_PORT_RANGE]
    if outside:
        ports = ", ".join(f"{p.name} {p.host_port}" for p in outside)
        low = HOST_PORT_RANGE.start - min(p.host_port - config.host_port_offset for p in table)
        high = HOST_PORT_RANGE.stop - 1 - max(p.host_port - config.host_port_offset for p in table)
        problems.append(
            (
                "hostPortOffset",
                f"{config.host_port_offset} puts host ports outside {HOST_PORT_RANGE.start}-"
                f"{HOST_PORT_RANGE.stop - 1} ({ports}); choose an offset from {low} to {high}",
            )
        )
    node_ports = [p.node_port for p in table]
    if shared and any(port not in NODE_PORT_RANGE for port in node_ports):
        unshifted = [port - config.host_port_offset for port in node_ports]
        problems.append(
            (
                "hostPortOffset",
                f"{config.host_port_offset} puts NodePorts outside {NODE_PORT_RANGE.start}-{NODE_PORT_RANGE.stop - 1}"
                " (with cluster=existing they shift with the offset, so that stacks sharing the cluster do "
                f"not collide); choose an offset from {NODE_PORT_RANGE.start - min(unshifted)} to "
                f"{NODE_PORT_RANGE.stop - 1 - max(unshifted)}",
            )
        )
    host = [p.host_port for p in table]
    if len(set(node_ports)) != len(node_ports) or len(set(host)) != len(host) or (
        not shared and any(port not in NODE_PORT_RANGE for port in node_ports)
    ):
        problems.append(
            (
                "kafkaBrokers",
                f"{config.kafka_brokers} brokers need more host ports than the port table has room for; "
                "use fewer brokers",
            )
        )

    problems += _archive_checks(config)
    if config.exactly_once_source and not config.archive_format.typed:
        problems.append((
            "exactlyOnceSource",
            f"needs archiveFormat {ICEBERG}: the {JSONL} sink archives at least once anyway, and its completeness "
            "check reads a partition's offsets as contiguous, which transaction markers are not. "
            f"`pulumi config set archiveFormat {ICEBERG}`, or leave exactlyOnceSource false",
        ))

    if config.cluster == "kind" and (config.kubeconfig or config.kube_context):
        problems.append(
            (
                "kubeconfig" if config.kubeconfig else "kubeContext",
                "only used with cluster=existing; with cluster=kind the stack writes its own kubeconfig. "
                "Remove it, or `pulumi config set cluster existing`",
            )
        )
    if config.cluster == "existing" and config.kubeconfig:
        path = os.path.expanduser(config.kubeconfig)
        if not os.path.isfile(path):
            problems.append(("kubeconfig", f"{config.kubeconfig!r} is not a readable file"))
    return problems


def _archive_checks(config: StackConfig) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if config.archive_region not in archive.AWS_REGIONS:
        close = difflib.get_close_matches(config.archive_region, archive.AWS_REGIONS, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        problems.append(("archiveRegion", f"{config.archive_region!r} is not an AWS region with S3; {hint}"
                         "use a code such as eu-west-1"))
    elif problem := archive.kms_key_problem(config.archive_kms_key, config.archive_region):
        problems.append(("archiveKmsKey", problem))
    if config.archive_bucket_name and (problem := archive.bucket_name_problem(config.archive_bucket_name)):
        problems.append(("archiveBucketName", problem))
    if problem := archive.key_prefix_problem(config.archive_prefix):
        problems.append(("archivePrefix", problem))
    storage_class = config.archive_transition_storage_class
    minimum = archive.TRANSITION_MINIMUM_DAYS.get(storage_class)
    if minimum is None:
        problems.append(("archiveTransitionStorageClass", f"{storage_class!r} is not one of "
                         f"{', '.join(archive.TRANSITION_MINIMUM_DAYS)}"))
    elif 0 < config.archive_transition_days < minimum:
        problems.append(("archiveTransitionDays", f"{config.archive_transition_days} is below the "
                         f"{minimum} days S3 requires before moving objects to {storage_class}"))
    return problems
