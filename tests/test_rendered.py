"""Independent checks of everything the stack declares, on the rendered objects (`make render`)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.render import kubernetes_object, render
from harness.needs import require
from harness.stackgraph import FAKE_ACCOUNT, FAKE_BUCKET_SUFFIX, FAKE_SECRET_ACCESS_KEY, fake_password, run_stack

ROOT = Path(__file__).resolve().parents[1]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
# Each skipped checkov check, and why it does not apply to this stack.
CHECKOV_SKIPS = {
    "CKV_K8S_43": "images are pinned by tag (checked below); their digests cannot be looked up from our machines",
    "CKV_K8S_15": "imagePullPolicy IfNotPresent: a Kind node pulls a pinned tag once; Always re-pulls on every start",
    "CKV_K8S_40": "the images run as the users they were built for (postgres 999, appuser 1000); another UID is "
                  "not something we can start and check here",
}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}


@pytest.fixture(scope="module", params=["jsonl", "iceberg"])
def graph(request):
    return run_stack("dev", {"archiveFormat": request.param})


@pytest.fixture(scope="module")
def objects(graph):
    return [kubernetes_object(resource) for resource in graph.kubernetes_objects()]


def pod_specs(objects):
    for obj in objects:
        if obj["kind"] in WORKLOADS:
            spec = obj["spec"]
            pod = spec["template"]["spec"] if "template" in spec else spec
            yield obj["metadata"]["name"], pod


def containers(pod):
    return [*pod.get("initContainers", []), *pod["containers"]]


def test_every_container_has_a_read_only_root_file_system(objects):
    """Beyond Pod Security "restricted", which the real API server enforces on every workload's pod
    (tests/test_apiserver.py), as it checks every object against its schema."""
    assert len(objects) > 40
    for name, pod in pod_specs(objects):
        for container in containers(pod):
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, f"{name}/{container['name']}"


def test_every_container_has_requests_and_limits(objects):
    for name, pod in pod_specs(objects):
        for container in containers(pod):
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"memory", "cpu"} <= set(resources[kind]), f"{name}/{container['name']} {kind}"
            assert resources["requests"]["memory"] == resources["limits"]["memory"], name


def test_every_image_is_pinned(objects):
    for name, pod in pod_specs(objects):
        for container in containers(pod):
            image = container["image"]
            assert "@sha256:" in image or re.search(r":[\w][\w.-]*$", image.rsplit("/", 1)[-1]), image
            assert not image.endswith(":latest"), image


def test_no_secret_value_is_rendered(tmp_path, graph):
    files = render(graph, tmp_path / "dev")
    text = "".join(path.read_text() for path in files)
    for secret in (fake_password("postgres-cdc-password"), fake_password("postgres-superuser-password"),
                   FAKE_SECRET_ACCESS_KEY, "kubeconfig-credential-1234"):
        assert secret not in text
    assert "<redacted>" in text
    connectors = json.loads((tmp_path / "dev" / "connectors.json").read_text())
    assert set(connectors) == {"postgres-source", "s3-sink" if graph.outputs["archive"]["format"] == "jsonl" else "iceberg-sink",
                               "buffer-guard"}


def test_checkov_finds_nothing_beyond_the_justified_skips(tmp_path, graph):
    require(CHECKOV.exists(), "checkov", "run `make test`: it creates .venv-checkov")
    render(graph, tmp_path / "dev")
    # Run without the skips, so that a skip no longer needed shows up too.
    result = subprocess.run(
        [str(CHECKOV), "--quiet", "--compact", "--framework", "kubernetes", "--output", "json",
         "--directory", str(tmp_path / "dev" / "kubernetes")],
        capture_output=True, text=True, timeout=600,
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [check for part in reports for check in part["results"]["failed_checks"]]
    unexpected = [f"{c['check_id']} {c['check_name']} — {c['file_path']}" for c in failed
                  if c["check_id"] not in CHECKOV_SKIPS]
    assert not unexpected, "\n".join(unexpected)
    assert {c["check_id"] for c in failed} == set(CHECKOV_SKIPS), "a skip is no longer needed: remove it"
    assert sum(part["summary"]["passed"] for part in reports) > 300


def make_render(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "render.py"), *args], capture_output=True, text=True,
                          env={**os.environ, **env}, cwd=ROOT, timeout=300)


def test_a_render_is_the_same_files_for_every_reviewer_and_says_what_each_tier_runs(tmp_path):
    """Byte-identical whatever the hash seed and whoever runs it: no login name, no made-up account or
    bucket suffix that could pass for real ones; then a line per tier."""
    outputs = []
    for seed, user in (("1", "alice"), ("4242", "bob")):
        out = tmp_path / f"seed-{seed}"
        shown = make_render("--out", str(out), PYTHONHASHSEED=seed, USER=user, LOGNAME=user)
        assert shown.returncode == 0, shown.stderr
        outputs.append({str(path.relative_to(out)): path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()})
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) > 40
    text = b"".join(outputs[0].values()).decode()
    assert "alice" not in text and '"owner": "<your-login-name>"' in text
    assert FAKE_ACCOUNT not in text and FAKE_BUCKET_SUFFIX not in text and "<suffix-chosen-at-up>" in text
    tiers = {line.split()[0]: line for line in shown.stdout.splitlines()[1:]}
    assert {"postgres", "kafka", "schema-registry", "connect", "all"} <= set(tiers)
    assert "960 MiB" in tiers["connect"] and "apache/kafka:4.3.1" in tiers["connect"]


def test_make_render_refuses_a_stack_with_no_file_naming_the_ones_there():
    shown = make_render("--stack", "dve")
    assert shown.returncode != 0
    assert "there is no stack 'dve' here (no Pulumi.dve.yaml)" in shown.stderr and "pulumi stack init dve" in shown.stderr


def test_render_and_the_prerequisite_check_read_the_stack_file_as_the_cli_would(tmp_path):
    """Its own keys, as the strings the CLI writes, beside the salt and another project's keys."""
    from components.settings import config_from_stack_file

    (tmp_path / "Pulumi.dev-alice.yaml").write_text(
        "encryptionsalt: v1:abc\nconfig:\n  data-ingestion:hostPortOffset: \"100\"\n"
        "  data-ingestion:kafkaBrokers: \"3\"\n  aws:region: eu-west-1\n")
    assert config_from_stack_file("data-ingestion", "dev-alice", tmp_path) == {"hostPortOffset": "100",
                                                                                "kafkaBrokers": "3"}
    assert config_from_stack_file("data-ingestion", "no-such-stack", tmp_path) == {}


def test_no_stack_file_is_tracked():
    """A local backend writes its encryption salt (and each secret) into the stack's file: a
    developer's own, never the repository's."""
    tracked = subprocess.run(["git", "ls-files", "Pulumi.*.yaml"], cwd=ROOT, capture_output=True, text=True)
    require(tracked.returncode == 0, "git and the repository's history", "run the tests in a git checkout")
    assert tracked.stdout == ""
    assert "/Pulumi.*.yaml" in (ROOT / ".gitignore").read_text().splitlines()
