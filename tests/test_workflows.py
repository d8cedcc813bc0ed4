"""The GitHub workflows: linted by actionlint, and doing what the README says they do."""

import shutil
import subprocess
from pathlib import Path

import yaml

from harness.needs import require

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def load(name):
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as true
    return workflow


def steps(workflow):
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_the_workflows_lint_clean():
    actionlint = ROOT / ".tools" / "bin" / "actionlint"
    binary = str(actionlint) if actionlint.exists() else shutil.which("actionlint")
    require(binary is not None, "actionlint", "install Go, then `make test` builds it into .tools/bin")
    result = subprocess.run([binary, "-color=false"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_tests_run_on_every_push_and_pull_request_with_the_readme_command():
    workflow = load("test.yml")
    assert set(workflow["on"]) == {"push", "pull_request"}
    runs = " ".join(step.get("run", "") for step in steps(workflow))
    assert ".ci/run" in runs
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_pull_requests_get_a_policy_checked_preview_comment_without_a_pulumi_account():
    workflow = load("preview.yml")
    assert set(workflow["on"]) == {"pull_request"}
    assert workflow["permissions"]["id-token"] == "write" and workflow["permissions"]["pull-requests"] == "write"
    [preview] = [step for step in steps(workflow) if step.get("with", {}).get("command") == "preview"]
    assert preview["uses"] == "pulumi/actions@v7"
    assert preview["with"]["comment-on-pr"] is True and preview["with"]["policyPacks"] == "policy"
    assert preview["with"]["stack-name"] == "${{ env.STACK }}" and "pr-" in workflow["env"]["STACK"]
    assert workflow["env"]["PULUMI_BACKEND_URL"].startswith("${{ vars.")
    text = (WORKFLOWS / "preview.yml").read_text()
    assert "PULUMI_ACCESS_TOKEN" not in text  # a self-managed backend, no Pulumi Cloud token
    [aws] = [step for step in steps(workflow) if step.get("uses", "").startswith("aws-actions/configure-aws-credentials")]
    assert "role-to-assume" in aws["with"] and "aws-access-key-id" not in aws["with"]  # OIDC, no stored keys


def test_the_policy_pack_runs_in_the_project_virtualenv():
    pack = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text())
    assert pack["runtime"]["name"] == "python"
    assert (ROOT / "policy" / pack["runtime"]["options"]["virtualenv"]).resolve() == (ROOT / ".venv").resolve()
    assert "pulumi-policy" in (ROOT / "requirements-dev.txt").read_text()


def pulumi_sdk_version():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.startswith("pulumi=="):
            return line.split("==")[1]
    raise AssertionError("requirements.txt pins no pulumi SDK")


def test_every_workflow_installs_the_pulumi_cli_of_the_pinned_sdk():
    for name in ("preview.yml", "preview-cleanup.yml"):
        actions = [step for step in steps(load(name)) if step.get("uses", "").startswith("pulumi/actions@")]
        assert actions and all(step["with"]["pulumi-version"] == pulumi_sdk_version() for step in actions), name


def test_a_closed_pull_request_removes_its_preview_stack_and_nothing_else():
    workflow = load("preview-cleanup.yml")
    assert workflow["on"] == {"pull_request": {"types": ["closed"]}}
    assert workflow["env"]["STACK"] == load("preview.yml")["env"]["STACK"]
    runs = " ".join(step.get("run", "") for step in steps(workflow))
    assert 'pulumi stack rm "$STACK" --yes' in runs and "--force" not in runs and "destroy" not in runs


def test_aws_credentials_come_from_the_node_24_action():
    for name in ("preview.yml", "preview-cleanup.yml"):
        uses = [step["uses"] for step in steps(load(name)) if "configure-aws-credentials" in step.get("uses", "")]
        assert uses == ["aws-actions/configure-aws-credentials@v6"], name


def test_make_preview_and_make_up_run_the_same_policy_pack_as_the_pull_requests_previews():
    [preview] = [step for step in steps(load("preview.yml")) if step.get("with", {}).get("command") == "preview"]
    for target, command in (("preview", "pulumi preview --stack dev-alice"), ("up", "pulumi up --stack dev-alice")):
        planned = subprocess.run(["make", "-n", target, "STACK=dev-alice"], cwd=ROOT, capture_output=True, text=True,
                                 timeout=60)
        assert planned.returncode == 0, planned.stderr
        [line] = [line for line in planned.stdout.splitlines() if line.startswith(command)]
        assert f"--policy-pack {preview['with']['policyPacks']}" in line
