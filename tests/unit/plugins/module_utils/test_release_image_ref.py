# SPDX-License-Identifier: GPL-3.0-or-later
"""Image references: repository, tag and digest, registry ports, malformed input, ignore lists."""

from __future__ import annotations

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.release.image_ref import (
    REPOSITORY_RE,
    ImageRef,
    normalize_repository,
    parse_image_ref,
    repo_matches,
)
from hypothesis import given
from hypothesis import strategies as st

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


@pytest.mark.parametrize(
    ("repository", "normalized"),
    [
        ("postgres", "docker.io/library/postgres"),
        ("library/postgres", "docker.io/library/postgres"),
        ("bitnami/postgresql", "docker.io/bitnami/postgresql"),
        ("docker.io/postgres", "docker.io/library/postgres"),
        ("index.docker.io/library/postgres", "docker.io/library/postgres"),
        ("registry-1.docker.io/bitnami/redis", "docker.io/bitnami/redis"),
        ("DOCKER.IO/library/postgres", "docker.io/library/postgres"),
        ("Registry.Example.COM/team/app", "registry.example.com/team/app"),
        ("registry.example.com:443/team/app", "registry.example.com/team/app"),
        ("registry.example.com:80/team/app", "registry.example.com/team/app"),
        ("registry.example.com:5000/team/app", "registry.example.com:5000/team/app"),
        ("127.0.0.1:5000/stellaops/authority", "127.0.0.1:5000/stellaops/authority"),
        ("localhost/app", "localhost/app"),
        ("localhost:5000/app", "localhost:5000/app"),
        ("ghcr.io/a/b", "ghcr.io/a/b"),
    ],
)
def test_normalize_repository_as_docker_does(repository: str, normalized: str) -> None:
    assert REPOSITORY_RE.fullmatch(repository)
    assert normalize_repository(repository) == normalized


_COMPONENT = st.from_regex(r"[a-z0-9]+(?:[._-][a-z0-9]+)?", fullmatch=True)


@given(path=st.lists(_COMPONENT, min_size=1, max_size=3).map("/".join),
       hub=st.sampled_from(["", "docker.io/", "index.docker.io/", "Docker.io/", "docker.io:443/", "registry-1.docker.io/"]))
def test_every_docker_hub_spelling_is_one_repository(path: str, hub: str) -> None:
    if "/" not in path and hub == "":
        spellings = [path, f"library/{path}"]
    else:
        spellings = [hub + path]
    first = path.split("/", maxsplit=1)[0]
    if hub == "" and "/" in path and ("." in first):
        return  # the first segment names a registry, not a Docker Hub path
    for spelling in spellings:
        name = normalize_repository(spelling)
        assert name.startswith("docker.io/") and name.count("/") >= 2
        assert normalize_repository(name) == name  # normalising twice changes nothing
