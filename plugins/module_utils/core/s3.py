# SPDX-License-Identifier: GPL-3.0-or-later
"""S3-compatible object storage: locations, clients, listing, streamed hashing, clear errors.

Pure helpers (no Ansible import). ``boto3`` is imported lazily so that modules
that never touch object storage do not need it. Every failure that an operator
can cause (wrong endpoint, missing bucket, bad credentials) is turned into a
``StellaOpsError`` whose message names the endpoint and the bucket and never
contains a secret.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

from .errors import StellaOpsError

_NOT_FOUND_CODES = {"NoSuchBucket"}
_NO_KEY_CODES = {"NoSuchKey", "404", "NotFound"}
_DENIED_CODES = {
    "AccessDenied",
    "403",
    "Forbidden",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AllAccessDisabled",
    "ExpiredToken",
    "InvalidToken",
}


@dataclass(frozen=True)
class S3Location:
    """Where objects live: bucket, optional key prefix, optional endpoint and credentials.

    ``secret_key`` never appears in ``repr``; ``access_key`` is shown masked.
    """

    bucket: str
    prefix: str = ""
    endpoint: Optional[str] = None
    region: Optional[str] = None
    access_key: Optional[str] = field(default=None, repr=False)
    secret_key: Optional[str] = field(default=None, repr=False)

    def describe(self) -> str:
        """A human description, safe to log: ``s3://bucket/prefix at endpoint``."""
        where = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        return f"{where} at {self.endpoint}" if self.endpoint else where

    def identity(self) -> dict[str, str]:
        """The fields that identify the store (no credentials), for baselines and reports."""
        return {
            "type": "s3",
            "endpoint": self.endpoint or "",
            "bucket": self.bucket,
            "prefix": self.prefix,
        }


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object: key, size in bytes, entity tag (quotes removed), modification time (epoch seconds)."""

    key: str
    size: int
    etag: str
    last_modified: float


def make_client(location: S3Location, max_pool_connections: int = 32) -> Any:
    """Create a boto3 S3 client for ``location``; raise ``StellaOpsError`` when boto3 is missing."""
    try:
        import boto3  # noqa: PLC0415 - optional dependency, imported on use
        from botocore.config import Config  # noqa: PLC0415
    except ImportError as exc:
        raise StellaOpsError(
            "The Python package 'boto3' is required for S3 object storage; install it on the host "
            "that runs the module (pip install boto3)."
        ) from exc
    config = Config(
        max_pool_connections=max_pool_connections,
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        s3={"addressing_style": "path"},
    )
    kwargs: dict[str, Any] = {"config": config}
    if location.endpoint:
        kwargs["endpoint_url"] = location.endpoint
    if location.region:
        kwargs["region_name"] = location.region
    elif location.endpoint:
        kwargs["region_name"] = "us-east-1"
    if location.access_key:
        kwargs["aws_access_key_id"] = location.access_key
    if location.secret_key:
        kwargs["aws_secret_access_key"] = location.secret_key
    try:
        return boto3.client("s3", **kwargs)
    except Exception as exc:  # noqa: BLE001 - botocore raises many types for bad settings
        raise translate_error(exc, location) from exc


def _strip_etag(etag: str) -> str:
    return etag.strip('"')


def iter_objects(client: Any, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
    """Yield every object under ``prefix`` in key order, page by page (1000 keys per request)."""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []) or []:
            modified = item.get("LastModified")
            yield ObjectInfo(
                key=item["Key"],
                size=int(item.get("Size", 0)),
                etag=_strip_etag(str(item.get("ETag", ""))),
                last_modified=modified.timestamp() if modified is not None else 0.0,
            )


def stream_sha256(client: Any, bucket: str, key: str, chunk_size: int = 1 << 20) -> tuple[str, int]:
    """SHA-256 hex digest and size of one object, read in ``chunk_size`` pieces (never whole in memory)."""
    response = client.get_object(Bucket=bucket, Key=key)
    body = response["Body"]
    digest = hashlib.sha256()
    size = 0
    try:
        while True:
            chunk = body.read(chunk_size)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
    finally:
        body.close()
    return digest.hexdigest(), size


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error") or {}
        code = str(error.get("Code", "") or "")
        if code:
            return code
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        if status:
            return str(status)
    return ""


def translate_error(exc: BaseException, location: S3Location, key: Optional[str] = None) -> StellaOpsError:
    """Turn a boto3/botocore exception into one clear sentence naming endpoint and bucket, never a secret."""
    if isinstance(exc, StellaOpsError):
        return exc
    endpoint = location.endpoint or "the default AWS endpoint"
    bucket = location.bucket
    name = type(exc).__name__
    code = _error_code(exc)
    what = f"object {key!r} in bucket {bucket!r}" if key else f"bucket {bucket!r}"
    if name in {"EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError", "ReadTimeoutError"} or (
        name in {"ConnectionError", "ProxyConnectionError", "HTTPClientError"}
    ):
        message = (
            f"Cannot reach the S3 endpoint {endpoint} for bucket {bucket!r}: "
            "check the endpoint option and that the service is running."
        )
    elif name == "InvalidEndpointConfigurationError" or (name == "ValueError" and "endpoint" in str(exc).lower()):
        message = f"The S3 endpoint {endpoint!r} is not a valid URL: expected for example http://127.0.0.1:9000."
    elif name in {"NoCredentialsError", "PartialCredentialsError"}:
        message = f"No usable S3 credentials for bucket {bucket!r} at {endpoint}: set access_key and secret_key."
    elif code in _NOT_FOUND_CODES or (code in _NO_KEY_CODES and not key):
        message = f"The S3 bucket {bucket!r} does not exist at {endpoint}: check the bucket option."
    elif code in _NO_KEY_CODES and key:
        message = f"The {what} does not exist at {endpoint}."
    elif code in _DENIED_CODES:
        message = f"Access denied to the {what} at {endpoint}: check access_key, secret_key and the bucket policy."
    else:
        detail = code or name
        message = f"S3 request for the {what} at {endpoint} failed ({detail})."
    return StellaOpsError(message, endpoint=location.endpoint, bucket=bucket, key=key, code=code or name)


def check_bucket(client: Any, location: S3Location) -> None:
    """Raise a clear ``StellaOpsError`` unless the bucket exists and is reachable."""
    try:
        client.head_bucket(Bucket=location.bucket)
    except Exception as exc:  # noqa: BLE001 - translated into one sentence
        raise translate_error(exc, location) from exc
