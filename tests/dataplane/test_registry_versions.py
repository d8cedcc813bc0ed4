"""The registry the tests run against the registry the cluster runs, call by call.

The data-plane tests run Apicurio Registry SERVER_VERSION, the newest Maven Central builds; the
cluster runs the release of the converter the Connect workers install (SCHEMA_REGISTRY_IMAGE). For
every call the pipeline, its users' clients and the README make, this compares the two versions'
own API documents (each server publishes its OpenAPI in its application jar): the operation, every
parameter we send, the request body and the responses, with descriptions left aside. What differs
is listed here and in the README ("Which registry the tests run"); anything else that differs fails.
"""

from __future__ import annotations

import json
import re
import zipfile
from typing import Any, Iterator

import pytest
import requests

from components import connect_config as cconf
from tests import docs
from harness.needs import CACHE
from harness.dataplane.registry import CALLS, SERVER_VERSION, server_api_spec

DEPLOYED_VERSION = cconf.SCHEMA_REGISTRY_IMAGE.rsplit(":", 1)[1]
APIS = {cconf.REGISTRY_API: "registry/v2", cconf.CONFLUENT_COMPATIBLE_API: "ccompat/v7"}
# Left aside: words, and examples.
WORDS = {"description", "summary", "example", "examples", "operationId", "tags", "title"}

# Every difference, in the deployed version, of an operation we call. Both concern nothing this
# stack sends or reads: authentication is off, and the stack sets no INTEGRITY rule.
KNOWN_DIFFERENCES = {
    ("POST", "/apis/registry/v2/groups/{group}/artifacts?ifExists=RETURN_OR_UPDATE&canonical"): [
        "/security: documents OAuth2/OIDC roles"],
    ("GET", "/apis/registry/v2/ids/contentIds/{id}"): ["/security: documents OAuth2/OIDC roles"],
    ("GET", "/apis/registry/v2/ids/contentIds/{id}/references"): ["/security: documents OAuth2/OIDC roles"],
    ("POST", "/apis/registry/v2/groups/{group}/artifacts/{artifact}/rules"): [
        "/requestBody/application/json/type: a rule type INTEGRITY besides VALIDITY, COMPATIBILITY",
        "/security: documents OAuth2/OIDC roles"],
    ("DELETE", "/apis/registry/v2/groups/{group}/artifacts/{artifact}/rules/COMPATIBILITY"): [
        "/parameters/rule: a rule type INTEGRITY besides VALIDITY, COMPATIBILITY",
        "/security: documents OAuth2/OIDC roles"],
}


@pytest.fixture(scope="module")
def specs() -> dict[str, tuple[dict, dict]]:
    """Each API's document: (tested, deployed)."""
    return {api: (server_api_spec(name), deployed_api_spec(name)) for api, name in APIS.items()}


def deployed_api_spec(api: str) -> dict:
    """The deployed version's API document, from its application jar on Maven Central (cached)."""
    jar = CACHE / "apicurio-registry" / DEPLOYED_VERSION / "apicurio-registry-app.jar"
    if not jar.exists():
        url = (f"https://repo1.maven.org/maven2/io/apicurio/apicurio-registry-app/{DEPLOYED_VERSION}/"
               f"apicurio-registry-app-{DEPLOYED_VERSION}.jar")
        answer = requests.get(url, timeout=300)
        answer.raise_for_status()
        jar.parent.mkdir(parents=True, exist_ok=True)
        jar.with_suffix(".partial").write_bytes(answer.content)
        jar.with_suffix(".partial").rename(jar)
    with zipfile.ZipFile(jar) as archive:
        return json.loads(archive.read(f"META-INF/resources/api-specifications/{api}/openapi.json"))


def operation(spec: dict, method: str, path: str) -> dict | None:
    """The operation serving `path` (ids as {…}), its path-level parameters merged in, $refs
    resolved, words left aside; None if the document has no such operation."""
    shape = re.sub(r"\{[^}]+\}", "{}", path).rstrip("/")
    for candidate, item in spec["paths"].items():
        # A fixed segment of ours (a rule's name) matches the document's parameter there.
        pattern = re.escape(re.sub(r"\{[^}]+\}", "{}", candidate).rstrip("/")).replace(r"\{\}", "[^/]+")
        if re.fullmatch(pattern, shape) and method.lower() in item:
            found = dict(item[method.lower()])
            found["parameters"] = {parameter["name"]: parameter for parameter in
                                   (resolved(p, spec) for p in item.get("parameters", []) + found.get("parameters", []))}
            return resolved(found, spec)
    return None


def resolved(node: Any, spec: dict, seen: tuple[str, ...] = ()) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            if node["$ref"] in seen:  # a recursive schema: named, not unrolled
                return {"$ref": node["$ref"].rsplit("/", 1)[1]}
            target = spec
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return resolved(target, spec, seen + (node["$ref"],))
        return {key: resolved(value, spec, seen) for key, value in node.items() if key not in WORDS}
    if isinstance(node, list):
        return [resolved(value, spec, seen) for value in node]
    return node


def differences(tested: Any, deployed: Any, where: str = "") -> Iterator[tuple[str, Any, Any]]:
    if isinstance(tested, dict) and isinstance(deployed, dict):
        for key in sorted(set(tested) | set(deployed)):
            yield from differences(tested.get(key), deployed.get(key), f"{where}/{key}")
    elif tested != deployed:
        yield where, tested, deployed


def described(where: str, tested: Any, deployed: Any) -> str:
    """One difference in the words of KNOWN_DIFFERENCES."""
    if where == "/security" and tested is None:
        return "/security: documents OAuth2/OIDC roles"
    if where.endswith("/enum") and isinstance(tested, list) and set(tested) < set(deployed):
        place = "/".join(part for part in where.split("/") if part not in {"content", "schema", "properties", "enum"})
        added = ", ".join(value for value in deployed if value not in tested)
        return f"{place}: a rule type {added} besides {', '.join(tested)}"
    return f"{where}: {json.dumps(tested)[:200]} in {SERVER_VERSION}, {json.dumps(deployed)[:200]} in {DEPLOYED_VERSION}"


@pytest.mark.parametrize("call", sorted(CALLS), ids=lambda call: f"{call[0]} {call[1]}")
def test_each_call_is_served_alike_by_the_tested_and_the_deployed_registry(specs, call):
    method, template = call
    path, _, query = template.partition("?")
    api = next(prefix for prefix in APIS if path.startswith(prefix))
    tested_spec, deployed_spec = specs[api]
    tested = operation(tested_spec, method, path.removeprefix(api))
    deployed = operation(deployed_spec, method, path.removeprefix(api))
    if CALLS[call] is None:  # a call neither serves (the client falls back on the 404)
        assert (tested, deployed) == (None, None)
        return
    assert tested is not None and deployed is not None, f"{template}: {SERVER_VERSION} {tested is not None}, {DEPLOYED_VERSION} {deployed is not None}"
    # Each query parameter we send means the same to both (or is ignored by both: undeclared).
    for name in (part.split("=")[0] for part in query.split("&") if part):
        assert (name in tested["parameters"]) == (name in deployed["parameters"]), name
    found = sorted({described(*difference) for difference in differences(tested, deployed)})
    print(f"\n{method} {template} ({CALLS[call]}): {found or 'the same'}")
    assert found == KNOWN_DIFFERENCES.get(call, [])


def test_the_docs_name_the_tested_and_the_deployed_version():
    section = docs.section("docs/avro.md", "Which registry the tests run")
    assert SERVER_VERSION.removesuffix(".Final") in section and DEPLOYED_VERSION.removesuffix(".Final") in section
    assert "INTEGRITY" in section and "OAuth2" in section
