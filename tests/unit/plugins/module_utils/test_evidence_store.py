# SPDX-License-Identifier: GPL-3.0-or-later
"""The evidence directory store against hostile trees: links out of the store, special files, names that are not UTF-8."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.evidence.evidence import scan_store
from ansible_collections.stellaops.deploy.plugins.module_utils.evidence.store import DirectoryStore
from hostile import fifo, finishes, one_sentence


@pytest.fixture
def store(tmp_path: Path) -> DirectoryStore:
    root = tmp_path / "evidence"
    (root / "acme" / "sbom").mkdir(parents=True)
    (root / "acme" / "sbom" / "a.json").write_text('{"bundle": "a"}')
    (root / "acme" / "sbom" / "b.json").write_text('{"bundle": "b"}')
    return DirectoryStore(str(root))


def errors_of(store: DirectoryStore) -> dict[str, str]:
    scan = finishes(lambda: scan_store(store, workers=2), seconds=20)
    assert not isinstance(scan, BaseException), scan
    return {result.key: result.error for result in scan.unreadable}


def test_a_link_out_of_the_store_is_never_hashed(store: DirectoryStore, tmp_path: Path) -> None:
    outside = tmp_path / "hostname"
    outside.write_text("not evidence\n")
    Path(store.path, "acme", "sbom", "c.json").symlink_to(outside)
    Path(store.path, "acme", "escape").symlink_to(tmp_path)
    scan = finishes(lambda: scan_store(store, workers=2))
    assert [r.key for r in scan.results] == ["acme/sbom/a.json", "acme/sbom/b.json"]
    errors = {r.key: r.error for r in scan.unreadable}
    assert errors == {
        "acme/escape": f"acme/escape leads to {tmp_path}, outside the evidence directory; links must stay in the store",
        "acme/sbom/c.json": f"acme/sbom/c.json leads to {outside}, outside the evidence directory; links must stay in the store",
    }
    assert hashlib.sha256(outside.read_bytes()).hexdigest() not in {r.sha256 for r in scan.results}


def test_a_key_that_climbs_out_of_the_store_is_refused(store: DirectoryStore, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("x")
    one_sentence(finishes(lambda: store.sha256("../secret")), "../secret leads to", "outside the evidence directory")


def test_a_link_inside_the_store_is_the_file_it_names(store: DirectoryStore) -> None:
    Path(store.path, "acme", "latest.json").symlink_to(Path(store.path, "acme", "sbom", "b.json"))
    scan = finishes(lambda: scan_store(store, workers=2))
    hashes = {r.key: r.sha256 for r in scan.results}
    assert not scan.unreadable and hashes["acme/latest.json"] == hashes["acme/sbom/b.json"]


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_a_link_to_a_device_is_refused_at_once(store: DirectoryStore, target: str) -> None:
    Path(store.path, "acme", "sbom", "zero.json").symlink_to(target)
    assert errors_of(store) == {"acme/sbom/zero.json": f"acme/sbom/zero.json leads to {target}, outside the evidence directory; links must stay in the store"}


def test_special_files_in_the_store_are_refused_without_blocking(store: DirectoryStore) -> None:
    pipe = fifo(Path(store.path, "acme", "sbom", "pipe.json"))
    Path(store.path, "acme", "loop").symlink_to("loop")
    Path(store.path, "acme", "sub").symlink_to("sbom")
    errors = errors_of(store)
    assert errors["acme/sbom/pipe.json"] == f"{pipe}: bundle acme/sbom/pipe.json is a FIFO; expected a regular file"
    assert errors["acme/sub"].endswith("bundle acme/sub is a directory; expected a regular file")
    assert "acme/loop" in errors and set(errors) == {"acme/sbom/pipe.json", "acme/sub", "acme/loop"}


def test_a_name_that_is_not_utf8_is_one_sentence(store: DirectoryStore) -> None:
    Path(store.path, "acme", os.fsdecode(b"r\xe9sum\xe9.json")).write_text("{}")
    message = one_sentence(finishes(lambda: scan_store(store, workers=2)), f"The evidence directory {store.path} holds 'acme/r\\\\xe9sum\\\\xe9.json'")
    message.encode("utf-8")
    with pytest.raises(StellaOpsError, match="a name that is not UTF-8"):
        store.sha256(os.fsdecode(b"acme/r\xe9sum\xe9.json"))
