"""The Kafka Connect plugins, each declared once: name, pinned version, where it comes from, sha256.

`plugin_files()` renders the declaration as a manifest for `connect/InstallPlugins.java`, together
with the installer and the S3 sink's sources. The Connect pod's init container runs exactly these
files (from a ConfigMap) and the data-plane tests run them too (from a temp directory).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from .iceberg_jars import ICEBERG_SINK_JARS, ICEBERG_VERSION
from .topology import KAFKA_VERSION, REGISTRY_VERSION

CONNECT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "connect")
INSTALLER = "InstallPlugins.java"
MANIFEST = "plugins.tsv"
# How our sources are compiled, by the installer and by the tests' Maven build alike. Every warning
# is an error: a compile problem shows in the tests, not first in a worker's log.
JAVA_RELEASE = "17"
JAVAC_LINT = ("-Xlint:all", "-Xlint:-path", "-Xlint:-classfile", "-Werror")
JAVAC_OPTIONS = ("--release", JAVA_RELEASE, *JAVAC_LINT)


@dataclass(frozen=True)
class Artifact:
    group: str
    artifact: str
    version: str
    sha256: str
    classifier: str = ""
    extension: str = "jar"

    @property
    def file_name(self) -> str:
        classifier = f"-{self.classifier}" if self.classifier else ""
        return f"{self.artifact}-{self.version}{classifier}.{self.extension}"

    @property
    def path(self) -> str:
        """Where a Maven repository keeps it: the manifest names this, the pod's repository the rest."""
        return f"{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{self.file_name}"


@dataclass(frozen=True)
class Plugin:
    name: str
    version: str
    class_name: str  # the connector or transformation class a config names
    archives: tuple[Artifact, ...] = ()
    jars: tuple[Artifact, ...] = ()  # a plugin published as loose jars rather than an archive
    # Built from the sources in connect/<name>/ against these jars (which Connect itself provides at
    # run time, so they are not installed).
    compile_against: tuple[Artifact, ...] = ()
    sources: tuple[str, ...] = ()
    services: tuple[tuple[str, str], ...] = field(default=())

    @property
    def downloads(self) -> tuple[Artifact, ...]:
        """Every file the installer fetches for this plugin."""
        return (*self.archives, *self.jars, *self.compile_against)


# What the project's own plugins compile against: Connect provides these jars at run time.
CONNECT_API = (
    Artifact("org.apache.kafka", "connect-api", KAFKA_VERSION,
             "5ce6158d453d2d84ab3509260fff872c67fb532a51519da6acafc6835bc48cfe"),
    Artifact("org.apache.kafka", "connect-json", KAFKA_VERSION,
             "ebd6d4900eb6835f30c6ce74b5f6d4a4fdc19e0a4a1de8da2f4463ea3ef20e41"),
    Artifact("org.apache.kafka", "kafka-clients", KAFKA_VERSION,
             "52501b7b47510c66f898871adaf6d2968ab7246561d44ced43643a8a587f0b36"),
    Artifact("org.slf4j", "slf4j-api", "1.7.36",
             "d3ef575e3e4979678dc01bf1dcce51021493b4d11fb7f1be8ad982877c16a1c0"),
    # The JSON parser Kafka 4.3.1's connect-json brings along.
    Artifact("com.fasterxml.jackson.core", "jackson-core", "2.21.2",
             "12e8655b100267b44d0f14d01b1f5082a5105e616174dc4307be1a761e92407b"),
    # Its annotations, which jars compiled against carry: without them javac warns, and warnings fail.
    Artifact("com.fasterxml.jackson.core", "jackson-annotations", "2.21",
             "53ca085f4a150f703f49e1aabd935bd03b43e1ea3d55d135438292af22cef56b"),
)


def own_plugin(name: str, class_name: str, source: str, interface: str) -> Plugin:
    """A plugin of ours: one source file in connect/<name>/, registered as an implementation of `interface`."""
    return Plugin(name=name, version="1.0.0", class_name=class_name, compile_against=CONNECT_API,
                  sources=(source,), services=((interface, class_name),))


DEBEZIUM_VERSION = "3.7.0.Final"
# Beside Debezium's jars, compiled against them, ours: the converter of the values Debezium's own
# conversion changes, the snapshot query that reads dates as text, and the transformation that
# carries what a typed record cannot hold in a header (connect/debezium-connector-postgres/).
DEBEZIUM_POSTGRES = Plugin(
    name="debezium-connector-postgres",
    version=DEBEZIUM_VERSION,
    class_name="io.debezium.connector.postgresql.PostgresConnector",
    archives=(
        Artifact(
            "io.debezium", "debezium-connector-postgres", DEBEZIUM_VERSION,
            "660673cbabd2f269da21409208ebd0f0d9977bd92e824fc9daa272f240e88e51",
            classifier="plugin", extension="tar.gz",
        ),
    ),
    compile_against=CONNECT_API,
    sources=("ExactValues.java", "ExactSnapshotQuery.java", "NonFiniteNumerics.java"),
    services=(("org.apache.kafka.connect.transforms.Transformation", "dataingestion.connect.debezium.NonFiniteNumerics"),
              ("io.debezium.snapshot.spi.SnapshotQuery", "dataingestion.connect.debezium.ExactSnapshotQuery")),
)
EXACT_VALUES = "dataingestion.connect.debezium.ExactValues"
EXACT_SNAPSHOT_QUERY = "dataingestion-exact-values"  # ExactSnapshotQuery.NAME, as the source names it
NON_FINITE_NUMERICS = "dataingestion.connect.debezium.NonFiniteNumerics"

AWS_SDK_VERSION = "2.59.1"
# The AWS SDK for Java v2's S3 client and what Maven resolves for it, less slf4j (the worker's) and
# less the Apache and Netty HTTP clients: the SDK talks through the JDK's own HTTP connection.
# group, artifact, version, sha256
S3_CLIENT_JARS: tuple[tuple[str, str, str, str], ...] = (
    ("software.amazon.awssdk", "s3", AWS_SDK_VERSION,
     "9bb6f3516e55fd56c64e6381012d57df90b7e4db0e348281c2067e0d2c6c12b1"),
    ("software.amazon.awssdk", "aws-xml-protocol", AWS_SDK_VERSION,
     "fa668df8d01de2f391b94ba9b4e6dcef152a89e8547997515cde5c5a2ee0277d"),
    ("software.amazon.awssdk", "aws-query-protocol", AWS_SDK_VERSION,
     "2063981fa4abc60771044af40b878bb6a8b96f23c19fb3a0cfa6239ca8e2cbb3"),
    ("software.amazon.awssdk", "protocol-core", AWS_SDK_VERSION,
     "46dece38daedac1e62fd28bab1ee76b3cd247847f89538bc30a5dd2331ccb383"),
    ("software.amazon.awssdk", "arns", AWS_SDK_VERSION,
     "4ef7d2ba0857b7ac95c19229c116c60c6ed7a98dc8b31e4b5462007c293c0f9f"),
    ("software.amazon.awssdk", "profiles", AWS_SDK_VERSION,
     "ec5751987a96713ebec8c3492bb1bca98a7b27737b9ce2e99c0cd3d216ac3043"),
    ("software.amazon.awssdk", "crt-core", AWS_SDK_VERSION,
     "18a1dada80bc0b1d80880b7274f7baadc20b9bc9b17b84eef3101d1da4071e6a"),
    ("software.amazon.awssdk", "http-auth", AWS_SDK_VERSION,
     "a552103290619fd210ce47b7f2ea7e3bb1875d143a7ce14b7a31a063688d3b80"),
    ("software.amazon.awssdk", "identity-spi", AWS_SDK_VERSION,
     "65b2c2aa7ef17c8dee1c5763025987a8d2fc6d9686efaef98fc6de32b1b24809"),
    ("software.amazon.awssdk", "http-auth-spi", AWS_SDK_VERSION,
     "554c386d38a8071c6c781b4ada4fa9a56e1c327d309215e6ce7e5cdd900ce278"),
    ("org.reactivestreams", "reactive-streams", "1.0.4",
     "f75ca597789b3dac58f61857b9ac2e1034a68fa672db35055a8fb4509e325f28"),
    ("software.amazon.awssdk", "http-auth-aws", AWS_SDK_VERSION,
     "6d8c47d8bd4a1f7053c9f533ab22ed46e9ff2d0473fc31d0e551599396524d16"),
    ("software.amazon.awssdk", "checksums", AWS_SDK_VERSION,
     "65a22fcdb8fdcb75f23dcf740efcc4e0a48837612142996ff5b6784e3adaba45"),
    ("software.amazon.awssdk", "checksums-spi", AWS_SDK_VERSION,
     "6fb0d0e290e070f3d064a69863019034c4da9ccea5a470c6aabbfa205e1a61b7"),
    ("software.amazon.awssdk", "retries-spi", AWS_SDK_VERSION,
     "1e1169ef6f0284eaa8311c2c7c1971a6bd84a94d338613a3f12494b1241aeeac"),
    ("software.amazon.awssdk", "sdk-core", AWS_SDK_VERSION,
     "66df07df173553a7396d4564519bda1a824e4faa0e3604c83aa87415dd9ff202"),
    ("software.amazon.awssdk", "retries", AWS_SDK_VERSION,
     "72da0b7c5ac8ccff2fbd907689c247509cc8e74659d9ba2b5bd5b2ca9f513aa4"),
    ("software.amazon.awssdk", "auth", AWS_SDK_VERSION,
     "ae08514793505c9549b3f46d4eb8e4cec7c7cfbad8b24c1b627ffa03b1294e64"),
    ("software.amazon.awssdk", "http-auth-aws-eventstream", AWS_SDK_VERSION,
     "f603e02eab0d203c9222866ff8cf3dd4bd1d4037245ccdba2496629a9895b733"),
    ("software.amazon.awssdk", "eventstream", AWS_SDK_VERSION,
     "4a23e57f857f466218f59837a99e2ea98eaea72ebc6ac4beb19233b5f7207e06"),
    ("software.amazon.awssdk", "http-client-spi", AWS_SDK_VERSION,
     "17837f010e5fe5a51556ce36937fdfc06555036854f3ff4f65efc52d42097605"),
    ("software.amazon.awssdk", "regions", AWS_SDK_VERSION,
     "82b61587d343b07c9b7850a440f2f9194e802282ad44755439454d789774df15"),
    ("software.amazon.awssdk", "annotations", AWS_SDK_VERSION,
     "a8f703e6f3c165639ddef0fbbe103846ecb05792b589852e1b69d1d6c381cfff"),
    ("software.amazon.awssdk", "utils", AWS_SDK_VERSION,
     "b683eb4d6c62dfd04736d6008e42a086ae925e6b4dfb7f10880dae7bf64704ea"),
    ("software.amazon.awssdk", "aws-core", AWS_SDK_VERSION,
     "32ce2df2918ae10d37c1b2b0aac660fdfa25cc4e103dd274c376fc9dd6ea957e"),
    ("software.amazon.awssdk", "utils-lite", AWS_SDK_VERSION,
     "000299867a3ec3bf17b378a3365076f0dbdd9e0c4bf732f0479c2544b7c522a5"),
    ("software.amazon.awssdk", "metrics-spi", AWS_SDK_VERSION,
     "e64876256008bb2cb0b3d802d63ceb0aeafb0c46d9c95d4f941730cdc4575a09"),
    ("software.amazon.awssdk", "json-utils", AWS_SDK_VERSION,
     "d142f3696ee10a5a0986e43a8b58d548cd6354fb08262a5a5eaed4e9dda9c564"),
    ("software.amazon.awssdk", "third-party-jackson-core", AWS_SDK_VERSION,
     "7a271a1681eaf5cd631c1e06cea8a1026753754fb075cf6bf92163b8041bb5f8"),
    ("software.amazon.awssdk", "endpoints-spi", AWS_SDK_VERSION,
     "43c6521213bc7fc6b4957cd79bd1b6eb629a59ff48c4a191fd5803e72e0526df"),
    ("software.amazon.awssdk", "url-connection-client", AWS_SDK_VERSION,
     "f76e901723b86ebb1b003bc3b209bc1aa92eb2f40359ab1a39f87d2b12bc5cb7"),
)

# The project's own S3 sink (connect/s3-sink/): Aiven's and Confluent's sinks are not published to
# Maven Central, the one artifact source every machine of ours and every user's cluster can reach.
# It writes through the SDK's S3 client, compiled against it.
S3_SINK = Plugin(
    name="s3-sink",
    version="2.0.0",
    class_name="dataingestion.connect.s3.S3SinkConnector",
    jars=tuple(Artifact(*row) for row in S3_CLIENT_JARS),
    compile_against=CONNECT_API,
    sources=("Bucket.java", "S3SinkConfig.java", "S3SinkConnector.java", "S3SinkTask.java", "TypedJson.java"),
    services=(("org.apache.kafka.connect.sink.SinkConnector", "dataingestion.connect.s3.S3SinkConnector"),),
)

# Stops the source at a change event larger than maxRecordBytes, naming its table and key: Kafka's
# own refusal (RecordTooLargeException) names neither. No published transformation does this.
RECORD_SIZE_LIMIT = own_plugin("record-size-limit", "dataingestion.connect.limits.RecordSizeLimit",
                               "RecordSizeLimit.java", "org.apache.kafka.connect.transforms.Transformation")

# Keeps Kafka's volumes from filling while the archive is unreachable (components/buffer_config.py):
# frees what the archive holds, then stops the source. Kafka has no bound on a broker's whole disk.
BUFFER_GUARD = Plugin(
    name="buffer-guard",
    version="1.0.0",
    class_name="dataingestion.connect.guard.BufferGuard",
    compile_against=CONNECT_API,
    sources=("BufferGuard.java", "BufferGuardTask.java"),
    services=(("org.apache.kafka.connect.source.SourceConnector", "dataingestion.connect.guard.BufferGuard"),),
)

# Lets connectors override only the client settings the worker lists (Kafka ships only None,
# Principal and All, and All lets a connector redirect its clients).
CLIENT_OVERRIDE_POLICY = own_plugin("client-override-allowlist", "dataingestion.connect.policy.AllowlistOverridePolicy",
                                    "AllowlistOverridePolicy.java",
                                    "org.apache.kafka.connect.connector.policy.ConnectorClientConfigOverridePolicy")

# Apache Iceberg's own sink, for archiveFormat iceberg: tables committed with their offsets. Beside
# its jars, compiled against them, ours: the changelog row (connect/iceberg-sink/ChangelogRow.java),
# and its task with tables typed from Debezium's schemas, which Iceberg's sink does not read.
ICEBERG_SINK = Plugin(
    name="iceberg-sink",
    version=f"{ICEBERG_VERSION}+typed.1",
    class_name="dataingestion.connect.iceberg.TypedIcebergSinkConnector",
    jars=tuple(Artifact(*row[:4], classifier=row[4] if len(row) > 4 else "") for row in ICEBERG_SINK_JARS),
    compile_against=CONNECT_API,
    sources=("ChangelogRow.java", "TypedIcebergSinkTask.java", "TypedIcebergSinkConnector.java"),
    services=(
        ("org.apache.kafka.connect.sink.SinkConnector", "dataingestion.connect.iceberg.TypedIcebergSinkConnector"),
        ("org.apache.kafka.connect.transforms.Transformation", "dataingestion.connect.iceberg.ChangelogRow"),
    ),
)
CHANGELOG_ROW = "dataingestion.connect.iceberg.ChangelogRow"

APICURIO_VERSION = REGISTRY_VERSION
# Apicurio's Kafka Connect converter and what Maven resolves for it at runtime scope, less the jars
# the worker itself provides: Kafka 3.9's clients, connect-api and connect-json (which clash with
# Connect 4.3.1: NoSuchMethodError Utils.mkSet), their compression codecs, slf4j and Jackson; and
# less the JSON Schema serde and its parsers, which only Apicurio's JSON converter uses.
# group, artifact, version, sha256
APICURIO_CONVERTER_JARS: tuple[tuple[str, str, str, str], ...] = (
    ("io.apicurio", "apicurio-registry-utils-converter", APICURIO_VERSION,
     "95392390745e31941e3f8e3565f883a2c31b9fd1d38eb0e22aac7721dd73508a"),
    ("io.apicurio", "apicurio-registry-serdes-avro-serde", APICURIO_VERSION,
     "71e2a474b6ef82b94d161eed801bc6570a31b324e6872e7c19e09c3b10bc3ad1"),
    ("io.apicurio", "apicurio-registry-serde-common", APICURIO_VERSION,
     "5f5e0e834699516be7b39ee6cdefa138a417758bbf66e28950158a7232014e76"),
    ("io.apicurio", "apicurio-registry-schema-resolver", APICURIO_VERSION,
     "171a974f39df803e0084c962b80b58a2e40645cb08e8297bdbbe34c2ef61a3c1"),
    ("io.apicurio", "apicurio-registry-client", APICURIO_VERSION,
     "3b06edde267fbf98207fcab297679b25475d62f4b31aa54612eb0e44f1804ad2"),
    ("io.apicurio", "apicurio-registry-common", APICURIO_VERSION,
     "1f08d5cfdf183be38f53df9e4ed72cb11f7923405ba7f2b3043f334fe6c732df"),
    ("io.apicurio", "apicurio-common-rest-client-jdk", "0.1.18.Final",
     "ef1feac9226e31722444f608ad5d998e0d0753ed886a6decad19effe23d9b734"),
    ("io.apicurio", "apicurio-common-rest-client-common", "0.1.18.Final",
     "7e73da0b5bd1cff35ff24f2172d41b79ef55362dbbd6104c5d5108ffed87dcd7"),
    ("org.apache.avro", "avro", "1.12.0", "1f5fbfff9b7427d6832cc3031a3c81413d3e21d9e2551847d9231c28493f9492"),
    ("org.apache.commons", "commons-compress", "1.26.2",
     "9168a03141d8fc7eda21a2360d83cc0412bcbb1d6204d992bd48c2573cb3c6b8"),
    ("commons-codec", "commons-codec", "1.17.0", "f700de80ac270d0344fdea7468201d8b9c805e5c648331c3619f2ee067ccfc59"),
    ("commons-io", "commons-io", "2.16.1", "f41f7baacd716896447ace9758621f62c1c6b0a91d89acee488da26fc477c84f"),
    ("org.apache.commons", "commons-lang3", "3.14.0", "7b96bf3ee68949abb5bc465559ac270e0551596fa34523fddf890ec418dde13c"),
)

# For serialization avro: keys and values through the registry, by Apicurio's converter (Confluent's
# is not published to Maven Central). Beside its jars, compiled against them, ours: the converter
# that registers Debezium's temporal and UUID columns as Avro logical types, and the schema resolver
# that asks the registry's cache once per schema instead of once per record (connect/avro-converter/).
SCHEMA_RESOLVER = "dataingestion.connect.avro.SchemaByIdentityResolver"
AVRO_CONVERTER = Plugin(
    name="avro-converter",
    version=f"{APICURIO_VERSION}+typed.3",
    class_name="dataingestion.connect.avro.TypedAvroConverter",
    jars=tuple(Artifact(*row) for row in APICURIO_CONVERTER_JARS),
    compile_against=CONNECT_API,
    sources=("TypedAvroConverter.java", "SchemaByIdentityResolver.java", "Lru.java"),
    services=(("org.apache.kafka.connect.storage.Converter", "dataingestion.connect.avro.TypedAvroConverter"),),
)

COMMON_PLUGINS = (DEBEZIUM_POSTGRES, RECORD_SIZE_LIMIT, BUFFER_GUARD, CLIENT_OVERRIDE_POLICY)
# Every plugin the project declares, whichever archive format and serialization a stack chooses
# (components/formats.py says which of them a stack installs).
PLUGINS = (*COMMON_PLUGINS, S3_SINK, ICEBERG_SINK, AVRO_CONVERTER)


def _read(*path: str) -> str:
    with open(os.path.join(CONNECT_DIR, *path), encoding="utf-8") as handle:
        return handle.read()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def plugin_files(plugins: tuple[Plugin, ...] = PLUGINS) -> dict[str, str]:
    """File name → content: the manifest, the installer and every source it compiles (one flat
    directory, as a ConfigMap mounts it)."""
    files: dict[str, str] = {INSTALLER: _read(INSTALLER)}
    lines = ["# plugin\tkind\tlocation\tsha256 (or, for a service, the implementation)"]
    for plugin in plugins:
        for archive in plugin.archives:
            lines.append(f"{plugin.name}\tarchive\t{archive.path}\t{archive.sha256}")
        for jar in plugin.jars:
            lines.append(f"{plugin.name}\tjar\t{jar.path}\t{jar.sha256}")
        for jar in plugin.compile_against:
            lines.append(f"{plugin.name}\tclasspath\t{jar.path}\t{jar.sha256}")
        for source in plugin.sources:
            text = _read(plugin.name, source)
            files[source] = text
            lines.append(f"{plugin.name}\tsource\t{source}\t{_sha256(text)}")
        for interface, implementation in plugin.services:
            lines.append(f"{plugin.name}\tservice\t{interface}\t{implementation}")
        if plugin.sources:
            lines.append(f"{plugin.name}\tjavac\t{' '.join(JAVAC_OPTIONS)}\t-")
    files[MANIFEST] = "\n".join(lines) + "\n"
    return files
