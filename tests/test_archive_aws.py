"""The archive tier as declared, created in moto's AWS server, with IAM enforced on the sink's key."""

import io

import pytest
from botocore.exceptions import ClientError

from harness.awsfake import FakeAws, apply_archive
from harness.stackgraph import run_stack


@pytest.fixture(scope="module")
def aws():
    server = FakeAws()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def archive(aws):
    archive = apply_archive(run_stack("dev", {"archiveTransitionDays": 90}), aws, prefix="cdc")
    aws.enforce_iam()
    return archive


def error_code(call, **kwargs) -> str:
    try:
        call(**kwargs)
    except ClientError as error:
        return error.response["Error"]["Code"]
    return "OK"


def test_the_sink_writes_objects_under_its_prefix(aws, archive):
    s3 = aws.client("s3", archive.sink_credentials)
    key = f"{archive.prefix}/inventory.customers/partition=0/00000000000000000000.jsonl.gz"
    s3.put_object(Bucket=archive.bucket, Key=key, Body=b"{}\n")


def test_the_sink_completes_and_aborts_multipart_uploads_under_its_prefix(aws, archive):
    s3 = aws.client("s3", archive.sink_credentials)
    key = f"{archive.prefix}/inventory.orders/partition=0/00000000000000000100.jsonl.gz"
    upload = s3.create_multipart_upload(Bucket=archive.bucket, Key=key)["UploadId"]
    part = s3.upload_part(Bucket=archive.bucket, Key=key, UploadId=upload, PartNumber=1, Body=io.BytesIO(b"x" * 1024))
    s3.list_parts(Bucket=archive.bucket, Key=key, UploadId=upload)
    s3.complete_multipart_upload(
        Bucket=archive.bucket, Key=key, UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    abandoned = s3.create_multipart_upload(Bucket=archive.bucket, Key=key + ".2")["UploadId"]
    s3.abort_multipart_upload(Bucket=archive.bucket, Key=key + ".2", UploadId=abandoned)


@pytest.mark.parametrize(
    ("operation", "arguments"),
    [
        ("put_object", {"Key": "elsewhere/x.jsonl.gz", "Body": b"x"}),
        ("put_object", {"Key": "cdc-other/x.jsonl.gz", "Body": b"x"}),
        ("get_object", {"Key": "cdc/inventory.customers/partition=0/00000000000000000000.jsonl.gz"}),
        ("delete_object", {"Key": "cdc/inventory.customers/partition=0/00000000000000000000.jsonl.gz"}),
        ("list_objects_v2", {}),
        ("get_bucket_policy", {}),
        ("put_bucket_policy", {"Policy": '{"Version": "2012-10-17", "Statement": []}'}),
        ("put_bucket_versioning", {"VersioningConfiguration": {"Status": "Suspended"}}),
        ("delete_public_access_block", {}),
    ],
)
def test_the_sink_can_do_nothing_else_with_the_bucket(aws, archive, operation, arguments):
    s3 = aws.client("s3", archive.sink_credentials)
    assert error_code(getattr(s3, operation), Bucket=archive.bucket, **arguments) == "AccessDenied"


def test_the_sink_cannot_touch_other_buckets_or_iam(aws, archive):
    s3 = aws.client("s3", archive.sink_credentials)
    assert error_code(s3.put_object, Bucket="another-bucket", Key="cdc/x", Body=b"x") == "AccessDenied"
    iam = aws.client("iam", archive.sink_credentials)
    assert error_code(iam.create_access_key, UserName=archive.sink_user) == "AccessDenied"


def test_a_wrong_secret_is_refused(aws, archive):
    forged = {**archive.sink_credentials, "aws_secret_access_key": "not-the-secret"}
    s3 = aws.client("s3", forged)
    assert error_code(s3.put_object, Bucket=archive.bucket, Key="cdc/x", Body=b"x") == "SignatureDoesNotMatch"


def test_the_declared_hardening_reads_back_from_s3(aws, archive):
    # The sink's policy must not allow reading configuration, so read it with moto's own admin view.
    from moto.s3.models import s3_backends

    bucket = s3_backends["123456789012"]["aws"].get_bucket(archive.bucket)
    assert bucket.public_access_block.to_config_dict() == {
        "blockPublicAcls": True, "ignorePublicAcls": True, "blockPublicPolicy": True, "restrictPublicBuckets": True,
    }
    assert bucket.ownership_rule == "BucketOwnerEnforced"
    assert bucket.encryption["Rule"]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert bucket.versioning_status == "Enabled"
    rules = {rule.id: rule for rule in bucket.rules}
    assert set(rules) == {"abort-incomplete-multipart-uploads", "expire-noncurrent-versions", "transition-archive"}
    assert rules["transition-archive"].transitions[0].storage_class == "GLACIER_IR"
