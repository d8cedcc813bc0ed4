"""Each policy of the pack, called directly on resources taken from the mocked graph."""

import copy
import json

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)

from policy import rules
from harness.stackgraph import SECRET_SIG, Graph, run_stack


@pytest.fixture(scope="module", params=["jsonl", "iceberg"])
def graph(request):
    return run_stack("dev", {"archiveFormat": request.param})


def options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def plain(value):
    """Inputs as the policy engine sees them: secrets unwrapped."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return plain(value["value"])
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def policy_resources(graph: Graph, edit=None) -> list[PolicyResource]:
    by_urn = {}
    for registered in graph.resources:
        props = plain(registered.inputs)
        if edit:
            props = edit(registered, copy.deepcopy(props))
        by_urn[registered.urn] = PolicyResource(registered.type, props, registered.urn, registered.name, options(),
                                                None, None, [], {})
    for registered in graph.resources:
        resource = by_urn[registered.urn]
        resource.dependencies = [by_urn[urn] for urn in registered.dependencies if urn in by_urn]
        resource.property_dependencies = {
            key: [by_urn[urn] for urn in urns if urn in by_urn] for key, urns in registered.property_dependencies.items()
        }
    return list(by_urn.values())


def violations_of_resources(check, resources):
    found = []
    for resource in resources:
        args = ResourceValidationArgs(resource.resource_type, resource.props, resource.urn, resource.name, options(), None)
        check(args, lambda message, urn=None: found.append(message))
    return found


def violations_of_stack(check, resources, config=None):
    found = []
    check(StackValidationArgs(resources, config), lambda message, urn=None: found.append(message))
    return found


def test_the_stack_as_declared_passes_every_policy(graph):
    resources = policy_resources(graph)
    for check in (rules.check_memory_limits, rules.check_pinned_images, rules.check_no_plaintext_secrets,
                  rules.check_least_privilege):
        assert violations_of_resources(check, resources) == [], check.__name__
    for check in (rules.check_memory_budget, rules.check_archive_bucket):
        assert violations_of_stack(check, resources) == [], check.__name__


def edit_container(workload, change):
    def edit(registered, props):
        if registered.name == workload and registered.type in rules.WORKLOADS:
            change(props["spec"]["template"]["spec"]["containers"][0])
        return props
    return edit


def test_a_container_without_a_memory_limit_is_refused(graph):
    resources = policy_resources(graph, edit_container("connect", lambda c: c["resources"]["limits"].pop("memory")))
    [violation] = violations_of_resources(rules.check_memory_limits, resources)
    assert "container 'connect' of connect has no memory request and limit" in violation


def test_memory_beyond_the_budget_is_refused(graph):
    resources = policy_resources(graph)
    assert violations_of_stack(rules.check_memory_budget, resources, {"memoryBudget": "4Gi"}) == []
    [violation] = violations_of_stack(rules.check_memory_budget, resources, {"memoryBudget": "3Gi"})
    assert "need 4094Mi" in violation and "kafka 2046Mi" in violation and "3072Mi" in violation


def test_more_replicas_count_against_the_budget(graph):
    def scale(registered, props):
        if registered.name == "connect" and registered.type.endswith("StatefulSet"):
            props["spec"]["replicas"] = 2
        return props
    [violation] = violations_of_stack(rules.check_memory_budget, policy_resources(graph, scale))
    assert "connect 1920Mi" in violation


@pytest.mark.parametrize("image", ["apache/kafka", "apache/kafka:latest", "registry.local:5000/kafka"])
def test_an_unpinned_image_is_refused(graph, image):
    resources = policy_resources(graph, edit_container("kafka", lambda c: c.update(image=image)))
    [violation] = violations_of_resources(rules.check_pinned_images, resources)
    assert image in violation


def test_a_digest_or_a_registry_port_with_a_tag_is_pinned():
    assert rules.image_problem("registry.local:5000/kafka:4.3.1") is None
    assert rules.image_problem("apache/kafka@sha256:" + "a" * 64) is None


@pytest.mark.parametrize(
    ("variable", "fragment"),
    [
        ({"name": "DB_PASSWORD", "value": "hunter2hunter2"}, "env DB_PASSWORD carries a plain value"),
        ({"name": "OPTS", "value": "-Daws.key=AKIAABCDEFGHIJKLMNOP"}, "env OPTS carries a plain value"),
    ],
)
def test_a_secret_in_a_plain_env_value_is_refused(graph, variable, fragment):
    resources = policy_resources(graph, edit_container("connect", lambda c: c["env"].append(variable)))
    [violation] = violations_of_resources(rules.check_no_plaintext_secrets, resources)
    assert fragment in violation


def test_a_secret_from_a_secret_ref_or_a_file_path_is_fine(graph):
    def add(container):
        container["env"] += [
            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "DB_PASSWORD_FILE", "value": "/run/secrets/db/password"},
        ]
    resources = policy_resources(graph, edit_container("connect", add))
    assert violations_of_resources(rules.check_no_plaintext_secrets, resources) == []


def test_a_secret_in_a_config_map_is_refused(graph):
    def leak(registered, props):
        if registered.name == "connect-worker-config":
            props["data"]["worker.properties"] += "sasl.password=s3cr3t-value\n"
        return props
    [violation] = violations_of_resources(rules.check_no_plaintext_secrets, policy_resources(graph, leak))
    assert "ConfigMap connect-worker-config, key 'worker.properties'" in violation


@pytest.mark.parametrize(
    ("resource", "change", "fragment"),
    [
        ("archive-public-access", lambda p: p.update(restrictPublicBuckets=False), "public access block"),
        ("archive-tls-only", lambda p: p.update(policy=json.dumps({"Version": "2012-10-17", "Statement": []})),
         "denies requests without TLS"),
    ],
)
def test_a_weakened_archive_bucket_is_refused(graph, resource, change, fragment):
    def weaken(registered, props):
        if registered.name == resource:
            change(props)
        return props
    [violation] = violations_of_stack(rules.check_archive_bucket, policy_resources(graph, weaken))
    assert fragment in violation


def test_a_bucket_without_encryption_is_refused(graph):
    resources = [r for r in policy_resources(graph) if r.name != "archive-encryption"]
    [violation] = violations_of_stack(rules.check_archive_bucket, resources)
    assert "default encryption" in violation


@pytest.mark.parametrize(("widen", "fragment"), [
    (lambda statement: statement.update(Action=["glue:*"]), "allows glue:*"),
    (lambda statement: statement.update(Resource="*"), "allows every resource"),
])
def test_a_wildcard_in_the_sink_s_policy_is_refused(graph, widen, fragment):
    def loosen(registered, props):
        if registered.type == "aws:iam/userPolicy:UserPolicy":
            document = json.loads(props["policy"])
            widen(document["Statement"][-1])
            props["policy"] = json.dumps(document)
        return props
    [violation] = violations_of_resources(rules.check_least_privilege, policy_resources(graph, loosen))
    assert fragment in violation


def test_the_pack_declares_every_rule():
    assert [policy.name for policy in rules.POLICIES] == [
        "memory-limits", "memory-budget", "pinned-images", "no-plaintext-secrets", "least-privilege",
        "archive-bucket-hardening",
    ]
