"""The archive tier: the S3 bucket the sink writes into, hardened, and the sink's own IAM identity."""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import pulumi_aws as aws

from . import archive_config as rules
from .settings import Settings
from .topology import PROJECT


def provider_shape(api: Any) -> Any:
    """An S3 API document (PascalCase keys) in the AWS provider's input shape (snake_case keys)."""
    if isinstance(api, dict):
        return {re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower(): provider_shape(value) for key, value in api.items()}
    if isinstance(api, list):
        return [provider_shape(item) for item in api]
    return api


class Archive(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    region: str
    prefix: str
    access_key_id: pulumi.Output[str]
    secret_access_key: pulumi.Output[str]

    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("data-ingestion:archive:Archive", name, None, opts)
        config = settings.config
        self.region = config.archive_region
        self.prefix = config.archive_prefix
        tags = {"project": settings.project, "stack": settings.stack, "owner": settings.owner}

        aws_provider = aws.Provider("aws", region=self.region, opts=pulumi.ResourceOptions(parent=self))
        on_aws = pulumi.ResourceOptions(parent=self, provider=aws_provider)
        # Unless the stack asked for a disposable bucket, `pulumi destroy` leaves the bucket, its data
        # and its hardening in AWS: deleting the hardening alone would leave archived data exposed.
        keep = pulumi.ResourceOptions(retain_on_delete=not config.archive_disposable)
        on_bucket = pulumi.ResourceOptions.merge(on_aws, keep)

        bucket = aws.s3.Bucket(
            "archive",
            bucket=config.archive_bucket_name or None,
            bucket_prefix=None if config.archive_bucket_name else settings.names.bucket_prefix,
            force_destroy=config.archive_disposable,
            tags=tags,
            opts=on_bucket,
        )
        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn

        public_access = aws.s3.BucketPublicAccessBlock(
            "archive-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=on_bucket,
        )
        aws.s3.BucketOwnershipControls(
            "archive-ownership",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=on_bucket,
        )
        kms_key_arn = self._kms_key_arn(config.archive_kms_key, on_aws)
        default_encryption: dict[str, Any] = (
            {"sse_algorithm": "aws:kms", "kms_master_key_id": kms_key_arn}
            if kms_key_arn is not None
            else {"sse_algorithm": "AES256"}
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            "archive-encryption",
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": default_encryption,
                    "bucket_key_enabled": kms_key_arn is not None,
                }
            ],
            opts=on_bucket,
        )
        versioning = aws.s3.BucketVersioning(
            "archive-versioning",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=on_bucket,
        )
        aws.s3.BucketPolicy(
            "archive-tls-only",
            bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: json.dumps(rules.tls_only_policy(arn))),
            # S3 refuses a bucket policy while the public-access block is being applied.
            opts=pulumi.ResourceOptions.merge(on_bucket, pulumi.ResourceOptions(depends_on=[public_access])),
        )
        aws.s3.BucketLifecycleConfiguration(
            "archive-lifecycle",
            bucket=bucket.id,
            rules=provider_shape(
                rules.lifecycle_rules(
                    self.prefix,
                    config.archive_noncurrent_days,
                    config.archive_transition_days,
                    config.archive_transition_storage_class,
                )
            ),
            # Noncurrent-version rules need versioning to be on first.
            opts=pulumi.ResourceOptions.merge(on_bucket, pulumi.ResourceOptions(depends_on=[versioning])),
        )

        # Kind does not run on AWS, so the sink cannot use an instance role: it gets a user of its own
        # that can write under the prefix and do nothing else. The identity goes with the stack.
        user = aws.iam.User(
            "archive-sink",
            path=f"/{PROJECT}/{settings.names.stack_slug}/",
            tags=tags,
            opts=on_aws,
        )
        self.catalog_database: pulumi.Output[str] | None = None
        catalog_resources: list[pulumi.Resource] = []
        catalog: pulumi.Input[rules.GlueCatalog | None] = None
        if config.archive_format.typed:
            # The Iceberg tables' catalog: one Glue database per stack, kept with the bucket it describes.
            database = aws.glue.CatalogDatabase(
                "archive-catalog",
                name=settings.names.glue_database,
                description=f"Iceberg changelog tables of {settings.project} stack {settings.stack}",
                location_uri=bucket.bucket.apply(lambda name: f"s3://{name}/{self.prefix}"),
                tags=tags,
                opts=on_bucket,
            )
            catalog_resources.append(database)
            account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(provider=aws_provider))
            catalog = pulumi.Output.all(account.account_id, database.name).apply(
                lambda args: rules.GlueCatalog(self.region, args[0], args[1])
            )
            self.catalog_database = database.name
        sink_policy = aws.iam.UserPolicy(
            "archive-sink-write",
            user=user.name,
            policy=pulumi.Output.all(bucket.arn, kms_key_arn, catalog).apply(
                lambda args: json.dumps(rules.sink_policy(args[0], self.prefix, args[1], args[2]))
            ),
            opts=on_aws,
        )
        access_key = aws.iam.AccessKey("archive-sink-key", user=user.name, opts=on_aws)
        # What must exist before the sink can write: the bucket as configured, its catalog, its identity.
        self.sink_grants: list[pulumi.Resource] = [bucket, versioning, sink_policy, access_key, *catalog_resources]
        self.access_key_id = pulumi.Output.secret(access_key.id)
        self.secret_access_key = pulumi.Output.secret(access_key.secret)

        outputs = {"bucketName": self.bucket_name, "bucketArn": self.bucket_arn, "region": self.region,
                   "prefix": self.prefix, "format": config.archive_format.name}
        if catalog_resources:
            outputs["glueDatabase"] = self.catalog_database
        self.register_outputs(outputs)

    @staticmethod
    def _kms_key_arn(key: str, on_aws: pulumi.ResourceOptions) -> pulumi.Input[str] | None:
        if not key:
            return None
        if ":key/" in key:
            return key
        # An alias names a key; the IAM policy needs the key's own ARN.
        found = aws.kms.get_key_output(key_id=key, opts=pulumi.InvokeOutputOptions(provider=on_aws.provider))
        return found.arn
