"""The rules of the policy pack, importable on their own so that tests can call each one.

Values unknown during a preview raise inside pulumi-policy's proxy and skip the check for that
resource; the rules read properties plainly.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from components.quantity import Memory  # noqa: E402

WORKLOADS = {
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet",
    "kubernetes:batch/v1:Job",
    "kubernetes:batch/v1:CronJob",
    "kubernetes:core/v1:Pod",
}
LONG_RUNNING = {"kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:DaemonSet"}
SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL|API_KEY)", re.IGNORECASE)
SECRET_VALUE = re.compile(
    r"(AKIA|ASIA)[0-9A-Z]{16}"  # an AWS access key id
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    # a property or YAML line such as `sasl.password=...`, unless it is a ${provider:...} placeholder
    r"|^\s*[\w.-]*(password|secret|token)[\w.-]*\s*[=:]\s*(?!\$\{)[^\s\"';]{6,}\s*$",
    re.IGNORECASE | re.MULTILINE,
)
DEFAULT_BUDGET = "4Gi"


def pod_spec(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if resource_type not in WORKLOADS:
        return None
    spec = props.get("spec") or {}
    if resource_type == "kubernetes:core/v1:Pod":
        return spec
    if resource_type == "kubernetes:batch/v1:CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return (spec.get("template") or {}).get("spec") or {}


def containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]


def _memory_limit(container: Mapping[str, Any]) -> Memory | None:
    limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
    return Memory.parse(limit) if limit else None


# -- memory limits on every container --------------------------------------------------------------
def check_memory_limits(args: ResourceValidationArgs, report: ReportViolation) -> None:
    pod = pod_spec(args.resource_type, args.props)
    if pod is None:
        return
    for container in containers(pod):
        resources = container.get("resources") or {}
        if not (resources.get("limits") or {}).get("memory") or not (resources.get("requests") or {}).get("memory"):
            report(f"container '{container.get('name')}' of {args.name} has no memory request and limit; "
                   "every container needs both, derived from its tier's *Memory setting")


def pod_memory(pod: Mapping[str, Any]) -> Memory:
    """What the scheduler reserves for a pod: its containers' sum, or its largest init container."""
    main = sum((_memory_limit(c) or Memory(0)).bytes for c in pod.get("containers") or [])
    init = max(((_memory_limit(c) or Memory(0)).bytes for c in pod.get("initContainers") or []), default=0)
    return Memory(max(main, init))


# -- their sum within the budget ---------------------------------------------------------------------
def check_memory_budget(args: StackValidationArgs, report: ReportViolation) -> None:
    budget = Memory.parse(args.get_config().get("memoryBudget", DEFAULT_BUDGET))
    parts: list[tuple[str, Memory]] = []
    for resource in args.resources:
        if resource.resource_type not in LONG_RUNNING:
            continue
        pod = pod_spec(resource.resource_type, resource.props)
        replicas = int((resource.props.get("spec") or {}).get("replicas", 1))
        parts.append((resource.name, Memory(pod_memory(pod).bytes * replicas)))
    total = Memory(sum(memory.bytes for _, memory in parts))
    if total > budget:
        detail = ", ".join(f"{name} {memory.mib}Mi" for name, memory in parts)
        report(f"long-running pods need {total.mib}Mi ({detail}), more than the memory budget "
               f"{budget.mib}Mi; lower a tier's memory or raise memoryBudget")


# -- pinned images -------------------------------------------------------------------------------
def image_problem(image: str) -> str | None:
    if "@sha256:" in image:
        return None
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        return f"image {image!r} has no tag; pin a version (or a digest)"
    if name.rsplit(":", 1)[1] == "latest":
        return f"image {image!r} uses 'latest'; pin a version (or a digest)"
    return None


def check_pinned_images(args: ResourceValidationArgs, report: ReportViolation) -> None:
    pod = pod_spec(args.resource_type, args.props)
    if pod is None:
        return
    for container in containers(pod):
        if problem := image_problem(str(container.get("image", ""))):
            report(f"{args.name}/{container.get('name')}: {problem}")


# -- no plaintext secrets ---------------------------------------------------------------------------
def _plain_strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _plain_strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _plain_strings(item)


def check_no_plaintext_secrets(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == "kubernetes:core/v1:ConfigMap":
        for key, value in (args.props.get("data") or {}).items():
            if SECRET_VALUE.search(str(value)):
                report(f"ConfigMap {args.name}, key {key!r}, holds what looks like a secret; "
                       "put it in a Secret and mount it, or reference it with a ${provider:...} placeholder")
        return
    pod = pod_spec(args.resource_type, args.props)
    if pod is None:
        return
    for container in containers(pod):
        for variable in container.get("env") or []:
            name, value = str(variable.get("name", "")), variable.get("value")
            if value is None:
                continue  # valueFrom: a Secret or the downward API
            named_secret = SECRET_NAME.search(name) and not name.endswith(("_FILE", "_PATH"))
            if named_secret or any(SECRET_VALUE.search(text) for text in _plain_strings(value)):
                report(f"{args.name}/{container.get('name')}: env {name} carries a plain value; "
                       "use valueFrom.secretKeyRef or a mounted Secret file")


# -- the archive bucket's hardening -------------------------------------------------------------
def _attached(resources: list[PolicyResource], bucket: PolicyResource, type_: str) -> list[PolicyResource]:
    return [
        r for r in resources
        if r.resource_type == type_ and any(dep is bucket for dep in (r.property_dependencies or {}).get("bucket", []))
    ]


def check_archive_bucket(args: StackValidationArgs, report: ReportViolation) -> None:
    for bucket in (r for r in args.resources if r.resource_type == "aws:s3/bucket:Bucket"):
        blocks = _attached(args.resources, bucket, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
        flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        if not any(all(block.props.get(flag) is True for flag in flags) for block in blocks):
            report(f"bucket {bucket.name} needs a public access block with all four flags on")
        encryption = _attached(
            args.resources, bucket,
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        )
        if not encryption:
            report(f"bucket {bucket.name} needs default encryption (SSE-S3 or SSE-KMS)")
        policies = _attached(args.resources, bucket, "aws:s3/bucketPolicy:BucketPolicy")
        if not any(_denies_plain_http(policy.props.get("policy")) for policy in policies):
            report(f"bucket {bucket.name} needs a bucket policy that denies requests without TLS "
                   "(Deny s3:* when aws:SecureTransport is false)")


def _denies_plain_http(document: Any) -> bool:
    policy = json.loads(document) if isinstance(document, str) else document or {}
    for statement in policy.get("Statement", []):
        condition = (statement.get("Condition") or {}).get("Bool") or {}
        if statement.get("Effect") == "Deny" and str(condition.get("aws:SecureTransport")).lower() == "false":
            actions = statement.get("Action")
            if actions in ("s3:*", ["s3:*"]):
                return True
    return False


# -- the sink's identity: named actions on named resources ------------------------------------------
def check_least_privilege(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != "aws:iam/userPolicy:UserPolicy":
        return
    document = args.props.get("policy")
    if not isinstance(document, str):
        return  # unknown in a preview
    for statement in json.loads(document).get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action")
        resources = statement.get("Resource")
        wildcard_actions = [a for a in (actions if isinstance(actions, list) else [actions]) if "*" in str(a)]
        if wildcard_actions:
            report(f"{args.name}: statement {statement.get('Sid', '?')} allows {', '.join(wildcard_actions)}; "
                   "name each action the identity needs")
        if "*" in (resources if isinstance(resources, list) else [resources]):
            report(f"{args.name}: statement {statement.get('Sid', '?')} allows every resource; name the bucket "
                   "prefix, database or key it is for")


def _resource_policy(name: str, description: str, check: Callable) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(name=name, description=description, validate=check)


POLICIES = [
    _resource_policy("memory-limits", "Every container has a memory request and limit.", check_memory_limits),
    StackValidationPolicy(
        name="memory-budget",
        description="Long-running pods' memory limits add up to at most the memory budget.",
        validate=check_memory_budget,
        config_schema=PolicyConfigSchema(
            properties={"memoryBudget": {"type": "string", "default": DEFAULT_BUDGET}}
        ),
    ),
    _resource_policy("pinned-images", "Every image is pinned to a version or digest, never latest.", check_pinned_images),
    _resource_policy("no-plaintext-secrets", "No secret in a plain env value or a ConfigMap.", check_no_plaintext_secrets),
    _resource_policy("least-privilege", "The sink's IAM policy names its actions and resources: no wildcards.",
                     check_least_privilege),
    StackValidationPolicy(
        name="archive-bucket-hardening",
        description="The archive bucket blocks public access, is encrypted and refuses plain HTTP.",
        validate=check_archive_bucket,
    ),
]
