# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure edge cases of the S3 helpers; S3 behaviour itself is tested against the sandbox in tests/integration."""

from __future__ import annotations

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.core.s3 import S3Location, translate_error
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

LOC = S3Location("evidence", "p/", "http://127.0.0.1:9", "us-east-1", "AKIDSECRETISH", "very-secret-key")


def _client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")


def test_repr_hides_credentials() -> None:
    text = repr(LOC) + str(LOC) + LOC.describe() + str(LOC.identity())
    assert "very-secret-key" not in text
    assert "AKIDSECRETISH" not in text
    assert "evidence" in text


@pytest.mark.parametrize(
    ("exc", "key", "expected"),
    [
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), None, "Cannot reach the S3 endpoint http://127.0.0.1:9"),
        (_client_error("NoSuchBucket", 404), None, "bucket 'evidence' does not exist"),
        (_client_error("404", 404), None, "bucket 'evidence' does not exist"),
        (_client_error("NoSuchKey", 404), "p/a.json", "object 'p/a.json' in bucket 'evidence' does not exist"),
        (_client_error("AccessDenied", 403), None, "Access denied to the bucket 'evidence'"),
        (_client_error("InvalidAccessKeyId", 403), "p/a", "Access denied to the object 'p/a'"),
        (_client_error("SlowDown", 503), None, "failed (SlowDown)"),
        (NoCredentialsError(), None, "No usable S3 credentials"),
    ],
)
def test_translate_error(exc: Exception, key: str | None, expected: str) -> None:
    err = translate_error(exc, LOC, key)
    assert isinstance(err, StellaOpsError)
    assert expected in str(err)
    assert "very-secret-key" not in str(err)
    assert "\n" not in str(err)


def test_translate_error_passes_stellaops_errors_through() -> None:
    original = StellaOpsError("already clear")
    assert translate_error(original, LOC) is original
