# SPDX-License-Identifier: GPL-3.0-or-later
"""The S3 helpers against the sandbox's S3-compatible storage (moto server on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.core.s3 import (
    S3Location,
    check_bucket,
    iter_objects,
    make_client,
    stream_sha256,
)


def _location(sandbox: dict[str, Any], bucket: str, prefix: str = "") -> S3Location:
    s3 = sandbox["s3"]
    return S3Location(
        bucket=bucket,
        prefix=prefix,
        endpoint=s3["endpoint"],
        region=s3["region"],
        access_key=s3["access_key"],
        secret_key=Path(s3["secret_key_file"]).read_text().strip(),
    )


@pytest.fixture
def scratch_bucket(sandbox: dict[str, Any]) -> Iterator[S3Location]:
    location = _location(sandbox, f"test-s3-{uuid.uuid4().hex[:10]}")
    client = make_client(location)
    client.create_bucket(Bucket=location.bucket)
    yield location
    keys = [{"Key": info.key} for info in iter_objects(client, location.bucket)]
    for start in range(0, len(keys), 1000):
        client.delete_objects(Bucket=location.bucket, Delete={"Objects": keys[start : start + 1000]})
    client.delete_bucket(Bucket=location.bucket)


def test_lists_seeded_evidence(sandbox: dict[str, Any]) -> None:
    location = _location(sandbox, sandbox["s3"]["evidence_bucket"], "evidence/")
    client = make_client(location)
    objects = list(iter_objects(client, location.bucket, location.prefix))
    assert len(objects) == 60
    assert all(o.key.startswith("evidence/") for o in objects)
    assert all(o.size > 0 and len(o.etag) == 32 for o in objects)


def test_pagination_and_streamed_hash(sandbox: dict[str, Any], scratch_bucket: S3Location) -> None:
    client = make_client(scratch_bucket)
    for i in range(1001):
        client.put_object(Bucket=scratch_bucket.bucket, Key=f"many/{i:05d}", Body=b"x")
    big = bytes(range(256)) * 20000  # 5 MB, several chunks
    client.put_object(Bucket=scratch_bucket.bucket, Key="big.bin", Body=big)
    keys = [o.key for o in iter_objects(client, scratch_bucket.bucket, "many/")]
    assert len(keys) == 1001
    assert keys == sorted(keys)
    digest, size = stream_sha256(client, scratch_bucket.bucket, "big.bin", chunk_size=65536)
    assert (digest, size) == (hashlib.sha256(big).hexdigest(), len(big))


def test_missing_bucket_and_unreachable_endpoint(sandbox: dict[str, Any]) -> None:
    missing = _location(sandbox, "no-such-bucket-here")
    with pytest.raises(StellaOpsError, match="bucket 'no-such-bucket-here' does not exist at http://127.0.0.1"):
        check_bucket(make_client(missing), missing)
    unreachable = S3Location("b", endpoint="http://127.0.0.1:1", access_key="a", secret_key="topsecret")
    with pytest.raises(StellaOpsError, match="Cannot reach the S3 endpoint http://127.0.0.1:1") as info:
        check_bucket(make_client(unreachable), unreachable)
    assert "topsecret" not in str(info.value)
