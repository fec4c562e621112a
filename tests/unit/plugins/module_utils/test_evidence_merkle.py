# SPDX-License-Identifier: GPL-3.0-or-later
"""RFC 6962 Merkle tree: pinned vectors, proofs round-trip, tampered proofs rejected."""

from __future__ import annotations

import hashlib

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.evidence.merkle import (
    EMPTY_ROOT,
    InclusionProof,
    audit_path,
    evidence_root,
    leaf_data,
    leaf_hash,
    merkle_root,
    proof_from_dict,
    prove,
    root_from_leaf_hashes,
    verify_inclusion,
)

# The eight leaves of the certificate-transparency test suite (RFC 6962 reference code, merkle_tree_test).
CT_LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]
# Roots of the first n of those leaves, n = 1..8, as published with that test suite.
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# Audit path of leaf 0 in the 8-leaf tree, from the same suite.
CT_PATH_0_8 = [
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
]


def _reference_root(data: list[bytes]) -> bytes:
    """RFC 6962 section 2.1 written out literally, as an independent check of the bottom-up code."""
    if not data:
        return hashlib.sha256(b"").digest()
    if len(data) == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = 1
    while k * 2 < len(data):
        k *= 2
    return hashlib.sha256(b"\x01" + _reference_root(data[:k]) + _reference_root(data[k:])).digest()


def _reference_path(m: int, data: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962 section 2.1.1, literally."""
    if len(data) <= 1:
        return []
    k = 1
    while k * 2 < len(data):
        k *= 2
    if m < k:
        return [*_reference_path(m, data[:k]), _reference_root(data[k:])]
    return [*_reference_path(m - k, data[k:]), _reference_root(data[:k])]


def test_empty_tree() -> None:
    assert merkle_root([]) == EMPTY_ROOT == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert evidence_root([]) == EMPTY_ROOT


@pytest.mark.parametrize("n", range(1, 9))
def test_ct_vectors(n: int) -> None:
    assert merkle_root(CT_LEAVES[:n]) == CT_ROOTS[n - 1]
    assert _reference_root(CT_LEAVES[:n]).hex() == CT_ROOTS[n - 1]


def test_ct_audit_path_vector() -> None:
    hashes = [leaf_hash(d) for d in CT_LEAVES]
    assert [h.hex() for h in audit_path(hashes, 0)] == CT_PATH_0_8


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 9, 13, 16, 17, 31, 33, 100])
def test_bottom_up_equals_recursive_definition_and_paths_verify(n: int) -> None:
    data = [f"leaf-{i}".encode() for i in range(n)]
    hashes = [leaf_hash(d) for d in data]
    root = root_from_leaf_hashes(hashes)
    assert root == _reference_root(data)
    for m in range(n):
        path = audit_path(hashes, m)
        assert path == _reference_path(m, data)
        assert verify_inclusion(hashes[m], m, n, path, root)


def test_leaf_data_layout() -> None:
    assert leaf_data("evidence/acme/sbom/a.json", "AB" * 32) == b"evidence/acme/sbom/a.json\x00" + b"ab" * 32
    digest = hashlib.sha256(b"x").hexdigest()
    # Root of one bundle = SHA-256(0x00 || key || 0x00 || hex digest): recomputable with any tool.
    assert evidence_root([("k", digest)]) == hashlib.sha256(b"\x00k\x00" + digest.encode()).hexdigest()


def test_evidence_root_is_order_independent() -> None:
    entries = [(f"k{i:03d}", hashlib.sha256(str(i).encode()).hexdigest()) for i in range(10)]
    assert evidence_root(entries) == evidence_root(list(reversed(entries)))


def _entries(n: int) -> list[tuple[str, str]]:
    return [(f"evidence/t/k/{i:04d}.json", hashlib.sha256(str(i).encode()).hexdigest()) for i in range(n)]


def test_proof_round_trip() -> None:
    entries = _entries(11)
    for key, _digest in entries:
        proof = prove(entries, key)
        assert proof.root == evidence_root(entries)
        assert proof.verify()
        assert proof_from_dict(proof.as_dict()).verify()


@pytest.mark.parametrize(
    "change",
    [
        {"sha256": hashlib.sha256(b"other").hexdigest()},
        {"key": "evidence/t/k/9999.json"},
        {"index": 4},
        {"tree_size": 7},
        {"tree_size": 5},
        {"root": "00" * 32},
        {"path": ("00" * 32, "11" * 32, "22" * 32, "33" * 32)},
        {"path": ()},
        {"path": ("zz",)},
    ],
)
def test_tampered_proofs_are_rejected(change: dict[str, object]) -> None:
    entries = _entries(11)
    proof = prove(entries, entries[5][0])
    fields = {**proof.__dict__, **change}
    assert not InclusionProof(**fields).verify()  # type: ignore[arg-type]


def test_tree_size_is_bound_by_the_root_not_the_path() -> None:
    """An audit path alone does not fix the tree size (as in RFC 9162): verifiers compare root and size with the baseline."""
    entries = _entries(11)
    proof = prove(entries, entries[5][0])
    assert proof.tree_size == 11
    assert InclusionProof(**{**proof.__dict__, "tree_size": 12}).verify()


def test_tampered_path_element_rejected() -> None:
    entries = _entries(11)
    proof = prove(entries, entries[3][0])
    path = list(proof.path)
    path[1] = path[1][:-1] + ("0" if path[1][-1] != "0" else "1")
    assert not InclusionProof(**{**proof.__dict__, "path": tuple(path)}).verify()


def test_prove_unknown_key_and_malformed_proof() -> None:
    with pytest.raises(StellaOpsError, match="not in the baseline"):
        prove(_entries(3), "missing")
    with pytest.raises(StellaOpsError, match="field index is missing"):
        proof_from_dict({"key": "a", "sha256": "b", "tree_size": 1, "audit_path": [], "root": "c"})
    with pytest.raises(StellaOpsError, match="expected a JSON object"):
        proof_from_dict([1, 2])


def test_a_schema_2_proof_binds_the_size_and_round_trips() -> None:
    entries = _entries(7)
    sizes = {key: 100 + i for i, (key, _digest) in enumerate(entries)}
    proof = prove(entries, entries[2][0], schema=2, sizes=sizes)
    assert (proof.schema, proof.size) == (2, 102) and proof.root != prove(entries, entries[2][0]).root
    assert proof.verify() and proof_from_dict(proof.as_dict()).verify()
    assert proof.as_dict()["leaf_data"] == "utf8(key) || 0x00 || ascii(sha256_hex) || 0x00 || ascii(size)"
    assert not InclusionProof(**{**proof.__dict__, "size": 103}).verify()
    assert "evidence_schema" not in prove(entries, entries[2][0]).as_dict()  # a schema-1 proof is the document it was
    with pytest.raises(StellaOpsError, match="needs the size of every bundle"):
        prove(entries, entries[2][0], schema=2, sizes={entries[2][0]: 1})
    with pytest.raises(StellaOpsError, match="field evidence_schema is missing or malformed"):
        proof_from_dict({**proof.as_dict(), "evidence_schema": 3})
    with pytest.raises(StellaOpsError, match="field size is missing or malformed"):
        proof_from_dict({k: v for k, v in proof.as_dict().items() if k != "size"})
