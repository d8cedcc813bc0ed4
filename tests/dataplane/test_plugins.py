"""The plugin installer, run as the Connect pod's init container runs it: real downloads, real javac."""

import http.server
import re
import shutil
import threading
import zipfile

import pytest

from components.plugins import DEBEZIUM_POSTGRES, ICEBERG_SINK, MANIFEST, PLUGINS, S3_SINK
from components.stack import parse_settings
from harness.needs import CACHE
from harness.dataplane.plugins import install_plugins, require_jdk, write_plugin_files

pytestmark = pytest.mark.minutes(0.5)


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


def test_icebergs_sink_is_its_jars_and_ours_compiled_against_them_in_one_plugin_directory(installed):
    directory = installed / ICEBERG_SINK.name
    jars = {path.name for path in directory.iterdir()}
    assert {jar.file_name for jar in ICEBERG_SINK.jars} | {f"{ICEBERG_SINK.name}.jar"} == jars
    with zipfile.ZipFile(directory / f"{ICEBERG_SINK.name}.jar") as archive:
        names = set(archive.namelist())
        connector = archive.read("META-INF/services/org.apache.kafka.connect.sink.SinkConnector").decode()
    assert connector.strip() == ICEBERG_SINK.class_name
    assert "dataingestion/connect/iceberg/TypedIcebergSinkTask.class" in names
    # Iceberg's classes come from its own jars beside ours, in the same class loader.
    assert not any(name.startswith(("org/apache/iceberg", "org/apache/kafka")) for name in names)


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


@pytest.fixture
def mirror(tmp_path, installed):
    """A Maven repository on loopback holding every file of the manifest (copied from the download
    cache the installation above verified), under a path as Nexus and Artifactory serve one."""
    root = tmp_path / "mirror"
    for plugin in PLUGINS:
        for artifact in plugin.downloads:
            target = root / "maven2" / artifact.path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(CACHE / "plugins" / f"{artifact.sha256}-{artifact.file_name}", target)
    requested: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            requested.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/maven2", requested
    server.shutdown()


def test_plugins_come_from_the_configured_repository_with_the_same_checksums(tmp_path, mirror):
    _, url, requested = mirror
    settings = parse_settings("data-ingestion", "dev", {"pluginRepository": url + "/"})
    cache = tmp_path / "cache"
    cache.mkdir()
    stale = cache / f"{'0' * 64}-debezium-connector-postgres-3.6.0.Final-plugin.tar.gz"  # an upgraded plugin's old download
    stale.write_bytes(b"old")
    result = install_plugins(tmp_path / "plugin-path", repository=settings.config.plugin_repository, cache=cache)
    assert result.returncode == 0, result.stderr
    assert any(path.endswith(DEBEZIUM_POSTGRES.archives[0].path) for path in requested)
    assert (tmp_path / "plugin-path" / S3_SINK.name / f"{S3_SINK.name}.jar").exists()
    # The cache keeps this manifest's downloads only, so the worker's cache volume does not fill up.
    assert not stale.exists()
    # The cache keeps this manifest's downloads and one compiled jar per built plugin, nothing else.
    names = {path.name for path in cache.iterdir()}
    downloads = {f"{artifact.sha256}-{artifact.file_name}" for plugin in PLUGINS for artifact in plugin.downloads}
    compiled = sorted(plugin.name for plugin in PLUGINS if plugin.sources)
    assert downloads <= names
    assert sorted(re.fullmatch(r"[0-9a-f]{64}-(.+)\.jar", name)[1] for name in names - downloads) == compiled
    assert sorted(re.findall(r"^compiled (\S+)$", result.stdout, re.M)) == compiled
    # A restarted worker installs from the cache alone: the mirror is asked for nothing, javac runs for nothing.
    requested.clear()
    again = install_plugins(tmp_path / "plugin-path-again", repository=settings.config.plugin_repository, cache=cache)
    assert again.returncode == 0, again.stderr
    assert requested == []
    assert re.findall(r"^compiled (\S+)$", again.stdout, re.M) == []
    assert sorted(re.findall(r"^compiled (\S+) before: taken from the cache$", again.stdout, re.M)) == compiled


def test_a_mirror_serving_another_file_is_refused(tmp_path, mirror):
    root, url, _ = mirror
    (root / "maven2" / DEBEZIUM_POSTGRES.archives[0].path).write_bytes(b"not the pinned archive")
    result = install_plugins(tmp_path / "plugin-path", repository=url,
                             cache=tmp_path / "empty-cache")
    assert result.returncode != 0
    assert "refusing to install" in result.stderr and DEBEZIUM_POSTGRES.name in result.stderr
