"""The plugin installer, run as the Connect pod's init container runs it: real downloads, real javac."""

import zipfile

import pytest

from components.plugins import DEBEZIUM_POSTGRES, MANIFEST, S3_SINK
from tests.dataplane.plugins import install_plugins, require_jdk, write_plugin_files


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    require_jdk()
    plugin_dir = tmp_path_factory.mktemp("plugins") / "plugin-path"
    result = install_plugins(plugin_dir)
    assert result.returncode == 0, result.stderr
    return plugin_dir


def test_debezium_is_unpacked_into_its_own_plugin_directory(installed):
    jars = {path.name for path in (installed / DEBEZIUM_POSTGRES.name).iterdir()}
    assert f"debezium-connector-postgres-{DEBEZIUM_POSTGRES.version}.jar" in jars
    assert any(name.startswith("postgresql-") for name in jars)  # the JDBC driver comes with it


def test_the_s3_sink_is_compiled_into_a_discoverable_plugin(installed):
    jar = installed / S3_SINK.name / f"{S3_SINK.name}.jar"
    with zipfile.ZipFile(jar) as archive:
        names = set(archive.namelist())
        service = archive.read("META-INF/services/org.apache.kafka.connect.sink.SinkConnector").decode()
    assert "dataingestion/connect/s3/S3SinkTask.class" in names
    assert service.strip() == S3_SINK.class_name
    # Only the plugin's own classes: Connect provides its API, and a second copy would clash.
    assert not any(name.startswith("org/apache/kafka") for name in names)


def test_a_download_that_does_not_match_its_pinned_sha256_is_refused(tmp_path):
    require_jdk()
    files = write_plugin_files(tmp_path / "sources")
    manifest = files / MANIFEST
    lines = manifest.read_text().splitlines()
    tampered = [line.replace(line.rsplit("\t", 1)[1], "0" * 64) if "\tarchive\t" in line else line for line in lines]
    manifest.write_text("\n".join(tampered) + "\n")
    result = install_plugins(tmp_path / "plugin-path", files_dir=files)
    assert result.returncode != 0
    assert "refusing to install" in result.stderr and DEBEZIUM_POSTGRES.name in result.stderr


def test_an_edited_source_is_refused(tmp_path):
    require_jdk()
    files = write_plugin_files(tmp_path / "sources")
    (files / "S3SinkTask.java").write_text("class Evil {}")
    result = install_plugins(tmp_path / "plugin-path", files_dir=files)
    assert result.returncode != 0 and "S3SinkTask.java has sha256" in result.stderr
