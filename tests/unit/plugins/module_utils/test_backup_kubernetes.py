# SPDX-License-Identifier: GPL-3.0-or-later
"""ConfigMaps and Secrets of a namespace to 0600 files.

Not tested against a cluster (none can run here): the API is a stand-in holding objects built with the real
``kubernetes`` client model classes, serialised by the real ``ApiClient``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.backup.kubernetes import (
    export_namespace,
    read_private_json,
    summary,
    write_private_json,
)
from ansible_collections.stellaops.deploy.plugins.module_utils.backup.run import BackupRun
from ansible_collections.stellaops.deploy.plugins.module_utils.backup.sets import BackupSet, load_manifest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.core.runner import LocalModule
from hostile import fifo, finishes, one_sentence
from kubernetes import client

SECRET_VALUE = "c3VwZXItc2VjcmV0"  # base64 of "super-secret"


class StandInCoreV1:
    """Answers the two list calls with real client model objects; records the namespace asked for."""

    def __init__(self, fail: bool = False) -> None:
        self.api_client = client.ApiClient()
        self.fail = fail
        meta = client.V1ObjectMeta
        self.config_maps = [
            client.V1ConfigMap(metadata=meta(name="zeta", namespace="stellaops", resource_version="9", uid="u1"),
                               data={"LOG_LEVEL": "info"}),
            client.V1ConfigMap(metadata=meta(name="alpha", namespace="stellaops"), data={"a": "1"}),
        ]
        self.secrets = [client.V1Secret(metadata=meta(name="db", namespace="stellaops"), type="Opaque",
                                        data={"password": SECRET_VALUE})]

    def list_namespaced_config_map(self, namespace: str) -> Any:
        if self.fail:
            raise client.exceptions.ApiException(status=403, reason="Forbidden")
        return client.V1ConfigMapList(items=self.config_maps)

    def list_namespaced_secret(self, namespace: str) -> Any:
        return client.V1SecretList(items=self.secrets)


def test_export_strips_server_fields_and_sorts() -> None:
    exported = export_namespace(StandInCoreV1(), "stellaops", ["ConfigMap", "Secret"])
    names = [o["metadata"]["name"] for o in exported["ConfigMap"]]
    assert names == ["alpha", "zeta"]
    assert "resourceVersion" not in exported["ConfigMap"][1]["metadata"]
    assert exported["Secret"][0]["kind"] == "Secret" and exported["Secret"][0]["data"]["password"] == SECRET_VALUE
    assert summary(exported) == {"ConfigMap": {"count": 2, "names": ["alpha", "zeta"]}, "Secret": {"count": 1, "names": ["db"]}}


def test_forbidden_is_one_sentence() -> None:
    with pytest.raises(StellaOpsError, match=r"Cannot list ConfigMap objects in namespace 'stellaops': HTTP 403 Forbidden"):
        export_namespace(StandInCoreV1(fail=True), "stellaops", ["ConfigMap"])


def test_private_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    write_private_json(str(path), [{"a": 1}])
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_backup_run_writes_0600_files_and_no_value_in_manifest(tmp_path: Path) -> None:
    bset = BackupSet.create(str(tmp_path))
    BackupRun({"kubernetes": [{"namespace": "stellaops"}]}, LocalModule(), kube_api=lambda item: StandInCoreV1()).run(bset)
    path = bset.complete()
    manifest = load_manifest(path)
    assert [a["name"] for a in manifest["artifacts"]] == ["kubernetes-stellaops-configmaps.json", "kubernetes-stellaops-secrets.json"]
    for art in manifest["artifacts"]:
        assert os.stat(os.path.join(path, art["name"])).st_mode & 0o777 == 0o600
    assert SECRET_VALUE not in json.dumps(manifest)
    assert json.loads(Path(path, "kubernetes-stellaops-secrets.json").read_text())[0]["data"]["password"] == SECRET_VALUE


def test_a_fifo_as_a_configuration_file_is_refused_at_once(tmp_path: Path) -> None:
    path = fifo(tmp_path / "configmaps.json")
    one_sentence(finishes(lambda: read_private_json(str(path)), path), str(path), "is a FIFO; expected a regular file")
