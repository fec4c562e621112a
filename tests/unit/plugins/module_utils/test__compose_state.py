# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils._compose_state import (
    ExpectedService,
    RunningService,
    describe,
    expected_from_lock,
    plan_changes,
    verify,
)

REPO = "127.0.0.1:5000/stellaops/authority"
OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64


def running(service="authority", digest=OLD, state="running", health="healthy", service_hash="h1", release="2025.09.0-stable"):
    return RunningService(
        service=service,
        container_id="c-" + service,
        state=state,
        health=health,
        image_id="sha256:" + digest[-8:],
        repo_digests=(f"{REPO}@{digest}",) if service == "authority" else (f"127.0.0.1:5000/stellaops/{service}@{digest}",),
        labels={"stella.release.id": release, "stella.service.hash": service_hash, "stella.digest": digest},
    )


def want(digest=NEW, service_hash="h2", service="authority"):
    return ExpectedService(image=f"127.0.0.1:5000/stellaops/{service}@{digest}", service_hash=service_hash)


@pytest.mark.parametrize(
    ("containers", "expected", "changes", "bucket"),
    [
        ([], {"authority": want()}, ["authority"], "create"),
        ([running()], {"authority": want()}, ["authority"], "recreate"),
        ([running(digest=NEW, service_hash="h1")], {"authority": want(service_hash="h2")}, ["authority"], "recreate"),
        ([running(digest=NEW, service_hash="h2", state="exited")], {"authority": want()}, ["authority"], "start"),
        ([running(digest=NEW, service_hash="h2")], {"authority": want()}, [], "unchanged"),
        ([running(digest=NEW, service_hash="h2"), running("notify")], {"authority": want()}, ["notify"], "remove"),
    ],
)
def test_plan(containers, expected, changes, bucket):
    plan = plan_changes(containers, expected)
    assert plan.changes == changes
    assert getattr(plan, bucket) == (changes or ["authority"])


def test_verify_reports_each_reason():
    containers = [
        running("authority", digest=OLD),
        running("signer", digest=NEW, health="unhealthy"),
        running("notify", digest=NEW),
    ]
    expected = {"authority": want(), "signer": want(service="signer"), "attestor": want(service="attestor")}
    reasons = {(p["service"], p["reason"]) for p in verify(containers, expected)}
    assert reasons == {
        ("authority", "digest_mismatch"),
        ("signer", "unhealthy"),
        ("attestor", "not_running"),
        ("notify", "unexpected_service"),
    }


def test_verify_clean_and_describe():
    containers = [running(digest=NEW, service_hash="h2", release="2025.10.0-stable")]
    assert verify(containers, {"authority": want()}) == []
    state = describe(containers)
    assert state["release_id"] == "2025.10.0-stable" and state["running"] and not state["mixed_releases"]
    mixed = describe([running(), running("notify", release="2025.10.0-stable")])
    assert mixed["release_id"] is None and mixed["mixed_releases"]


def test_expected_from_lock_reads_image_and_hash():
    lock = {"services": {"authority": {"image": f"{REPO}@{NEW}", "labels": {"stella.service.hash": "h2"}}}}
    assert expected_from_lock(lock) == {"authority": ExpectedService(image=f"{REPO}@{NEW}", service_hash="h2")}
