"""Our Connect plugins' JUnit tests (`connect/<plugin>/test/`), run through Maven as the installer
compiles the plugins: the same sources, the same pinned jars, every warning an error."""

from dataclasses import replace

import pytest

from components.plugins import AVRO_CONVERTER, RECORD_SIZE_LIMIT, S3_SINK
from harness.javabuild import run_tests, plugins_with_tests

pytestmark = pytest.mark.minutes(1)


@pytest.fixture(scope="module")
def junit(tmp_path_factory):
    return run_tests(tmp_path_factory.mktemp("maven"))


def test_every_plugin_test_passes(junit):
    failed = [case for case in junit.cases if case.outcome in ("failed", "error")]
    print(f"JUnit: {len(junit.cases)} tests, {len(failed)} failed: {[case.name for case in failed]}")
    assert junit.returncode == 0 and not failed, junit.output[-6000:]


def test_the_sink_the_limit_and_the_typed_converter_are_tested(junit):
    ran = {(case.plugin, case.name.split(".")[0]) for case in junit.cases if case.outcome == "passed"}
    assert {plugin.name for plugin in plugins_with_tests()} == {S3_SINK.name, RECORD_SIZE_LIMIT.name, AVRO_CONVERTER.name}
    assert {(S3_SINK.name, "S3SinkTaskTest"), (RECORD_SIZE_LIMIT.name, "RecordSizeLimitTest"),
            (AVRO_CONVERTER.name, "TypedAvroDataTest")} <= ran
    by_class = {name: sum(1 for case in junit.cases if case.name.startswith(name + ".")) for _, name in ran}
    assert by_class["S3SinkTaskTest"] >= 8


def test_a_warning_fails_the_build_as_it_fails_the_installer(tmp_path):
    connect = tmp_path / "connect"
    (connect / "lint" / "test").mkdir(parents=True)
    (connect / "lint" / "Raw.java").write_text(
        "package lint;\nimport java.util.*;\npublic class Raw { public List<?> items() { List raw = new ArrayList(); return raw; } }\n")
    (connect / "lint" / "test" / "RawTest.java").write_text(
        "package lint;\nclass RawTest { @org.junit.jupiter.api.Test void runs() { new Raw().items(); } }\n")
    plugin = replace(RECORD_SIZE_LIMIT, name="lint", sources=("Raw.java",), services=())

    run = run_tests(tmp_path / "maven", (plugin,), str(connect))

    assert run.returncode != 0
    assert "warnings found and -Werror specified" in run.output, run.output[-3000:]
    assert not run.cases
