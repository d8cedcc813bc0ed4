"""A stand-in for Apicurio Registry on loopback: only the calls the pipeline's clients make.

Apicurio Registry is not published as something that runs from Maven Central, so the data-plane
tests run the real converter against this. It answers exactly the requests observed from Apicurio's
converter (2.6.13, configured by `connect_config.avro_converters`) and from Confluent's Python
client reading by id, and refuses anything else with a 404 that the tests see in `unexpected`:

  POST /apis/registry/v2/groups/{group}/artifacts?ifExists=RETURN_OR_UPDATE   register a schema
  GET  /apis/registry/v2/ids/contentIds/{id}                                  a schema by content id
  GET  /apis/registry/v2/ids/contentIds/{id}/references                       its references (none)
  GET  /apis/ccompat/v7/schemas/ids/{id}                                      the same, Confluent's way

and the two the README gives for letting one refused change through (a subject's own rule):

  POST   /apis/registry/v2/groups/{group}/artifacts/{artifact}/rules                 {"type": "COMPATIBILITY", ...}
  DELETE /apis/registry/v2/groups/{group}/artifacts/{artifact}/rules/COMPATIBILITY

Like the real registry under the stack's global rule (`SCHEMA_COMPATIBILITY`), a changed schema is
a new version only if it reads every earlier version's records (Avro's own resolution rules, from
the `avro` package); otherwise the registration fails with 409, as Apicurio's rule violation does.
"""

from __future__ import annotations

import json
import re
import threading
import warnings
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import avro.errors
import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from components import connect_config as cconf
from tests.net import free_port


# Apicurio's date format, which its client parses (a number or nothing fails it).
CREATED_ON = "2026-01-01T00:00:00+0000"
REGISTER = re.compile(rf"{cconf.REGISTRY_API}/groups/([^/]+)/artifacts")
BY_CONTENT_ID = re.compile(rf"{cconf.REGISTRY_API}/ids/contentIds/(\d+)")
REFERENCES = re.compile(rf"{cconf.REGISTRY_API}/ids/contentIds/(\d+)/references")
RULES = re.compile(rf"{cconf.REGISTRY_API}/groups/([^/]+)/artifacts/([^/]+)/rules")
RULE = re.compile(rf"{cconf.REGISTRY_API}/groups/([^/]+)/artifacts/([^/]+)/rules/COMPATIBILITY")
CONFLUENT_BY_ID = re.compile(rf"{cconf.CONFLUENT_COMPATIBLE_API}/schemas/ids/(\d+)")


@dataclass
class Version:
    version: int
    global_id: int
    content_id: int
    content: str


@dataclass
class StandInRegistry:
    compatibility: str = cconf.SCHEMA_COMPATIBILITY
    artifacts: dict[tuple[str, str], list[Version]] = field(default_factory=dict)
    contents: dict[str, int] = field(default_factory=dict)  # canonical content → content id
    calls: list[str] = field(default_factory=list)  # "METHOD /path" of every request answered
    unexpected: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why each refused registration was refused
    rules: dict[tuple[str, str], str] = field(default_factory=dict)  # a subject's own compatibility rule

    def __post_init__(self) -> None:
        assert self.compatibility == "BACKWARD_TRANSITIVE", "the stand-in checks the stack's rule only"
        self._lock = threading.Lock()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: ThreadingHTTPServer | None = None
        self.start()

    @property
    def confluent_url(self) -> str:
        """What a Confluent client is given as its registry URL."""
        return f"{self.url}{cconf.CONFLUENT_COMPATIBLE_API}"

    def start(self) -> None:
        """Serve on the registry's port, with every schema registered so far (the real registry
        keeps them in its Kafka journal)."""
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Down: connections to the port are refused until start()."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- what the tests read ---------------------------------------------------------------------
    def versions(self, artifact: str, group: str = "default") -> list[dict]:
        """Every registered version of an artifact (a subject: `<topic>-key`, `<topic>-value`), parsed."""
        return [json.loads(version.content) for version in self.artifacts.get((group, artifact), [])]

    def schema(self, content_id: int) -> str:
        return next(v.content for versions in self.artifacts.values() for v in versions if v.content_id == content_id)

    # -- the API ------------------------------------------------------------------------------------
    def register(self, group: str, artifact: str, content: str) -> tuple[int, dict]:
        with self._lock, warnings.catch_warnings():
            # The `avro` package checks compatibility on the underlying types; it knows fewer logical
            # types than Avro 1.12 (local-timestamp-micros) and would say so on every parse.
            warnings.simplefilter("ignore", avro.errors.IgnoredLogicalType)
            parsed = avro.schema.parse(content)  # an unparseable schema is refused (the VALIDITY rule)
            canonical = json.dumps(parsed.to_json(), sort_keys=True)
            versions = self.artifacts.setdefault((group, artifact), [])
            for existing in versions[-1:]:
                if json.dumps(avro.schema.parse(existing.content).to_json(), sort_keys=True) == canonical:
                    return 200, self._metadata(group, artifact, existing)
            rule = self.rules.get((group, artifact), self.compatibility)
            for existing in versions if rule != "NONE" else []:  # transitive: it must read every earlier version
                writer = avro.schema.parse(existing.content)
                result = ReaderWriterCompatibilityChecker().get_compatibility(parsed, writer)
                if result.compatibility is not SchemaCompatibilityType.compatible:
                    why = (f"Incompatible artifact: {group}/{artifact} [AVRO], num of incompatible diffs: "
                           f"{len(result.messages)}, list of diff types: {sorted(result.messages)} "
                           f"against version {existing.version} [{rule}]")
                    self.refused.append(why)
                    return 409, {"error_code": 409, "name": "RuleViolationException", "message": why,
                                 "causes": [{"description": message, "context": "/"} for message in sorted(result.messages)]}
            content_id = self.contents.setdefault(canonical, len(self.contents) + 1)
            global_id = sum(len(v) for v in self.artifacts.values()) + 1
            version = Version(len(versions) + 1, global_id, content_id, content)
            versions.append(version)
            return 200, self._metadata(group, artifact, version)

    @staticmethod
    def _metadata(group: str, artifact: str, version: Version) -> dict:
        return {"groupId": group, "id": artifact, "version": str(version.version), "type": "AVRO",
                "globalId": version.global_id, "contentId": version.content_id, "state": "ENABLED",
                "createdOn": CREATED_ON, "modifiedOn": CREATED_ON, "createdBy": "", "modifiedBy": "", "references": []}


def _handler(registry: StandInRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet: the tests read `calls`
            pass

        def _reply(self, status: int, body: dict | list | str, content_type: str = "application/json") -> None:
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _not_answered(self) -> None:
            registry.unexpected.append(f"{self.command} {self.path}")
            self._reply(404, {"error_code": 404, "message": f"the stand-in does not serve {self.command} {self.path}"})

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            try:
                if match := REFERENCES.fullmatch(path):
                    registry.schema(int(match[1]))
                    body, kind = [], "application/json"
                elif match := BY_CONTENT_ID.fullmatch(path):
                    body, kind = registry.schema(int(match[1])), "application/json"
                elif match := CONFLUENT_BY_ID.fullmatch(path):
                    body, kind = {"schema": registry.schema(int(match[1]))}, "application/vnd.schemaregistry.v1+json"
                else:
                    return self._not_answered()
            except StopIteration:
                return self._reply(404, {"error_code": 40403, "message": f"no schema of id in {path}"})
            registry.calls.append(f"GET {_template(path)}")
            self._reply(200, body, kind)

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            if match := RULES.fullmatch(url.path):
                rule = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                if rule.get("type") != "COMPATIBILITY":
                    return self._not_answered()
                registry.rules[(match[1], match[2])] = rule["config"]
                registry.calls.append("POST /apis/registry/v2/groups/{group}/artifacts/{artifact}/rules")
                return self._reply(204, "")
            match = REGISTER.fullmatch(url.path)
            if not match or parse_qs(url.query).get("ifExists") != ["RETURN_OR_UPDATE"]:
                return self._not_answered()
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            if self.headers.get("Content-Type", "").startswith("application/create.extended+json"):
                body = json.loads(body)["content"]  # the content beside its (empty) references
            artifact = self.headers["X-Registry-ArtifactId"]
            assert self.headers.get("X-Registry-ArtifactType", "AVRO") == "AVRO", self.headers
            registry.calls.append(f"POST {_template(url.path)}?ifExists=RETURN_OR_UPDATE")
            self._reply(*registry.register(match[1], artifact, body))

        def do_PUT(self) -> None:
            self._not_answered()

        def do_DELETE(self) -> None:
            match = RULE.fullmatch(urlsplit(self.path).path)
            if not match or registry.rules.pop((match[1], match[2]), None) is None:
                return self._not_answered()
            registry.calls.append("DELETE /apis/registry/v2/groups/{group}/artifacts/{artifact}/rules/COMPATIBILITY")
            self._reply(204, "")

    return Handler


def _template(path: str) -> str:
    """A request's path with its ids and names generalised, as the module's docstring lists them."""
    path = re.sub(r"/groups/[^/]+/", "/groups/{group}/", path)
    return re.sub(r"/(\d+)(?=/|$)", "/{id}", path)
