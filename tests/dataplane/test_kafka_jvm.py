"""The brokers' JVM options name methods of the pinned Kafka: a name that moved with an upgrade would
silently stop applying."""

import os
import subprocess

import pytest

from components import kafka_config as kconf
from harness.dataplane.kafka import kafka_libs, require_kafka_tools

pytestmark = pytest.mark.minutes(0.2)


def test_every_method_left_interpreted_is_in_the_pinned_kafka():
    require_kafka_tools()
    classpath = os.pathsep.join(str(jar) for jar in sorted(kafka_libs().glob("*.jar")))
    assert kconf.NOT_COMPILED
    for method in kconf.NOT_COMPILED:
        assert f"-XX:CompileCommand=exclude,{method}" in kconf.JVM_OPTIONS
        class_name, name = method.split("::")
        members = subprocess.run(["javap", "-p", "-cp", classpath, class_name], capture_output=True, text=True,
                                 check=True).stdout
        assert f" {name}(" in members, f"{method} is not in Kafka's jars: update kafka_config.NOT_COMPILED"
