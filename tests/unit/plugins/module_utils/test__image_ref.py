# SPDX-License-Identifier: GPL-3.0-or-later
"""Image references: repository, tag and digest, registry ports, malformed input, ignore lists."""

from __future__ import annotations

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils._errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils._image_ref import ImageRef, parse_image_ref, repo_matches

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("ref", "repository", "tag", "digest"),
    [
        (f"127.0.0.1:5000/stellaops/authority@{DIGEST}", "127.0.0.1:5000/stellaops/authority", None, DIGEST),
        ("127.0.0.1:5000/stellaops/authority:2025.10.0", "127.0.0.1:5000/stellaops/authority", "2025.10.0", None),
        (f"registry.stella-ops.org/stellaops/scanner-web:1.0@{DIGEST}", "registry.stella-ops.org/stellaops/scanner-web", "1.0", DIGEST),
        ("localhost:5000/authority", "localhost:5000/authority", None, None),
        ("nats:2.10.22-alpine", "nats", "2.10.22-alpine", None),
        ("docker.io/library/postgres", "docker.io/library/postgres", None, None),
        ("ghcr.io/a/b__c/d-e.f", "ghcr.io/a/b__c/d-e.f", None, None),
    ],
)
def test_parse_splits_repository_tag_and_digest(ref: str, repository: str, tag: str | None, digest: str | None) -> None:
    parsed = parse_image_ref(ref)
    assert parsed == ImageRef(repository, tag, digest)
    assert parsed.pinned is (digest is not None)
    assert str(parsed) == ref


def test_pinned_ref_drops_the_tag() -> None:
    parsed = parse_image_ref(f"127.0.0.1:5000/stellaops/authority:1.0@{DIGEST}")
    assert parsed.pinned_ref() == f"127.0.0.1:5000/stellaops/authority@{DIGEST}"


def test_pinned_ref_of_a_tag_only_reference_is_an_error() -> None:
    with pytest.raises(StellaOpsError, match="not pinned"):
        parse_image_ref("x/authority:1.0").pinned_ref()


@pytest.mark.parametrize(
    ("ref", "fragment"),
    [
        ("x/a@sha256:abc", "malformed digest 'sha256:abc'"),
        ("x/a@sha256:" + "A" * 64, "malformed digest"),
        ("x/a@md5:" + "a" * 32, "malformed digest"),
        ("x/a@" + DIGEST + "@" + DIGEST, "malformed digest"),
        ("x/a:", "malformed tag ''"),
        ("x/a:-bad", "malformed tag"),
        ("X/Authority:1", "malformed repository"),
        ("", "empty or contains whitespace"),
        ("x/a b", "empty or contains whitespace"),
        ("/x/a", "malformed repository"),
        ("x//a", "malformed repository"),
    ],
)
def test_malformed_references_name_the_field(ref: str, fragment: str) -> None:
    with pytest.raises(StellaOpsError) as info:
        parse_image_ref(ref, "f.yaml: release.components[0].image")
    assert str(info.value).startswith("f.yaml: release.components[0].image: ")
    assert fragment in str(info.value)


def test_non_string_reference_is_an_error() -> None:
    with pytest.raises(StellaOpsError, match="expected an image reference string, got int"):
        parse_image_ref(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("repository", "names", "expected"),
    [
        ("docker.io/library/nats", ["nats"], True),
        ("docker.io/library/nats", ["library/nats"], True),
        ("docker.io/library/nats", ["docker.io/library/nats"], True),
        ("nats", ["nats"], True),
        ("docker.io/library/notnats", ["nats"], False),
        ("docker.io/library/nats-streaming", ["nats"], False),
        ("docker.io/library/nats", [], False),
        ("docker.io/library/nats", [""], False),
    ],
)
def test_repo_matches_last_segments_or_whole(repository: str, names: list[str], expected: bool) -> None:
    assert repo_matches(repository, names) is expected
