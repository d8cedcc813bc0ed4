import json

import botocore.session
import pytest

from components.archive_config import AWS_REGIONS, SINK_OBJECT_ACTIONS
from components.settings import SettingsError
from components.stack import parse_settings
from tests.iam import ALLOWED, DENIED, IMPLICITLY_DENIED, evaluate
from harness.stackgraph import (
    FAKE_ACCESS_KEY_ID,
    FAKE_ACCOUNT,
    FAKE_BUCKET_SUFFIX,
    FAKE_KMS_KEY_ID,
    FAKE_SECRET_ACCESS_KEY,
    plain,
    run_stack,
)

BUCKET = "aws:s3/bucket:Bucket"
HARDENING = (
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketPolicy:BucketPolicy",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
)
AUTO_BUCKET = "data-ingestion-dev-" + FAKE_BUCKET_SUFFIX
BUCKET_ARN = f"arn:aws:s3:::{AUTO_BUCKET}"


@pytest.fixture(scope="module")
def graph():
    return run_stack("dev")


def sink_policy(graph):
    return json.loads(graph.one("aws:iam/userPolicy:UserPolicy").inputs["policy"])


def test_the_bucket_is_auto_named_per_stack_tagged_and_in_the_configured_region(graph):
    bucket = graph.one(BUCKET)
    assert bucket.inputs["bucketPrefix"] == "data-ingestion-dev-" and "bucket" not in bucket.inputs
    assert bucket.inputs["tags"]["project"] == "data-ingestion" and bucket.inputs["tags"]["stack"] == "dev"
    assert bucket.inputs["tags"]["owner"]
    provider = graph.one("pulumi:providers:aws")
    assert provider.inputs["region"] == "us-east-1"
    assert bucket.provider.startswith(provider.urn)


def test_long_stack_names_still_give_a_valid_unique_bucket_prefix():
    one = parse_settings("data-ingestion", "dev-alice-long-feature-branch-x", {}).names.bucket_prefix
    two = parse_settings("data-ingestion", "dev-alice-long-feature-branch-y", {}).names.bucket_prefix
    assert one != two and len(one) <= 37 and one.startswith("data-ingestion-dev-alice")


def test_every_hardening_resource_points_at_the_bucket(graph):
    bucket = graph.one(BUCKET)
    for type_ in HARDENING:
        resource = graph.one(type_)
        assert resource.inputs["bucket"] == AUTO_BUCKET, type_
        assert bucket.urn in resource.dependencies, type_


def test_public_access_is_blocked_objects_are_owned_encrypted_and_versioned(graph):
    block = graph.one(HARDENING[0]).inputs
    assert all(block[flag] is True for flag in
               ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    assert graph.one(HARDENING[1]).inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    [rule] = graph.one(HARDENING[2]).inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    assert graph.one(HARDENING[3]).inputs["versioningConfiguration"] == {"status": "Enabled"}


def test_the_bucket_policy_denies_every_request_without_tls(graph):
    policy = json.loads(graph.one(HARDENING[4]).inputs["policy"])
    for resource in (BUCKET_ARN, f"{BUCKET_ARN}/cdc/x.json.gz"):
        for action in ("s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteBucket"):
            assert evaluate(policy, action, resource, {"aws:SecureTransport": "false"}) == DENIED
            assert evaluate(policy, action, resource, {"aws:SecureTransport": "true"}) == IMPLICITLY_DENIED


def test_lifecycle_aborts_uploads_expires_old_versions_and_does_not_transition_by_default(graph):
    rules = {rule["id"]: rule for rule in graph.one(HARDENING[5]).inputs["rules"]}
    assert rules["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}
    assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    assert "transition-archive" not in rules
    assert all(rule["status"] == "Enabled" for rule in rules.values())


def test_a_transition_to_colder_storage_when_asked():
    graph = run_stack("dev", {"archiveTransitionDays": 90, "archiveTransitionStorageClass": "DEEP_ARCHIVE"})
    rules = {rule["id"]: rule for rule in graph.one(HARDENING[5]).inputs["rules"]}
    assert rules["transition-archive"]["filter"] == {"prefix": "cdc/"}
    assert rules["transition-archive"]["transitions"] == [{"days": 90, "storageClass": "DEEP_ARCHIVE"}]


def test_destroy_keeps_the_bucket_its_data_and_its_hardening_by_default(graph):
    bucket = graph.one(BUCKET)
    assert bucket.inputs["forceDestroy"] is False
    for resource in [bucket, *(graph.one(type_) for type_ in HARDENING)]:
        assert resource.retain_on_delete, resource.type
    # The identity is the stack's own and goes with it.
    for type_ in ("aws:iam/user:User", "aws:iam/userPolicy:UserPolicy", "aws:iam/accessKey:AccessKey"):
        assert not graph.one(type_).retain_on_delete


def test_a_disposable_bucket_only_when_asked():
    graph = run_stack("dev", {"archiveDisposable": "true"})
    bucket = graph.one(BUCKET)
    assert bucket.inputs["forceDestroy"] is True
    assert not bucket.retain_on_delete
    assert not any(graph.one(type_).retain_on_delete for type_ in HARDENING)


def test_the_sink_may_only_write_under_its_prefix_of_this_bucket(graph):
    policy = sink_policy(graph)
    [statement] = policy["Statement"]
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == sorted(SINK_OBJECT_ACTIONS)
    assert statement["Resource"] == [f"{BUCKET_ARN}/cdc/*"]
    inside = f"{BUCKET_ARN}/cdc/inventory.customers/part-0.json.gz"
    for action in SINK_OBJECT_ACTIONS:
        assert evaluate(policy, action, inside) == ALLOWED
    for action, resource in [
        ("s3:PutObject", f"{BUCKET_ARN}/other/x"),
        ("s3:PutObject", "arn:aws:s3:::someone-elses-bucket/cdc/x"),
        ("s3:GetObject", inside),
        ("s3:DeleteObject", inside),
        ("s3:ListBucket", BUCKET_ARN),
        ("s3:PutBucketPolicy", BUCKET_ARN),
        ("iam:CreateAccessKey", "*"),
    ]:
        assert evaluate(policy, action, resource) == IMPLICITLY_DENIED, (action, resource)


def test_sse_kms_with_an_alias_encrypts_by_the_key_and_lets_the_sink_use_it():
    graph = run_stack("dev", {"archiveKmsKey": "alias/archive"})
    [rule] = graph.one(HARDENING[2]).inputs["rules"]
    key_arn = f"arn:aws:kms:us-east-1:123456789012:key/{FAKE_KMS_KEY_ID}"
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn}
    assert rule["bucketKeyEnabled"] is True
    policy = sink_policy(graph)
    assert evaluate(policy, "kms:GenerateDataKey", key_arn) == ALLOWED
    assert evaluate(policy, "kms:Decrypt", key_arn) == ALLOWED
    assert evaluate(policy, "kms:Decrypt", "arn:aws:kms:us-east-1:123456789012:key/other") == IMPLICITLY_DENIED


def test_the_sink_key_stays_secret_and_outputs_name_the_archive(graph):
    outputs = graph.outputs["archive"]
    assert outputs == {"bucket": AUTO_BUCKET, "arn": BUCKET_ARN, "region": "us-east-1", "prefix": "cdc", "format": "jsonl"}
    text = json.dumps(plain(graph.outputs_wire))
    assert FAKE_SECRET_ACCESS_KEY not in text and FAKE_ACCESS_KEY_ID not in text


GLUE_DATABASE = "aws:glue/catalogDatabase:CatalogDatabase"


def test_a_jsonl_archive_has_no_catalog(graph):
    assert graph.of_type(GLUE_DATABASE) == []


def test_an_iceberg_archive_is_cataloged_in_a_glue_database_of_its_own_kept_with_the_bucket():
    graph = run_stack("dev-alice", {"archiveFormat": "iceberg"})
    database = graph.one(GLUE_DATABASE)
    assert database.inputs["name"] == "data_ingestion_dev_alice"
    assert database.inputs["locationUri"].startswith("s3://data-ingestion-dev-alice-") and database.inputs["locationUri"].endswith("/cdc")
    assert database.retain_on_delete, "the catalog describes the kept data: it stays with the bucket"
    assert graph.outputs["archive"]["glueDatabase"] == "data_ingestion_dev_alice"
    assert not run_stack("dev", {"archiveFormat": "iceberg", "archiveDisposable": "true"}).one(GLUE_DATABASE).retain_on_delete


def test_the_iceberg_sink_may_keep_its_tables_and_files_and_nothing_else():
    graph = run_stack("dev", {"archiveFormat": "iceberg"})
    policy = sink_policy(graph)
    bucket_arn = policy["Statement"][0]["Resource"][0].removesuffix("/cdc/*")
    glue = f"arn:aws:glue:us-east-1:{FAKE_ACCOUNT}"
    table = f"{glue}:table/data_ingestion_dev/inventory_customers"
    data_file = f"{bucket_arn}/cdc/data_ingestion_dev.db/inventory_customers/data/00000-0.parquet"
    for action, resource in [
        ("s3:PutObject", data_file), ("s3:GetObject", data_file), ("s3:DeleteObject", data_file),
        ("glue:GetDatabase", f"{glue}:database/data_ingestion_dev"), ("glue:GetDatabase", f"{glue}:catalog"),
        ("glue:CreateDatabase", f"{glue}:database/data_ingestion_dev"),
        ("glue:GetTable", table), ("glue:CreateTable", table), ("glue:UpdateTable", table),
    ]:
        assert evaluate(policy, action, resource) == ALLOWED, (action, resource)
    for action, resource in [
        ("s3:GetObject", f"{bucket_arn}/elsewhere/x"),
        ("s3:ListBucket", bucket_arn),
        ("glue:DeleteTable", table),
        ("glue:CreateTable", f"{glue}:table/other_database/inventory_customers"),
        ("glue:DeleteDatabase", f"{glue}:database/data_ingestion_dev"),
        ("glue:CreateDatabase", f"{glue}:database/another_database"),
        ("glue:CreateTable", f"arn:aws:glue:eu-west-1:{FAKE_ACCOUNT}:table/data_ingestion_dev/x"),
    ]:
        assert evaluate(policy, action, resource) == IMPLICITLY_DENIED, (action, resource)
    actions = [action for statement in policy["Statement"] for action in statement["Action"]]
    assert not any("*" in action for action in actions)


def test_the_region_list_matches_the_aws_sdk():
    assert AWS_REGIONS == set(botocore.session.get_session().get_available_regions("s3"))


@pytest.mark.parametrize(
    ("config", "key", "fragment"),
    [
        ({"archiveRegion": "eu-wset-1"}, "archiveRegion", "did you mean eu-west-1"),
        ({"archiveBucketName": "Archive_Bucket"}, "archiveBucketName", "lower-case"),
        ({"archiveBucketName": "ab"}, "archiveBucketName", "3 to 63"),
        ({"archiveBucketName": "192.168.1.10"}, "archiveBucketName", "IP address"),
        ({"archiveBucketName": "xn--archive"}, "archiveBucketName", "reserved prefix"),
        ({"archiveBucketName": "archive..cdc"}, "archiveBucketName", "adjacent"),
        ({"archivePrefix": "/cdc"}, "archivePrefix", "must not start or end with '/'"),
        ({"archivePrefix": "cdc/../x"}, "archivePrefix", "'..'"),
        ({"archivePrefix": "cdc data"}, "archivePrefix", "only letters"),
        ({"archiveKmsKey": "my-key"}, "archiveKmsKey", "neither a KMS key ARN"),
        ({"archiveKmsKey": "arn:aws:kms:eu-west-1:123456789012:key/k"}, "archiveKmsKey", "bucket's region"),
        ({"archiveTransitionStorageClass": "COLD"}, "archiveTransitionStorageClass", "GLACIER_IR"),
        ({"archiveTransitionDays": 7, "archiveTransitionStorageClass": "STANDARD_IA"}, "archiveTransitionDays", "30 days"),
        ({"archiveNoncurrentDays": 0}, "archiveNoncurrentDays", "greater than or equal to 1"),
        ({"archiveDisposable": "yes"}, "archiveDisposable", "true or false"),
        ({"archiveFormat": "parquet"}, "archiveFormat", "'jsonl' or 'iceberg'"),
        ({"exactlyOnceSource": "true"}, "exactlyOnceSource", "needs archiveFormat iceberg"),
    ],
)
def test_bad_archive_settings_are_refused_by_key(config, key, fragment):
    with pytest.raises(SettingsError) as raised:
        parse_settings("data-ingestion", "dev", config)
    [problem] = raised.value.problems
    assert problem.key == f"data-ingestion:{key}"
    assert fragment in problem.message


def test_a_valid_explicit_bucket_name_and_kms_arn_are_accepted():
    graph = run_stack(
        "dev",
        {"archiveBucketName": "acme.cdc-archive", "archiveRegion": "eu-west-1",
         "archiveKmsKey": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
    )
    bucket = graph.one(BUCKET).inputs
    assert bucket["bucket"] == "acme.cdc-archive" and "bucketPrefix" not in bucket
    assert graph.outputs["archive"]["region"] == "eu-west-1"
