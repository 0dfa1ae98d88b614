"""s3:// objects and prefixes through boto3 (the optional `roar[s3]` extra).

The endpoint, region and credentials come from boto3's usual configuration
(AWS_PROFILE, AWS_ACCESS_KEY_ID/..., AWS_ENDPOINT_URL for an S3-compatible
server such as MinIO), never from roar. A URL ending in "/" or naming no
object but a non-empty prefix is a directory.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

from roar.errors import ContextError


class Bucket:
    def __init__(self, bucket: str) -> None:
        try:
            import boto3
            import botocore.exceptions
        except ImportError:
            raise ContextError("s3:// needs boto3: install it with `pip install 'roar[s3]'`") from None
        self.name = bucket
        self.errors = botocore.exceptions
        self.client = boto3.client("s3")

    def url(self, key: str) -> str:
        return f"s3://{self.name}/{key}"

    def _fail(self, exc: Exception, key: str) -> ContextError:
        url = self.url(key)
        if isinstance(exc, self.errors.NoCredentialsError):
            return ContextError(f"{url}: no AWS credentials; set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
                                "AWS_SECRET_ACCESS_KEY")
        if isinstance(exc, self.errors.EndpointConnectionError):
            return ContextError(f"cannot reach the S3 endpoint for {url}; check AWS_ENDPOINT_URL and "
                                "the network")
        if isinstance(exc, self.errors.ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchKey", "NotFound"):
                return ContextError(f"{url}: no such object; check the URL")
            if code == "NoSuchBucket":
                return ContextError(f"{url}: no such bucket; check the URL")
            if code in ("403", "AccessDenied"):
                return ContextError(f"{url}: access denied; check your AWS credentials and the bucket policy")
            return ContextError(f"{url}: S3 error {code}; check the URL and your access")
        return ContextError(f"{url}: S3 request failed ({exc}); retry")

    def _call(self, key: str, fn, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (self.errors.BotoCoreError, self.errors.ClientError) as exc:
            raise self._fail(exc, key) from None

    def object_exists(self, key: str) -> bool:
        if not key or key.endswith("/"):
            return False
        try:
            self.client.head_object(Bucket=self.name, Key=key)
            return True
        except self.errors.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._fail(exc, key) from None
        except self.errors.BotoCoreError as exc:
            raise self._fail(exc, key) from None

    def keys_under(self, prefix: str) -> Iterator[str]:
        """Every key below `prefix` (a directory, with or without its trailing /)."""
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = self._call(prefix, lambda: list(paginator.paginate(Bucket=self.name, Prefix=prefix)))
        for page in pages:
            for obj in page.get("Contents", []):
                if not obj["Key"].endswith("/"):
                    yield obj["Key"]

    def download(self, key: str, into: str) -> None:
        self._call(key, self.client.download_file, self.name, key, into)

    def upload(self, path: str, key: str) -> None:
        self._call(key, self.client.upload_file, path, self.name, key)

    def delete(self, key: str) -> None:
        self._call(key, self.client.delete_object, Bucket=self.name, Key=key)


def relative(key: str, prefix: str) -> str:
    return os.path.relpath(key, prefix.rstrip("/")) if prefix else key
