"""`make up`'s prerequisite check, run for real against stand-ins for docker, kind, kubectl and pulumi,
and against moto's STS for AWS: what it says about this machine, before anything is created."""

import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from harness.awsfake import FakeAws

ROOT = Path(__file__).resolve().parent.parent
GIB = 1024**3
MIB = 1024**2
PINNED_PULUMI = next(line.split("==")[1] for line in (ROOT / "requirements.txt").read_text().splitlines()
                     if line.startswith("pulumi=="))

STAND_IN = """#!/bin/bash
case "$(basename "$0") $1" in
  "docker info") [ "$2" = --format ] && echo "$DOCKER_MEMORY" ;;
  "kind version") echo "kind $KIND_VERSION go1.25.4 linux/amd64" ;;
  "pulumi version") echo "$PULUMI_VERSION" ;;
esac
exit 0
"""


@pytest.fixture
def aws():
    server = FakeAws()
    yield server
    server.stop()


@pytest.fixture
def check(tmp_path, aws):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # Only what the script itself runs, so that a kubectl or kind on this machine is not found.
    for tool in ("bash", "env", "dirname", "basename", "grep", "sort", "head", "sed"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    for tool in ("docker", "kind", "kubectl", "pulumi"):
        path = bin_dir / tool
        path.write_text(STAND_IN)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)

    def run(purpose="up", stack="prereq-check", docker_memory=8 * GIB, kind_version="v0.33.0", without=(),
            aws_credentials=("AKIAEXAMPLE000000001", "secret"), pulumi_version=f"v{PINNED_PULUMI}"):
        for tool in without:
            (bin_dir / tool).unlink()
        env = {
            "PATH": str(bin_dir), "HOME": str(tmp_path), "PYTHON": sys.executable,
            "VENV_PY": sys.executable, "DOCKER_MEMORY": str(docker_memory), "KIND_VERSION": kind_version,
            "PULUMI_VERSION": pulumi_version,
            "AWS_ENDPOINT_URL_STS": aws.endpoint, "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true",
        }
        if aws_credentials:
            env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = aws_credentials
        return subprocess.run([str(ROOT / "scripts" / "check-prereqs.sh"), purpose, stack],
                              env=env, capture_output=True, text=True, timeout=120)

    return run


def test_a_ready_machine_passes_and_says_who_it_acts_as(check):
    result = check()
    assert result.returncode == 0, result.stderr
    assert "AWS: acting as arn:aws:" in result.stderr
    assert "Docker: 8192 MiB; this stack needs 5120 MiB" in result.stderr


def test_docker_with_too_little_memory_is_named_with_the_figures(check):
    result = check(docker_memory=4 * GIB)
    assert result.returncode == 1
    assert "Docker has 4096 MiB, and stack prereq-check needs 5120 MiB" in result.stderr
    assert "its pods 4096 MiB + Kind's own 1024 MiB" in result.stderr


def test_dockers_memory_set_to_what_the_stack_needs_passes_though_docker_reports_less(check):
    """A 5 GiB slider: Docker reports its VM's MemTotal, a few percent less than 5120 MiB."""
    assert check(docker_memory=4960 * MIB).returncode == 0
    refused = check(docker_memory=4800 * MIB)
    assert refused.returncode == 1 and "set Docker's memory to at least 5 GiB" in refused.stderr


def test_the_tools_are_checked_before_make_up_installs_anything(check):
    makefile = (ROOT / "Makefile").read_text()
    for target in ("up", "preview", "destroy"):
        [prerequisites] = [line.split(":", 1)[1].split() for line in makefile.splitlines() if line.startswith(f"{target}:")]
        assert prerequisites[0] == "tools", (target, prerequisites)  # make runs them left to right
    # No venv yet: the tools' check runs without it and names what is missing.
    result = check("tools", without=("kind",))
    assert result.returncode == 1 and "kind >= v0.33.0" in result.stderr and "AWS" not in result.stderr


def test_a_pulumi_cli_of_another_minor_version_is_warned_about(check):
    assert "Warning: the Pulumi CLI" not in check(pulumi_version=f"v{PINNED_PULUMI}").stderr
    result = check(pulumi_version="v3.274.0")
    assert result.returncode == 0
    assert f"Warning: the Pulumi CLI is 3.274.0; this project pins {PINNED_PULUMI}" in result.stderr


def test_destroy_does_not_need_the_memory_to_run_the_stack(check):
    assert check("destroy", docker_memory=2 * GIB).returncode == 0


def test_missing_kubectl_and_an_old_kind_are_named_together(check):
    result = check(kind_version="v0.29.0", without=("kubectl",))
    assert result.returncode == 1
    assert "kind >= v0.33.0 (found v0.29.0" in result.stderr
    assert "kubectl (make verify" in result.stderr


def test_no_aws_credentials_are_caught_before_anything_is_created(check):
    result = check(aws_credentials=None)
    assert result.returncode == 1
    assert "AWS credentials: none found" in result.stderr


def test_credentials_aws_refuses_are_caught_by_asking_aws(check, aws):
    aws.enforce_iam()  # from here moto authenticates: a key it never issued is refused
    result = check(aws_credentials=("AKIANEVERISSUED00000", "wrong"))
    assert result.returncode == 1
    assert "AWS credentials: AWS refused them (InvalidClientTokenId)" in result.stderr
