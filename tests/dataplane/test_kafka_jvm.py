"""The brokers' JVM options name methods of the pinned Kafka: a name that moved with an upgrade would
silently stop applying."""

import subprocess
import zipfile

import pytest

from components import kafka_config as kconf
from harness.dataplane.kafka import kafka_libs, require_kafka_tools

pytestmark = pytest.mark.minutes(0.2)


def test_every_method_left_interpreted_is_in_the_pinned_kafka():
    require_kafka_tools()
    jars = sorted(kafka_libs().glob("*.jar"))
    assert kconf.NOT_COMPILED
    for method in kconf.NOT_COMPILED:
        assert f"-XX:CompileCommand=exclude,{method}" in kconf.JVM_OPTIONS
        class_name, name = method.split("::")
        entry = class_name.replace(".", "/") + ".class"
        [jar] = [jar for jar in jars if entry in zipfile.ZipFile(jar).namelist()]
        members = subprocess.run(["javap", "-p", "-cp", str(jar), class_name], capture_output=True, text=True,
                                 check=True).stdout
        assert f" {name}(" in members, f"{method} is not in {jar.name}: update kafka_config.NOT_COMPILED"
