"""moto's AWS server on loopback, and the archive tier's AWS resources replayed into it as declared.

`apply_archive(graph, server)` takes the inputs the program registered (from a mocked run) and makes
the same S3 and IAM calls the AWS provider would, so the bucket and the sink's identity in moto are
the stack's own, not a copy written for the tests.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import boto3
import requests
from botocore.config import Config
from moto.glue.responses import GlueResponse
from moto.server import ThreadedMotoServer

from harness.net import free_port
from harness.stackgraph import Graph

REGION = "us-east-1"
# Setup runs before moto enforces IAM; these credentials stand in for the operator's own.
OPERATOR = {"aws_access_key_id": "AKIAOPERATOR0000TEST", "aws_secret_access_key": "operator-secret"}


def _glue_resource(response) -> str:
    """The ARN Glue authorises a call against. moto checks every Glue call against "*", which a
    policy scoped to one database never allows; AWS checks the table's (or database's) own ARN."""
    body = json.loads(response.body or "{}")
    base = f"arn:aws:glue:{response.region}:{response.current_account}"
    table = body.get("Name") or (body.get("TableInput") or {}).get("Name")
    if database := body.get("DatabaseName"):
        return f"{base}:table/{database}/{table}" if table else f"{base}:database/{database}"
    if database := body.get("Name") or (body.get("DatabaseInput") or {}).get("Name"):
        return f"{base}:database/{database}"
    return f"{base}:catalog"


GlueResponse._determine_resource = _glue_resource


class FakeAws:
    """A moto server on a free loopback port; stop() ends it."""

    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self._reset()

    def _reset(self) -> None:
        # moto keeps its accounts and its auth switch per process, not per server: start clean.
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()
        requests.post(f"{self.endpoint}/moto-api/reset-auth", data=b"inf", timeout=10).raise_for_status()

    def client(self, service: str, credentials: dict[str, str] | None = None, region: str = REGION):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
            **(credentials or OPERATOR),
        )

    def enforce_iam(self) -> None:
        """From now on every request is authenticated and authorised by the caller's IAM policies."""
        requests.post(f"{self.endpoint}/moto-api/reset-auth", data=b"0", timeout=10).raise_for_status()

    def stop(self) -> None:
        self._reset()
        self._server.stop()


# Where the S3 API spells an acronym in capitals and the provider does not.
_API_SPELLING = {"id": "ID", "sseAlgorithm": "SSEAlgorithm", "kmsMasterKeyId": "KMSMasterKeyID"}


def _api_shape(provider: Any) -> Any:
    """The AWS provider's input shape (camelCase on the wire) back in the S3 API's PascalCase."""
    if isinstance(provider, dict):
        return {
            _API_SPELLING.get(key, key[:1].upper() + key[1:]): _api_shape(value) for key, value in provider.items()
        }
    if isinstance(provider, list):
        return [_api_shape(item) for item in provider]
    if isinstance(provider, float) and provider.is_integer():
        return int(provider)  # the wire carries every number as a double
    return provider


@dataclass
class ArchiveInAws:
    bucket: str
    prefix: str
    sink_user: str
    sink_credentials: dict[str, str]
    glue_database: str | None = None


def apply_archive(graph: Graph, aws: FakeAws, prefix: str) -> ArchiveInAws:
    """Create in moto the bucket, its hardening and the sink's identity exactly as `graph` declares them."""
    s3 = aws.client("s3")
    iam = aws.client("iam")
    declared = graph.one("aws:s3/bucket:Bucket").inputs
    bucket = declared.get("bucket") or _bucket_name(graph)
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in declared["tags"].items()]})

    block = graph.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": block["blockPublicAcls"],
            "IgnorePublicAcls": block["ignorePublicAcls"],
            "BlockPublicPolicy": block["blockPublicPolicy"],
            "RestrictPublicBuckets": block["restrictPublicBuckets"],
        },
    )
    ownership = graph.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": ownership["rule"]["objectOwnership"]}]}
    )
    encryption = graph.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs
    s3.put_bucket_encryption(
        Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": _api_shape(encryption["rules"])}
    )
    versioning = graph.one("aws:s3/bucketVersioning:BucketVersioning").inputs
    s3.put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": versioning["versioningConfiguration"]["status"]}
    )
    policy = graph.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"]
    s3.put_bucket_policy(Bucket=bucket, Policy=policy)
    # The TLS-only deny is accepted as declared and then lifted: moto applies bucket-policy denies
    # without the request's context (aws:SecureTransport), and this emulator speaks plain HTTP on
    # loopback, so it would refuse everything. tests/iam.py evaluates that statement instead.
    s3.delete_bucket_policy(Bucket=bucket)
    lifecycle = graph.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": _api_shape(lifecycle["rules"])}
    )

    databases = graph.of_type("aws:glue/catalogDatabase:CatalogDatabase")
    for database in databases:
        aws.client("glue").create_database(DatabaseInput={
            "Name": database.inputs["name"], "Description": database.inputs["description"],
            "LocationUri": f"s3://{bucket}/{prefix}"})
    user = graph.one("aws:iam/user:User")
    user_name = f"{user.name}-sink"
    iam.create_user(UserName=user_name, Path=user.inputs["path"])
    user_policy = graph.one("aws:iam/userPolicy:UserPolicy")
    iam.put_user_policy(UserName=user_name, PolicyName=user_policy.name, PolicyDocument=user_policy.inputs["policy"])
    key = iam.create_access_key(UserName=user_name)["AccessKey"]
    return ArchiveInAws(
        bucket=bucket,
        prefix=prefix,
        sink_user=user_name,
        sink_credentials={"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]},
        glue_database=databases[0].inputs["name"] if databases else None,
    )


def _bucket_name(graph: Graph) -> str:
    # The provider names an auto-named bucket at create time; the mocked run recorded that name in the
    # policies, so moto's bucket must carry the same one.
    policy = json.loads(graph.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    arn = policy["Statement"][0]["Resource"][0]
    return arn.removeprefix("arn:aws:s3:::")
