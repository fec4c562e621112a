# SPDX-License-Identifier: GPL-3.0-or-later
"""Compose state: the config-hash plan, running hashes, verification, problem summary, describe."""

from __future__ import annotations

from typing import Optional

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.state import (
    CONFIG_HASH_LABEL,
    RunningService,
    describe,
    plan_changes,
    running_hashes,
    summarize_problems,
    verify,
)
from hypothesis import given, settings
from hypothesis import strategies as st

REG = "127.0.0.1:5000/stellaops"
OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64
H1 = "1" * 64
H2 = "2" * 64


def image(service: str, digest: str = NEW) -> str:
    return f"{REG}/{service}@{digest}"


def container(
    service: str = "authority",
    *,
    config_hash: Optional[str] = H2,
    digest: str = NEW,
    state: str = "running",
    health: Optional[str] = "healthy",
    release: Optional[str] = "2025.10.0-stable",
    number: int = 1,
) -> RunningService:
    labels = {"stella.digest": digest}
    if config_hash is not None:
        labels[CONFIG_HASH_LABEL] = config_hash
    if release is not None:
        labels["stella.release.id"] = release
    return RunningService(
        service=service,
        container_id=f"{service[:6]}{number:06d}",
        state=state,
        health=health,
        image_id="sha256:" + digest[-12:],
        repo_digests=(image(service, digest),),
        labels=labels,
    )


# --------------------------------------------------------------------------- plan_changes


@pytest.mark.parametrize(
    ("containers", "bucket"),
    [
        ([], "create"),
        ([container(config_hash=H1)], "recreate"),
        ([container(config_hash=None)], "recreate"),  # a container Compose did not create (no config-hash label)
        ([container(config_hash=H2, number=1), container(config_hash=H1, number=2)], "recreate"),  # one replica differs
        ([container(state="exited")], "start"),
        ([container(state="running", number=1), container(state="created", number=2)], "start"),
        ([container()], "unchanged"),
        ([container(health="unhealthy")], "unchanged"),  # health is verify's business, not the plan's
    ],
)
def test_plan_puts_a_service_in_exactly_one_bucket(containers: list[RunningService], bucket: str) -> None:
    plan = plan_changes(containers, {"authority": H2})
    buckets = {name: getattr(plan, name) for name in ("create", "recreate", "start", "remove", "unchanged")}
    assert buckets == {name: (["authority"] if name == bucket else []) for name in buckets}
    assert plan.changes == ([] if bucket == "unchanged" else ["authority"])


def test_plan_removes_services_the_configuration_no_longer_has() -> None:
    plan = plan_changes([container("authority"), container("notify"), container("attestor")], {"authority": H2, "signer": H1})
    assert plan.as_dict() == {
        "create": ["signer"],
        "recreate": [],
        "start": [],
        "remove": ["attestor", "notify"],
        "unchanged": ["authority"],
        "changes": ["attestor", "notify", "signer"],
    }


def test_plan_hash_is_the_only_thing_compared() -> None:
    # the image digest is part of Compose's hash: a container on the old digest but with the wanted hash
    # cannot exist, so the plan does not second-guess the label
    assert plan_changes([container(digest=OLD, config_hash=H2)], {"authority": H2}).unchanged == ["authority"]
    assert plan_changes([container(digest=NEW, config_hash=H1)], {"authority": H2}).recreate == ["authority"]


services = st.sampled_from(["authority", "signer", "notify", "attestor", "scanner-web", "scheduler"])
hashes = st.sampled_from([H1, H2, "3" * 64])
running_containers = st.lists(
    st.builds(
        lambda service, config_hash, state, number: container(service, config_hash=config_hash, state=state, number=number),
        services,
        st.one_of(st.none(), hashes),
        st.sampled_from(["running", "exited", "restarting", "created"]),
        st.integers(1, 3),
    ),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(containers=running_containers, wanted=st.dictionaries(services, hashes, max_size=6))
def test_plan_partitions_services(containers: list[RunningService], wanted: dict[str, str]) -> None:
    plan = plan_changes(containers, wanted)
    present = {c.service for c in containers}
    kept = plan.create + plan.recreate + plan.start + plan.unchanged
    assert sorted(kept) == sorted(wanted)  # each wanted service lands in exactly one bucket
    assert plan.remove == sorted(present - set(wanted))
    assert set(plan.create) == set(wanted) - present
    assert plan.changes == sorted(plan.create + plan.recreate + plan.start + plan.remove)
    for name in plan.unchanged:
        mine = [c for c in containers if c.service == name]
        assert all(c.config_hash == wanted[name] and c.state == "running" for c in mine)
    for name in plan.recreate:
        assert any(c.config_hash != wanted[name] for c in containers if c.service == name)


@settings(max_examples=100, deadline=None)
@given(wanted=st.dictionaries(services, hashes, min_size=1, max_size=6))
def test_what_compose_brought_up_plans_nothing_and_verifies(wanted: dict[str, str]) -> None:
    containers = [container(name, config_hash=value) for name, value in wanted.items()]
    images = {name: image(name) for name in wanted}
    plan = plan_changes(containers, wanted)
    assert plan.changes == [] and plan.unchanged == sorted(wanted)
    assert verify(containers, wanted, images) == []
    assert running_hashes(containers) == wanted


# --------------------------------------------------------------------------- running_hashes


def test_running_hashes_per_service() -> None:
    containers = [
        container("authority", config_hash=H1, number=1),
        container("authority", config_hash=H1, number=2),
        container("signer", config_hash=H1, number=1),
        container("signer", config_hash=H2, number=2),  # replicas disagree
        container("notify", config_hash=None),  # not created by Compose
    ]
    assert running_hashes(containers) == {"authority": H1, "signer": None, "notify": None}
    assert running_hashes([]) == {}


# --------------------------------------------------------------------------- verify


def test_verify_reports_each_reason_with_expected_and_found() -> None:
    wanted = {"authority": H2, "signer": H2, "scheduler": H2, "attestor": H2, "scanner-web": H2, "concelier": H2}
    images = {name: image(name) for name in wanted}
    containers = [
        container("authority", digest=OLD),
        container("signer", config_hash=H1),
        container("scheduler", state="exited", health=None),
        container("attestor", health="unhealthy"),
        container("scanner-web", health="starting"),
        container("notify"),
    ]
    assert verify(containers, wanted, images) == [
        {"service": "attestor", "reason": "unhealthy", "expected": "healthy", "found": "unhealthy"},
        {"service": "authority", "reason": "digest_mismatch", "expected": image("authority"), "found": image("authority", OLD)},
        {"service": "concelier", "reason": "not_running", "expected": image("concelier"), "found": None},
        {"service": "scanner-web", "reason": "unhealthy", "expected": "healthy", "found": "starting"},
        {"service": "scheduler", "reason": "not_running", "expected": "running", "found": "exited"},
        {"service": "signer", "reason": "config_mismatch", "expected": H2, "found": H1},
        {"service": "notify", "reason": "unexpected_service", "expected": None, "found": "sha256:" + NEW[-12:]},
    ]


def test_verify_digest_mismatch_names_the_image_id_when_no_digest_of_that_repository_is_known() -> None:
    stray = RunningService(
        service="authority",
        container_id="abc",
        state="running",
        health=None,
        image_id="sha256:" + "f" * 64,
        repo_digests=("docker.io/library/busybox@" + OLD,),
        labels={CONFIG_HASH_LABEL: H2},
    )
    problems = verify([stray], {"authority": H2}, {"authority": image("authority")})
    assert problems == [{"service": "authority", "reason": "digest_mismatch", "expected": image("authority"), "found": "sha256:" + "f" * 64}]


def test_verify_without_a_locked_image_checks_hash_and_state_only() -> None:
    # a deployment record without images (an old one) is still verified by hash and state
    assert verify([container(digest=OLD)], {"authority": H2}, {}) == []
    assert [p["reason"] for p in verify([container(config_hash=H1)], {"authority": H2}, {})] == ["config_mismatch"]


def test_verify_checks_every_replica() -> None:
    containers = [container(number=1), container(number=2, health="unhealthy"), container(number=3, config_hash=H1)]
    reasons = [p["reason"] for p in verify(containers, {"authority": H2}, {"authority": image("authority")})]
    assert reasons == ["unhealthy", "config_mismatch"]


def test_summarize_problems_is_one_sentence() -> None:
    problems = [
        {"service": "authority", "reason": "digest_mismatch", "expected": "x@sha256:1", "found": "x@sha256:2"},
        {"service": "signer", "reason": "not_running", "expected": "running", "found": "exited"},
    ]
    assert summarize_problems("stellaops", problems) == (
        "Project stellaops does not run its deployment: authority: digest_mismatch (expected x@sha256:1, found x@sha256:2); "
        "signer: not_running (expected running, found exited)."
    )


# --------------------------------------------------------------------------- describe


def test_describe_one_release() -> None:
    state = describe([container("signer", config_hash=H1), container("authority", health=None)])
    assert state["running"] is True
    assert state["release_id"] == "2025.10.0-stable"
    assert state["mixed_releases"] is False
    assert state["unlabelled"] is False
    assert list(state["services"]) == ["authority", "signer"]
    assert state["services"]["authority"] == {
        "container_id": "author000001",
        "state": "running",
        "health": None,
        "image_id": "sha256:" + NEW[-12:],
        "repo_digests": [image("authority")],
        "release_id": "2025.10.0-stable",
        "digest": NEW,
        "config_hash": H2,
    }
    assert state["services"]["signer"]["config_hash"] == H1


def test_describe_mixed_unlabelled_and_stopped() -> None:
    mixed = describe([container("authority"), container("signer", release="2025.09.0-stable")])
    assert mixed["release_id"] is None and mixed["mixed_releases"] is True and mixed["unlabelled"] is False

    foreign = describe([container("authority", release=None, config_hash=None)])
    assert foreign["release_id"] is None and foreign["mixed_releases"] is False and foreign["unlabelled"] is True
    assert foreign["services"]["authority"]["config_hash"] is None

    partly = describe([container("authority"), container("signer", release=None)])
    assert partly["release_id"] is None and partly["mixed_releases"] is True and partly["unlabelled"] is True

    stopped = describe([container(state="exited"), container("signer", state="created")])
    assert stopped["running"] is False and stopped["release_id"] == "2025.10.0-stable"

    nothing = describe([])
    assert nothing == {"running": False, "release_id": None, "mixed_releases": False, "unlabelled": False, "services": {}}
