"""The archive tier's rules and documents as pure functions: S3 naming, the sink's IAM policy, the
bucket policy and lifecycle rules. The component declares them; the moto tests evaluate them."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

# Commercial-partition regions with S3. A test keeps this in step with botocore's endpoint data.
AWS_REGIONS = frozenset(
    {
        "af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
        "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
        "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ca-central-1",
        "ca-west-1", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2",
        "eu-west-1", "eu-west-2", "eu-west-3", "il-central-1", "me-central-1", "me-south-1",
        "mx-central-1", "sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2",
    }
)  # fmt: skip

# Storage classes a lifecycle rule may move current objects to, with the minimum age S3 accepts.
TRANSITION_MINIMUM_DAYS = {
    "STANDARD_IA": 30,
    "ONEZONE_IA": 30,
    "INTELLIGENT_TIERING": 0,
    "GLACIER_IR": 0,
    "GLACIER": 0,
    "DEEP_ARCHIVE": 0,
}

# The AWS provider refuses a bucket_prefix longer than this (it appends a 26-character suffix).
MAX_BUCKET_PREFIX = 37
ABORT_INCOMPLETE_UPLOADS_DAYS = 1

# Everything the sink does to S3: single PUTs and multipart uploads (CreateMultipartUpload,
# UploadPart and CompleteMultipartUpload are authorised by s3:PutObject), and cleaning up an
# upload it abandons. It never reads, lists or deletes.
SINK_OBJECT_ACTIONS = ("s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
SINK_KMS_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")  # Decrypt: multipart uploads under SSE-KMS
# What Iceberg's sink does under the prefix besides writing: it reads a table's metadata back to
# commit the next snapshot, and deletes the files of a write it aborted.
ICEBERG_OBJECT_ACTIONS = ("s3:GetObject", "s3:DeleteObject")
# What it does in its Glue database: asks for the database before it creates a table and takes
# "already exists" for an answer (CreateDatabase, scoped to this one database), finds it
# (GetDatabase), looks a table up (GetTable), creates one when a captured table first appears
# (CreateTable), and commits each snapshot by pointing the table at its new metadata (UpdateTable).
ICEBERG_GLUE_ACTIONS = ("glue:CreateDatabase", "glue:GetDatabase", "glue:GetTable", "glue:CreateTable",
                        "glue:UpdateTable")

_KMS_ARN = re.compile(
    r"^arn:aws(-[a-z]+)*:kms:(?P<region>[a-z0-9-]+):\d{12}:(key/[A-Za-z0-9-]+|alias/[A-Za-z0-9/_-]+)$"
)
_KMS_ALIAS = re.compile(r"^alias/[A-Za-z0-9/_-]+$")
_PREFIX_SEGMENT = re.compile(r"^[A-Za-z0-9!_.*'()-]+$")


def bucket_name_problem(name: str) -> str | None:
    """Why `name` cannot be a general-purpose S3 bucket name, or None if it can."""
    if not 3 <= len(name) <= 63:
        return f"{name!r} must be 3 to 63 characters long"
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", name):
        return f"{name!r} may hold only lower-case letters, digits, '.' and '-', and must start and end with a letter or digit"
    if ".." in name or ".-" in name or "-." in name:
        return f"{name!r} must not have two adjacent periods or a period next to a hyphen"
    try:
        ipaddress.IPv4Address(name)
        return f"{name!r} must not look like an IP address"
    except ValueError:
        pass
    for reserved in ("xn--", "sthree-", "amzn-s3-demo-"):
        if name.startswith(reserved):
            return f"{name!r} must not start with the reserved prefix {reserved!r}"
    for reserved in ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"):
        if name.endswith(reserved):
            return f"{name!r} must not end with the reserved suffix {reserved!r}"
    return None


def key_prefix_problem(prefix: str) -> str | None:
    """Why `prefix` cannot be the folder the sink writes under, or None if it can."""
    if not prefix:
        return "must not be empty; the sink writes under a prefix such as 'cdc'"
    if len(prefix) > 200:
        return f"{prefix!r} is longer than 200 characters; object keys must stay under 1024 bytes"
    segments = prefix.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        return f"{prefix!r} must not start or end with '/', nor hold an empty, '.' or '..' segment"
    bad = [segment for segment in segments if not _PREFIX_SEGMENT.match(segment)]
    if bad:
        return f"{prefix!r} may hold only letters, digits and !_.*'()- between '/' separators"
    return None


def kms_key_problem(key: str, region: str) -> str | None:
    """Why `key` cannot encrypt a bucket in `region`, or None if it can (empty means SSE-S3)."""
    if not key or _KMS_ALIAS.match(key):
        return None
    match = _KMS_ARN.match(key)
    if not match:
        return f"{key!r} is neither a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>) nor an alias (alias/<name>)"
    if match["region"] != region:
        return f"{key!r} is in {match['region']}, but S3 needs a key in the bucket's region {region}"
    return None


def auto_bucket_prefix(project: str, stack_slug: str, digest: str) -> str:
    """`<project>-<stack>-`, shortened with a digest of the stack name where S3's limit requires."""
    prefix = f"{project}-{stack_slug}-"
    if len(prefix) <= MAX_BUCKET_PREFIX:
        return prefix
    room = MAX_BUCKET_PREFIX - len(project) - len(digest) - 3
    return f"{project}-{stack_slug[:room].rstrip('-')}-{digest}-"


def object_prefix_arn(bucket_arn: str, prefix: str) -> str:
    return f"{bucket_arn}/{prefix}/*"


@dataclass(frozen=True)
class GlueCatalog:
    """Where an Iceberg archive is cataloged: one Glue database of one account and region."""

    region: str
    account_id: str
    database: str

    @property
    def arns(self) -> list[str]:
        """The catalog, the database and its tables: what Glue checks a table call against."""
        base = f"arn:aws:glue:{self.region}:{self.account_id}"
        return [f"{base}:catalog", f"{base}:database/{self.database}", f"{base}:table/{self.database}/*"]


def sink_policy(
    bucket_arn: str, prefix: str, kms_key_arn: str | None = None, catalog: GlueCatalog | None = None
) -> dict[str, Any]:
    """The sink's identity policy: write objects under the prefix of this bucket, nothing else; with
    an Iceberg catalog, also read and delete there and keep the tables of its one Glue database."""
    objects = SINK_OBJECT_ACTIONS + (ICEBERG_OBJECT_ACTIONS if catalog else ())
    statements: list[dict[str, Any]] = [
        {
            "Sid": "WriteArchiveObjects",
            "Effect": "Allow",
            "Action": list(objects),
            "Resource": [object_prefix_arn(bucket_arn, prefix)],
        }
    ]
    if catalog:
        statements.append(
            {"Sid": "KeepArchiveTables", "Effect": "Allow", "Action": list(ICEBERG_GLUE_ACTIONS), "Resource": catalog.arns}
        )
    if kms_key_arn:
        statements.append(
            {
                "Sid": "EncryptArchiveObjects",
                "Effect": "Allow",
                "Action": list(SINK_KMS_ACTIONS),
                "Resource": [kms_key_arn],
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def tls_only_policy(bucket_arn: str) -> dict[str, Any]:
    """The bucket policy: any request that does not arrive over TLS is denied, whoever makes it."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def lifecycle_rules(
    prefix: str, noncurrent_days: int, transition_days: int, transition_class: str
) -> list[dict[str, Any]]:
    """Lifecycle rules in the shape of the S3 API (PutBucketLifecycleConfiguration)."""
    rules: list[dict[str, Any]] = [
        {
            "ID": "abort-incomplete-multipart-uploads",
            "Status": "Enabled",
            "Filter": {},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_INCOMPLETE_UPLOADS_DAYS},
        },
        {
            "ID": "expire-noncurrent-versions",
            "Status": "Enabled",
            "Filter": {},
            "NoncurrentVersionExpiration": {"NoncurrentDays": noncurrent_days},
        },
    ]
    if transition_days > 0:
        rules.append(
            {
                "ID": "transition-archive",
                "Status": "Enabled",
                "Filter": {"Prefix": f"{prefix}/"},
                "Transitions": [{"Days": transition_days, "StorageClass": transition_class}],
            }
        )
    return rules
