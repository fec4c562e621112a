# SPDX-License-Identifier: GPL-3.0-or-later
"""Channel alignment: target recognition, both Helm image forms, every reason, blocking policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.release.alignment import (
    BLOCKING_BY_DEFAULT,
    REASONS,
    check_alignment,
    is_compose,
    read_target,
)
from ansible_collections.stellaops.deploy.plugins.module_utils.release.manifest import Release, load_manifest, parse_manifest

ROOT = Path(__file__).resolve().parents[4]
REG = "registry.stella-ops.org/stellaops"
D_AUTH = "sha256:" + "a" * 64
D_SIGN = "sha256:" + "b" * 64
D_PG = "sha256:" + "c" * 64
D_OTHER = "sha256:" + "d" * 64

RELEASE_TEXT = f"""release:
  version: "2025.10.0"
  channel: stable
  components:
    - name: authority
      image: {REG}/authority@{D_AUTH}
    - name: signer
      image: {REG}/signer@{D_SIGN}
  infrastructure:
    postgres:
      image: docker.io/library/postgres@{D_PG}
"""


@pytest.fixture
def release() -> Release:
    return parse_manifest(RELEASE_TEXT, "deploy/releases/2025.10.0-stable.yaml")


def write(tmp_path: Path, name: str, data: Any) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return str(path)


def compose(**images: str) -> dict[str, Any]:
    return {"name": "stellaops", "services": {name: {"image": image, "restart": "always"} for name, image in images.items()}}


ALIGNED_COMPOSE = {
    "authority": f"{REG}/authority@{D_AUTH}",
    "signer": f"{REG}/signer:2025.10.0@{D_SIGN}",
    "postgres": f"docker.io/library/postgres@{D_PG}",
}


def reasons(report: Any) -> list[tuple[str | None, str]]:
    return [(f.service, f.reason) for f in report.findings]


def test_aligned_compose_has_no_findings(tmp_path: Path, release: Release) -> None:
    target = write(tmp_path, "docker-compose.prod.yaml", compose(**ALIGNED_COMPOSE))
    report = check_alignment(release, [target])
    assert report.aligned and report.findings == []
    assert [(t.kind, t.images) for t in report.targets] == [("compose", 3)]


def test_helm_string_and_mapping_forms_at_any_depth(tmp_path: Path, release: Release) -> None:
    values = {
        "global": {"imagePullPolicy": "IfNotPresent"},
        "authority": {"image": f"{REG}/authority@{D_AUTH}"},
        "workers": {
            "signer": {"deployment": {"image": {"repository": f"{REG}/signer", "tag": "2025.10.0", "digest": D_SIGN}}},
        },
        "sidecars": [{"name": "db", "image": {"registry": "docker.io", "repository": "library/postgres", "digest": D_PG}}],
    }
    target = write(tmp_path, "values-prod.yaml", values)
    images = read_target(target)
    assert images.kind == "helm"
    assert [(u.service, str(u.ref)) for u in images.uses] == [
        ("authority.image", f"{REG}/authority@{D_AUTH}"),
        ("workers.signer.deployment.image", f"{REG}/signer:2025.10.0@{D_SIGN}"),
        ("sidecars[0].image", f"docker.io/library/postgres@{D_PG}"),
    ]
    assert check_alignment(release, [target]).findings == []


def test_digest_mismatch_in_both_helm_forms(tmp_path: Path, release: Release) -> None:
    values = {
        "authority": {"image": f"{REG}/authority@{D_OTHER}"},
        "signer": {"image": {"repository": f"{REG}/signer", "digest": D_OTHER}},
        "postgres": {"image": f"docker.io/library/postgres@{D_PG}"},
    }
    report = check_alignment(release, [write(tmp_path, "values.yaml", values)])
    assert reasons(report) == [("authority.image", "digest_mismatch"), ("signer.image", "digest_mismatch")]
    first = report.findings[0].to_dict()
    assert first == {
        "target": str(tmp_path / "values.yaml"),
        "service": "authority.image",
        "component": "authority",
        "repository": f"{REG}/authority",
        "expected": f"{REG}/authority@{D_AUTH}",
        "found": f"{REG}/authority@{D_OTHER}",
        "reason": "digest_mismatch",
        "blocking": True,
    }
    assert not report.aligned


def test_unpinned_in_both_helm_forms_and_compose(tmp_path: Path, release: Release) -> None:
    values = {
        "authority": {"image": f"{REG}/authority:2025.10.0"},
        "signer": {"image": {"repository": f"{REG}/signer", "tag": 2025.1}},
        "postgres": {"image": f"docker.io/library/postgres@{D_PG}"},
    }
    helm = write(tmp_path, "values.yaml", values)
    comp = write(tmp_path, "compose.yaml", compose(**{**ALIGNED_COMPOSE, "authority": f"{REG}/authority"}))
    report = check_alignment(release, [helm, comp])
    assert reasons(report) == [("authority.image", "unpinned"), ("signer.image", "unpinned"), ("authority", "unpinned")]
    assert report.findings[1].found == f"{REG}/signer:2025.1"
    assert all(f.blocking for f in report.findings)


def test_missing_in_target_and_unknown_repository_are_reported_not_blocking(tmp_path: Path, release: Release) -> None:
    images = {"authority": ALIGNED_COMPOSE["authority"], "postgres": ALIGNED_COMPOSE["postgres"], "redis": "docker.io/library/redis:7"}
    target = write(tmp_path, "compose.yaml", compose(**images))
    report = check_alignment(release, [target])
    assert reasons(report) == [("redis", "unknown_repository"), (None, "missing_in_target")]
    missing = report.findings[1]
    assert (missing.component, missing.expected, missing.found) == ("signer", f"{REG}/signer@{D_SIGN}", None)
    assert report.aligned and not any(f.blocking for f in report.findings)
    strict = check_alignment(release, [target], strict=True)
    assert not strict.aligned and all(f.blocking for f in strict.findings)
    assert strict.to_dict()["blocking_reasons"] == sorted(REASONS)


def test_ignore_repos_skip_findings(tmp_path: Path, release: Release) -> None:
    images = {**ALIGNED_COMPOSE, "nats": "docker.io/library/nats:2.10.22-alpine"}
    target = write(tmp_path, "compose.yaml", compose(**images))
    assert reasons(check_alignment(release, [target])) == [("nats", "unknown_repository")]
    assert check_alignment(release, [target], ignore_repos=["nats"], strict=True).findings == []
    partial = write(tmp_path, "partial.yaml", compose(authority=ALIGNED_COMPOSE["authority"], signer=ALIGNED_COMPOSE["signer"]))
    assert check_alignment(release, [partial], ignore_repos=["library/postgres"], strict=True).aligned


def test_tag_only_release_compares_tags(tmp_path: Path) -> None:
    edge = parse_manifest(
        f'release: {{version: "2025.11.0", channel: edge, components: [{{name: authority, image: "{REG}/authority:2025.11.0"}}]}}',
        "edge.yaml",
    )
    same = write(tmp_path, "same.yaml", compose(authority=f"{REG}/authority:2025.11.0"))
    other = write(tmp_path, "other.yaml", compose(authority=f"{REG}/authority:2025.10.0"))
    assert check_alignment(edge, [same]).findings == []
    assert reasons(check_alignment(edge, [other])) == [("authority", "digest_mismatch")]


def test_compose_variables_with_defaults_resolve(tmp_path: Path, release: Release) -> None:
    images = {**ALIGNED_COMPOSE, "authority": "${REGISTRY:-registry.stella-ops.org}/stellaops/authority@" + D_AUTH}
    assert check_alignment(release, [write(tmp_path, "c.yaml", compose(**images))]).findings == []
    images["authority"] = "${REGISTRY}/stellaops/authority@" + D_AUTH
    with pytest.raises(StellaOpsError, match=r"services\.authority\.image: .* uses the variable REGISTRY without a default"):
        check_alignment(release, [write(tmp_path, "c.yaml", compose(**images))])


def test_recognition_by_content() -> None:
    assert is_compose({"services": {"a": {"image": "x"}}, "volumes": {}, "x-release": {}})
    assert not is_compose({"services": {"a": {"image": "x"}}, "global": {}})
    assert not is_compose({"services": {"a": "x"}})
    assert not is_compose({"image": "x"})


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("services:\n  a:\n    image: [1]\n", "services.a.image must be a string"),
        ("a:\n  image: X/Bad\n", "a.image: image reference 'X/Bad' has a malformed repository"),
        ("a:\n  image: {repository: x/a, digest: 'sha256:12'}\n", "a.image: image reference 'x/a@sha256:12' has a malformed digest"),
        ("a:\n  image: {repository: x/a, tag: [1]}\n", "a.image.tag must be a string"),
        ("- 1\n", "the document must be a mapping"),
        ("a: [b\n", "YAML syntax error at line 2, column 1"),
    ],
)
def test_malformed_targets_name_file_and_field(tmp_path: Path, release: Release, content: str, fragment: str) -> None:
    target = write(tmp_path, "t.yaml", content)
    with pytest.raises(StellaOpsError) as info:
        check_alignment(release, [target])
    assert str(info.value).startswith(f"{target}: ")
    assert fragment in str(info.value)
    assert info.value.details["kind"] == "invalid"


def test_missing_target_and_no_target(tmp_path: Path, release: Release) -> None:
    with pytest.raises(StellaOpsError, match="alignment target not found") as info:
        check_alignment(release, [str(tmp_path / "nope.yaml")])
    assert info.value.details["kind"] == "unreadable"
    with pytest.raises(StellaOpsError, match="No alignment target"):
        check_alignment(release, [])


def test_report_dict_is_json_with_summary(tmp_path: Path, release: Release) -> None:
    target = write(tmp_path, "c.yaml", compose(authority=f"{REG}/authority@{D_OTHER}", redis="redis:7"))
    data = check_alignment(release, [target]).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["summary"] == {
        "digest_mismatch": 1,
        "unpinned": 0,
        "tag_mismatch": 0,
        "repository_mismatch": 0,
        "missing_in_target": 2,
        "unknown_repository": 1,
    }
    assert data["aligned"] is False and data["blocking_reasons"] == sorted(BLOCKING_BY_DEFAULT)
    assert data["msg"].startswith("Release 2025.10.0-stable is not aligned: 1 blocking finding(s) in 1 target(s)")


ENVIRONMENTS = [("dev", "2025.10.0-edge"), ("stage", "2025.09.2-stable"), ("prod", "2025.09.2-stable"), ("airgap", "2025.09.2-airgap")]


@pytest.mark.parametrize(("env", "release_id"), ENVIRONMENTS)
def test_example_deploy_tree_is_aligned_strictly(env: str, release_id: str) -> None:
    release = load_manifest(str(ROOT / "deploy" / "releases" / f"{release_id}.yaml"), strict=True)
    targets = [str(ROOT / "deploy" / "helm" / "stellaops" / f"values-{env}.yaml"), str(ROOT / "deploy" / "compose" / f"docker-compose.{env}.yaml")]
    report = check_alignment(release, targets, ignore_repos=["nats"], strict=True)
    assert report.findings == [], report.message()
    assert [t.kind for t in report.targets] == ["helm", "compose"]
    assert all(t.images == len(release.images()) + 1 for t in report.targets)  # + nats
    unignored = check_alignment(release, targets)
    assert reasons(unignored) == [("nats.image", "unknown_repository"), ("nats", "unknown_repository")]


def test_example_tree_detects_cross_channel_drift() -> None:
    stable = load_manifest(str(ROOT / "deploy" / "releases" / "2025.09.2-stable.yaml"))
    report = check_alignment(stable, [str(ROOT / "deploy" / "compose" / "docker-compose.dev.yaml")], ignore_repos=["nats"])
    assert not report.aligned
    assert {f.reason for f in report.findings} == {"digest_mismatch"}
    assert len(report.findings) == len(stable.images())


@pytest.mark.parametrize(
    "spelling",
    [
        "postgres",
        "library/postgres",
        "docker.io/postgres",
        "index.docker.io/library/postgres",
        "registry-1.docker.io/library/postgres",
        "Docker.IO/library/postgres",
        "docker.io:443/library/postgres",
    ],
)
def test_repositories_are_compared_as_docker_resolves_them(tmp_path: Path, release: Release, spelling: str) -> None:
    """Issue 10, class 2: the release pins docker.io/library/postgres; a target spelling it otherwise is the same image."""
    other = write(tmp_path, "other.yaml", compose(**{**ALIGNED_COMPOSE, "postgres": f"{spelling}@{D_OTHER}"}))
    report = check_alignment(release, [other])
    assert reasons(report) == [("postgres", "digest_mismatch")] and not report.aligned
    assert report.findings[0].repository == "docker.io/library/postgres"
    same = write(tmp_path, "same.yaml", compose(**{**ALIGNED_COMPOSE, "postgres": f"{spelling}@{D_PG}"}))
    assert check_alignment(release, [same], strict=True).findings == []


@pytest.mark.parametrize("spelling", ["Registry.Stella-Ops.org/stellaops/authority", "registry.stella-ops.org:443/stellaops/authority"])
def test_registry_host_case_and_default_port_do_not_hide_a_digest(tmp_path: Path, release: Release, spelling: str) -> None:
    target = write(tmp_path, "c.yaml", compose(**{**ALIGNED_COMPOSE, "authority": f"{spelling}@{D_OTHER}"}))
    assert reasons(check_alignment(release, [target])) == [("authority", "digest_mismatch")]


def test_other_registry_or_port_is_another_repository(tmp_path: Path, release: Release) -> None:
    target = write(tmp_path, "c.yaml", compose(**{**ALIGNED_COMPOSE, "authority": f"registry.stella-ops.org:5000/stellaops/authority@{D_AUTH}"}))
    # the release's authority from another repository: the component moved, which blocks
    report = check_alignment(release, [target])
    assert reasons(report) == [("authority", "repository_mismatch")] and not report.aligned
    assert report.findings[0].repository == "registry.stella-ops.org:5000/stellaops/authority"


def test_tag_next_to_the_right_digest_must_agree_with_the_release(tmp_path: Path) -> None:
    tagged = parse_manifest(RELEASE_TEXT.replace(f"{REG}/signer@", f"{REG}/signer:2025.10.0@"), "deploy/releases/2025.10.0-stable.yaml")
    lying = write(tmp_path, "c.yaml", compose(**{**ALIGNED_COMPOSE, "signer": f"{REG}/signer:2025.09.2@{D_SIGN}"}))
    report = check_alignment(tagged, [lying])
    assert reasons(report) == [("signer", "tag_mismatch")] and not report.aligned
    assert report.findings[0].found == f"{REG}/signer:2025.09.2@{D_SIGN}"
    honest = write(tmp_path, "ok.yaml", compose(**{**ALIGNED_COMPOSE, "signer": f"{REG}/signer:2025.10.0@{D_SIGN}"}))
    bare = write(tmp_path, "bare.yaml", compose(**{**ALIGNED_COMPOSE, "signer": f"{REG}/signer@{D_SIGN}"}))
    assert check_alignment(tagged, [honest, bare], strict=True).findings == []


def test_ignore_names_match_after_normalisation(tmp_path: Path, release: Release) -> None:
    target = write(tmp_path, "c.yaml", compose(**ALIGNED_COMPOSE, nats="nats:2.10"))
    for name in ("nats", "library/nats", "docker.io/nats", "index.docker.io/library/nats"):
        assert check_alignment(release, [target], ignore_repos=[name], strict=True).findings == [], name


MOVED = "ghcr.io/stella-ops/authority"  # the release's authority, moved to another registry


@pytest.mark.parametrize(
    ("name", "content", "service"),
    [
        ("compose.yaml", compose(**ALIGNED_COMPOSE), "authority"),  # the compose service is the component
        ("values.yaml", {"global": {}, "services": {"authority": {"image": {"repository": f"{REG}/authority", "digest": D_AUTH}}}}, "services.authority.image"),
        ("values.yaml", {"auth": {"deployment": {"image": f"{REG}/authority@{D_AUTH}"}}}, "auth.deployment.image"),  # by the repository's name
    ],
)
def test_component_moved_to_another_repository_is_misaligned(tmp_path: Path, name: str, content: Any, service: str) -> None:
    moved = parse_manifest(RELEASE_TEXT.replace(f"{REG}/authority@", f"{MOVED}@"), "deploy/releases/2025.10.0-stable.yaml")
    report = check_alignment(moved, [write(tmp_path, name, content)])
    [finding] = [f for f in report.findings if f.component == "authority"]
    assert finding.to_dict() == {
        "target": str(tmp_path / name),
        "service": service,
        "component": "authority",
        "repository": f"{REG}/authority",
        "expected": f"{MOVED}@{D_AUTH}",
        "found": f"{REG}/authority@{D_AUTH}",
        "reason": "repository_mismatch",
        "blocking": True,
    }
    assert not report.aligned
    assert f"repository_mismatch (expected {MOVED}@{D_AUTH}, found {REG}/authority@{D_AUTH})" in report.message()
    # the old repository, or the new one, ignored: nothing to compare, as before
    assert check_alignment(moved, [write(tmp_path, name, content)], ignore_repos=[f"{REG}/authority"]).aligned
    assert check_alignment(moved, [write(tmp_path, name, content)], ignore_repos=[MOVED]).aligned
