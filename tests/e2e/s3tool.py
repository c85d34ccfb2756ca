#!/usr/bin/env python3
"""s3tool.py: the S3 side of the s3 source's tests, against moto's server.

  s3tool.py setup ENDPOINT              create a user with an S3 policy and its access key
                                        (moto's first INITIAL_NO_AUTH_ACTION_COUNT requests
                                        are not checked; every later one is); print
                                        "ACCESS_KEY_ID SECRET_KEY"
  s3tool.py mkbucket ENDPOINT BUCKET    (signed, keys from S3_KEY_ID / S3_SECRET)
  s3tool.py put ENDPOINT BUCKET KEY FILE [--checksum]
                                        a signed PutObject; --checksum stores the
                                        object's x-amz-checksum-sha256 too; prints the ETag
  s3tool.py multipart ENDPOINT BUCKET KEY FILE   a two-part upload (an ETag that is no MD5)

Uses boto3 (installed with moto); every call has a bounded timeout.
"""
import os
import sys

import boto3
from botocore.config import Config

CONFIG = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 1},
                s3={"addressing_style": "path"})
POLICY = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*",'
          '"Resource":"*"}]}')


def client(service, endpoint, key=None, secret=None):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=key or os.environ.get("S3_KEY_ID", "AKIAUNCHECKED00000000"),
                        aws_secret_access_key=secret or os.environ.get("S3_SECRET", "unchecked"),
                        config=CONFIG)


def setup(endpoint):
    iam = client("iam", endpoint)
    iam.create_user(UserName="vimport")  # 1
    iam.put_user_policy(UserName="vimport", PolicyName="s3", PolicyDocument=POLICY)  # 2
    key = iam.create_access_key(UserName="vimport")["AccessKey"]  # 3
    print(key["AccessKeyId"], key["SecretAccessKey"])


def main(argv):
    cmd, endpoint = argv[1], argv[2]
    if cmd == "setup":
        return setup(endpoint)
    s3 = client("s3", endpoint)
    if cmd == "mkbucket":
        s3.create_bucket(Bucket=argv[3])
    elif cmd == "put":
        extra = {"ChecksumAlgorithm": "SHA256"} if "--checksum" in argv else {}
        with open(argv[5], "rb") as f:
            r = s3.put_object(Bucket=argv[3], Key=argv[4], Body=f, **extra)
        print(r["ETag"])
    elif cmd == "multipart":
        data = open(argv[5], "rb").read()
        half = max(5 << 20, len(data) // 2)
        up = s3.create_multipart_upload(Bucket=argv[3], Key=argv[4])
        parts = []
        for n, off in enumerate(range(0, len(data), half), 1):
            r = s3.upload_part(Bucket=argv[3], Key=argv[4], UploadId=up["UploadId"],
                               PartNumber=n, Body=data[off:off + half])
            parts.append({"PartNumber": n, "ETag": r["ETag"]})
        r = s3.complete_multipart_upload(Bucket=argv[3], Key=argv[4], UploadId=up["UploadId"],
                                         MultipartUpload={"Parts": parts})
        print(r["ETag"])
    else:
        sys.exit(f"s3tool: unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
