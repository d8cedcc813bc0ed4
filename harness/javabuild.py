"""The Maven build of our Connect plugins' JUnit tests (`connect/<plugin>/test/`).

Written from the plugins' declarations (`components/plugins.py`), so it compiles the very sources the
installer compiles, with the installer's options, against exactly the jars the plugin is pinned to
(nothing transitive): the plugin's own as `compile`; what the worker provides as `provided`, with
what those need at run time (Jackson's databind for connect-json), as on the worker's class path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from components.plugins import CONNECT_DIR, JAVA_RELEASE, JAVAC_LINT, PLUGINS, Artifact, Plugin

from .needs import require

JUNIT_VERSION = "6.1.3"
COMPILER_PLUGIN_VERSION = "3.13.0"
SUREFIRE_VERSION = "3.5.4"
TEST_DIR = "test"


def plugins_with_tests(plugins: tuple[Plugin, ...] = PLUGINS, connect_dir: str = CONNECT_DIR) -> tuple[Plugin, ...]:
    """The plugins with JUnit tests beside their sources."""
    return tuple(p for p in plugins if os.path.isdir(os.path.join(connect_dir, p.name, TEST_DIR)))


def _dependency(jar: Artifact, scope: str, transitive: bool) -> str:
    classifier = f"<classifier>{jar.classifier}</classifier>" if jar.classifier else ""
    exclusions = "" if transitive else \
        "<exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions>"
    return (f"<dependency><groupId>{jar.group}</groupId><artifactId>{jar.artifact}</artifactId>"
            f"<version>{jar.version}</version>{classifier}<scope>{scope}</scope>{exclusions}</dependency>")


def module_pom(plugin: Plugin, connect_dir: str = CONNECT_DIR) -> str:
    if plugin.archives:
        # A published archive is not a Maven dependency; no tested plugin has one yet.
        raise ValueError(f"plugin {plugin.name} ships an archive: its tests cannot be built by Maven")
    source_dir = os.path.join(connect_dir, plugin.name)
    dependencies = [_dependency(jar, "compile", transitive=False) for jar in plugin.jars]
    dependencies += [_dependency(jar, "provided", transitive=True) for jar in plugin.compile_against]
    # The installer's options: the release is a setting of Maven's compiler, the rest its arguments.
    args = "".join(f"<arg>{escape(option)}</arg>" for option in JAVAC_LINT)
    sources = "".join(f"<include>{escape(source)}</include>" for source in plugin.sources)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dataingestion.connect</groupId>
  <artifactId>{plugin.name}</artifactId>
  <version>{escape(plugin.version)}</version>
  <properties><project.build.sourceEncoding>UTF-8</project.build.sourceEncoding></properties>
  <dependencies>
    {"".join(dependencies)}
    <dependency><groupId>org.junit.jupiter</groupId><artifactId>junit-jupiter</artifactId>
      <version>{JUNIT_VERSION}</version><scope>test</scope></dependency>
  </dependencies>
  <build>
    <sourceDirectory>{escape(source_dir)}</sourceDirectory>
    <testSourceDirectory>{escape(os.path.join(source_dir, TEST_DIR))}</testSourceDirectory>
    <plugins>
      <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-compiler-plugin</artifactId>
        <version>{COMPILER_PLUGIN_VERSION}</version>
        <configuration><release>{JAVA_RELEASE}</release><compilerArgs>{args}</compilerArgs></configuration>
        <executions><execution><id>default-compile</id>
          <configuration><includes>{sources}</includes></configuration></execution></executions>
      </plugin>
      <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-surefire-plugin</artifactId>
        <version>{SUREFIRE_VERSION}</version>
        <configuration><failIfNoTests>true</failIfNoTests><trimStackTrace>false</trimStackTrace></configuration>
      </plugin>
    </plugins>
  </build>
</project>
"""


def write_project(root: Path, plugins: tuple[Plugin, ...], connect_dir: str = CONNECT_DIR) -> Path:
    """An aggregator pom over one module per plugin; returns its path."""
    modules = ""
    for plugin in plugins:
        (root / plugin.name).mkdir(parents=True, exist_ok=True)
        (root / plugin.name / "pom.xml").write_text(module_pom(plugin, connect_dir), encoding="utf-8")
        modules += f"<module>{plugin.name}</module>"
    pom = root / "pom.xml"
    pom.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dataingestion.connect</groupId><artifactId>plugins</artifactId><version>1</version>
  <packaging>pom</packaging>
  <modules>{modules}</modules>
</project>
""", encoding="utf-8")
    return pom


@dataclass(frozen=True)
class JUnitCase:
    plugin: str
    name: str  # Class.method
    outcome: str  # passed, failed, error, skipped


@dataclass(frozen=True)
class Run:
    returncode: int
    output: str
    cases: tuple[JUnitCase, ...]


def run_tests(root: Path, plugins: tuple[Plugin, ...] | None = None, connect_dir: str = CONNECT_DIR) -> Run:
    """`mvn test` over the tested plugins (those of `connect_dir` with tests), with every jar's
    checksum checked strictly against the repository's."""
    require(shutil.which("mvn") is not None and shutil.which("javac") is not None, "Maven and a JDK",
            "install them (`apt-get install maven openjdk-17-jdk-headless`): the plugins' JUnit tests run through Maven")
    plugins = plugins_with_tests(connect_dir=connect_dir) if plugins is None else plugins
    pom = write_project(root, plugins, connect_dir)
    done = subprocess.run(["mvn", "-B", "--no-transfer-progress", "--strict-checksums", "--fail-at-end", "-f", str(pom), "test"],
                          capture_output=True, text=True, timeout=900)
    return Run(done.returncode, done.stdout + done.stderr, tuple(_cases(root, plugins)))


def _cases(root: Path, plugins: tuple[Plugin, ...]):
    for plugin in plugins:
        for report in sorted((root / plugin.name / "target" / "surefire-reports").glob("TEST-*.xml")):
            for case in ET.parse(report).getroot().iter("testcase"):
                outcome = next((tag for tag in ("failure", "error", "skipped") if case.find(tag) is not None), "passed")
                yield JUnitCase(plugin.name, f"{case.get('classname', '').rsplit('.', 1)[-1]}.{case.get('name')}",
                               "failed" if outcome == "failure" else outcome)
