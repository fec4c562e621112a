# SPDX-License-Identifier: GPL-3.0-or-later
"""Configuration backup before a Helm upgrade: what is saved, how a restore is planned, files of mode 0600.

Pure functions over plain dicts shaped like the Kubernetes API's objects; the round trip through
a real API client runs against the Kubernetes API emulator in tests/integration/test_helm_profile.py.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.kube.k8s_config import backup_file, kept, load, plan_restore, save


def obj(kind: str, name: str, data: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "stellaops", **extra.pop("metadata", {})}, "data": data, **extra}


def test_helm_release_records_tokens_and_the_root_ca_are_never_kept() -> None:
    assert not kept(obj("Secret", "sh.helm.release.v1.stellaops.v3", {"release": "x"}, type="helm.sh/release.v1"))
    assert not kept(obj("Secret", "default-token", {"token": "x"}, type="kubernetes.io/service-account-token"))
    assert not kept(obj("ConfigMap", "kube-root-ca.crt", {"ca.crt": "x"}))
    assert kept(obj("Secret", "stellaops-credentials", {"P": "eA=="}, type="Opaque"))


def test_restore_creates_missing_replaces_changed_and_leaves_equal_objects() -> None:
    saved = {"ConfigMap": [obj("ConfigMap", "a", {"k": "1"}), obj("ConfigMap", "b", {"k": "2"}), obj("ConfigMap", "c", {"k": "3"})]}
    live = {"ConfigMap": [
        obj("ConfigMap", "a", {"k": "1"}, metadata={"resourceVersion": "10", "uid": "u1"}),
        obj("ConfigMap", "b", {"k": "changed"}, metadata={"resourceVersion": "11", "uid": "u2"}),
        obj("ConfigMap", "extra", {"k": "4"}, metadata={"resourceVersion": "12"}),
    ]}
    steps = plan_restore(saved, live)
    assert [(s.name, s.action, s.resource_version) for s in steps] == [("a", "unchanged", None), ("b", "replace", "11"), ("c", "create", None)]


def test_a_label_change_alone_is_restored() -> None:
    saved = {"Secret": [obj("Secret", "s", {"P": "eA=="}, type="Opaque", metadata={"labels": {"tier": "a"}})]}
    live = {"Secret": [obj("Secret", "s", {"P": "eA=="}, type="Opaque", metadata={"labels": {"tier": "b"}, "resourceVersion": "3"})]}
    assert [s.action for s in plan_restore(saved, live)] == ["replace"]


def test_save_writes_private_files_once(tmp_path: Path) -> None:
    exported = {"ConfigMap": [obj("ConfigMap", "a", {"k": "1"})], "Secret": [obj("Secret", "s", {"P": "eA=="}, type="Opaque")]}
    directory = tmp_path / "backup"
    assert save(str(directory), "stellaops", exported, check_mode=True) == [backup_file(str(directory), "stellaops", k) for k in exported]
    assert not directory.exists()
    written = save(str(directory), "stellaops", exported, check_mode=False)
    assert len(written) == 2 and stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(Path(p).stat().st_mode) == 0o600 for p in written)
    assert save(str(directory), "stellaops", exported, check_mode=False) == []
    assert load(str(directory), "stellaops", ["Secret"]) == {"Secret": exported["Secret"]}


def test_restoring_from_a_directory_without_a_backup_is_one_sentence(tmp_path: Path) -> None:
    expected = (r"^No Secret backup of namespace stellaops at .*kubernetes-stellaops-secrets\.json; "
                r"expected a directory written by state=backup\. Nothing was changed\.$")
    with pytest.raises(StellaOpsError, match=expected):
        load(str(tmp_path), "stellaops", ["Secret"])
