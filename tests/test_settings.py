import os

import pytest
import yaml

from components.formats import AVRO
from components.quantity import Memory, QuantityError
from components.settings import SettingsError, StackConfig
from components.stack import parse_settings
from harness.stackgraph import ROOT, install_mocks, run_program


def refused(config, stack="dev"):
    """Run the program: it must refuse the config and declare nothing. Returns the error."""
    graph = install_mocks(stack)
    with pytest.raises(SettingsError) as caught:
        run_program(graph, config)
    assert graph.resources == [], "resources were declared before the config was checked"
    return caught.value


@pytest.mark.parametrize(
    "value, reason",
    [
        ("512MB", "not a Kubernetes memory quantity"),
        ("-1Gi", "positive"),
        ("lots", "not a Kubernetes memory quantity"),
        ("0", "positive"),
        ("100m", "whole number of bytes"),
        ("1.5", "whole number of bytes"),
    ],
)
def test_a_bad_memory_quantity_is_refused_naming_the_key(value, reason):
    error = refused({"postgresMemory": value})
    [problem] = error.problems
    assert problem.key == "data-ingestion:postgresMemory"
    assert reason in problem.message and repr(value) in problem.message


@pytest.mark.parametrize(
    "text, mib",
    [("768Mi", 768), ("2Gi", 2048), ("0.5Gi", 512), ("1073741824", 1024), ("1e9", 953), ("1G", 953)],
)
def test_memory_quantities_are_read_exactly(text, mib):
    assert Memory.parse(text).mib == mib


def test_numbers_arriving_as_floats_are_read():
    settings = parse_settings("data-ingestion", "dev", {"kafkaBrokers": 3.0, "memoryBudget": 4294967296.0})
    assert settings.brokers == 3 and settings.config.memory_budget == Memory.parse("4Gi")
    with pytest.raises(QuantityError):
        Memory.parse(True)


def test_tiers_over_the_budget_are_refused_with_the_sum():
    error = refused({"kafkaMemory": "3Gi"})
    [problem] = error.problems
    assert problem.key == "data-ingestion:memoryBudget"
    assert "5120Mi" in problem.message and "kafkaMemory 3Gi" in problem.message


def test_a_bigger_budget_makes_room():
    settings = parse_settings("data-ingestion", "dev", {"kafkaMemory": "3Gi", "memoryBudget": "5Gi"})
    assert settings.broker_memory == Memory.mebibytes(1024)


@pytest.mark.parametrize("brokers", ["0", "2.5", "three", -1])
def test_broker_count_must_be_a_whole_number_of_at_least_one(brokers):
    [problem] = refused({"kafkaBrokers": brokers}).problems
    assert problem.key == "data-ingestion:kafkaBrokers"


@pytest.mark.parametrize("brokers, rf, min_isr", [(1, 1, 1), (2, 2, 1), (3, 3, 2), (4, 3, 2)])
def test_replication_derives_from_the_broker_count(brokers, rf, min_isr):
    settings = parse_settings(
        "data-ingestion", "dev", {"kafkaBrokers": str(brokers), "kafkaMemory": "2Gi"}
    )
    assert (settings.replication_factor, settings.min_insync_replicas) == (rf, min_isr)
    assert settings.min_insync_replicas < settings.replication_factor or rf == 1


def test_too_many_brokers_for_their_memory_are_refused():
    [problem] = refused({"kafkaBrokers": "6"}).problems
    assert problem.key == "data-ingestion:kafkaMemory" and "6 brokers" in problem.message


@pytest.mark.parametrize("offset", ["60200", "-4500"])
def test_host_port_offset_must_keep_every_port_in_range(offset):
    [problem] = refused({"hostPortOffset": offset}).problems
    assert problem.key == "data-ingestion:hostPortOffset"
    assert "choose an offset from -4408 to 56441" in problem.message


def test_the_widest_offsets_are_accepted():
    for offset in (-4408, 56441):
        parse_settings("data-ingestion", "dev", {"hostPortOffset": offset})


def test_an_unknown_key_is_refused_with_the_closest_known_key():
    [problem] = refused({"memroyBudget": "4Gi"}).problems
    assert problem.key == "data-ingestion:memroyBudget"
    assert "did you mean memoryBudget?" in problem.message
    assert "pulumi config rm memroyBudget" in problem.message


def test_every_problem_is_reported_at_once():
    error = refused({"postgresMemory": "512MB", "kafkaBrokers": "0", "hostPortOffset": "x", "kafkaBrokres": "3"})
    keys = sorted(problem.key.split(":")[1] for problem in error.problems)
    assert keys == ["hostPortOffset", "kafkaBrokers", "kafkaBrokres", "postgresMemory"]
    text = str(error)
    assert "4 problems" in text and "nothing was created" in text and "pulumi config set" in text


@pytest.mark.parametrize("stack, slug", [("dev", "dev"), ("Dev_Alice", "dev-alice"), ("team.bob-2", "team-bob-2")])
def test_the_stack_name_becomes_a_dns_label(stack, slug):
    settings = parse_settings("data-ingestion", stack, {})
    assert settings.names.stack_slug == slug
    assert settings.names.cluster == f"data-ingestion-{slug}"


@pytest.mark.parametrize("stack", ["___", "a" * 40])
def test_a_stack_name_that_cannot_name_a_cluster_is_refused(stack):
    [problem] = refused({}, stack=stack).problems
    assert problem.key == "stack name"


@pytest.mark.parametrize(
    "key, value",
    [("kindNodeImage", "kindest/node:latest"), ("kindNodeImage", "kindest/node"), ("namespace", "Data_Ingestion"),
     ("cluster", "minikube"), ("storageProvisioner", "not a name")],
)
def test_other_keys_are_checked(key, value):
    [problem] = refused({key: value}).problems
    assert problem.key == f"data-ingestion:{key}"


def test_kubeconfig_belongs_to_the_existing_cluster_mode(tmp_path):
    [problem] = refused({"kubeconfig": "/tmp/x"}).problems
    assert problem.key == "data-ingestion:kubeconfig" and "cluster=existing" in problem.message
    [problem] = refused({"cluster": "existing", "kubeconfig": str(tmp_path / "missing")}).problems
    assert "not a readable file" in problem.message


def test_pulumi_yaml_declares_exactly_the_keys_and_defaults_of_the_model():
    with open(os.path.join(ROOT, "Pulumi.yaml")) as handle:
        project = yaml.safe_load(handle)
    declared = project["config"]
    assert list(declared) == StackConfig.keys()
    for key, spec in declared.items():
        assert spec["description"], key
        field = StackConfig.model_fields[StackConfig.field_for(key)]
        expected_type = {int: "integer", bool: "boolean", tuple[str, ...]: "array"}.get(field.annotation, "string")
        assert spec["type"] == expected_type, key
    defaults = {key: spec["default"] for key, spec in declared.items()}
    assert StackConfig.model_validate(defaults) == StackConfig()
    assert project["name"] == "data-ingestion"
    assert project["runtime"]["options"]["virtualenv"] == ".venv"


@pytest.mark.parametrize("value", ["512Ki", "64Mi"])
def test_max_record_bytes_is_kept_within_what_kafka_and_a_worker_can_carry(value):
    [problem] = refused({"maxRecordBytes": value}).problems
    assert problem.key == "data-ingestion:maxRecordBytes" and "outside 1Mi–16Mi" in problem.message


@pytest.mark.parametrize(
    "key, value, minimum",
    [("postgresStorage", "319Mi", "320Mi"), ("kafkaStorage", "255Mi", "256Mi")],
)
def test_a_volume_too_small_to_start_on_is_refused_naming_the_minimum(key, value, minimum):
    [problem] = refused({key: value}).problems
    assert problem.key == f"data-ingestion:{key}"
    assert f"below the minimum {minimum}" in problem.message and f"raise {key} to {minimum}" in problem.message


def test_the_smallest_volumes_are_accepted():
    parse_settings("data-ingestion", "dev", {"postgresStorage": "320Mi", "kafkaStorage": "256Mi"})


@pytest.mark.parametrize(
    "url, reason",
    [
        ("repo1.maven.org/maven2", "not the http(s) URL of a Maven repository"),
        ("ftp://mirror.example/maven2", "not the http(s) URL of a Maven repository"),
        ("https://alice:s3cret@nexus.example/maven2", "credentials in the URL would be written into the pod spec"),
        ("https://nexus.example:99999/maven2", "out of range"),
    ],
)
def test_a_plugin_repository_that_is_no_plain_url_is_refused(url, reason):
    [problem] = refused({"pluginRepository": url}).problems
    assert problem.key == "data-ingestion:pluginRepository" and reason in problem.message
    assert "s3cret" not in problem.message


def test_a_plugin_repository_is_kept_without_its_trailing_slash():
    settings = parse_settings("data-ingestion", "dev", {"pluginRepository": "https://nexus.example/maven2/"})
    assert settings.config.plugin_repository == "https://nexus.example/maven2"


def test_serialization_is_avro_or_json_and_refused_otherwise_naming_both():
    assert parse_settings("data-ingestion", "dev", {"serialization": "avro"}).config.serialization == AVRO
    with pytest.raises(SettingsError) as raised:
        parse_settings("data-ingestion", "dev", {"serialization": "protobuf"})
    [problem] = raised.value.problems
    assert problem.key == "data-ingestion:serialization" and "'avro' or 'json'" in problem.message
