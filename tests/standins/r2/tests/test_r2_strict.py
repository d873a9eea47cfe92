"""The R2 stand-in itself (tests/standins/r2/): the strict layer refuses what R2 refuses and passes the rest to moto."""
from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from standins.r2 import R2


@pytest.fixture(scope="module")
def s3():
    store = R2()
    yield store
    store.stop()


def test_strict_layer_refuses_what_r2_refuses(s3):
    """The stand-in itself: botocore's default lifecycle write and DeleteBucketLifecycle are refused as R2 does."""
    client = boto3.client("s3", endpoint_url=s3.strict.url, region_name="us-east-1", aws_access_key_id=s3.key_id,
                          aws_secret_access_key=s3.secret, config=Config(s3={"addressing_style": "path"}))
    s3.client.create_bucket(Bucket="r2test-strict")
    rules = {"Rules": [{"ID": "a", "Filter": {"Prefix": ""}, "Status": "Enabled", "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}]}
    with pytest.raises(client.exceptions.ClientError) as put:
        client.put_bucket_lifecycle_configuration(Bucket="r2test-strict", LifecycleConfiguration=rules)
    assert put.value.response["Error"]["Code"] == "NotImplemented" and "x-amz-" in put.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.ClientError) as delete:
        client.delete_bucket_lifecycle(Bucket="r2test-strict")
    assert delete.value.response["Error"]["Code"] == "NotImplemented"
    assert client.list_objects_v2(Bucket="r2test-strict")["KeyCount"] == 0  # everything else passes, signed
