# SPDX-License-Identifier: GPL-3.0-or-later
"""Merkle tree hash of RFC 6962 (section 2.1), inclusion (audit) proofs and their verification.

Construction, exactly as RFC 6962 / RFC 9162:

* the hash of an empty list is ``SHA-256()`` of no input;
* a leaf hash is ``SHA-256(0x00 || data)``;
* an interior node is ``SHA-256(0x01 || left || right)``, where for ``n > 1``
  leaves the left subtree holds the first ``k`` leaves, ``k`` the largest power
  of two smaller than ``n``.

Evidence bundles become leaves through :func:`leaf_data`: the UTF-8 bytes of
``key + "\\x00" + sha256_hex`` (lower-case hex; evidence schema 2 appends ``"\\x00" + size``), and the leaves are ordered by
key (code-point order, which equals UTF-8 byte order). Anyone can recompute a
root with another implementation from a list of keys and digests.

The root is computed bottom up, level by level, carrying an unpaired last node
up unchanged; this gives the same tree as the recursive split above (tests pin
both against the certificate-transparency vectors).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence

from ..core.errors import StellaOpsError

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


# The evidence schemas whose leaves this module knows: 1 (key and digest), 2 (key, digest and size).
EVIDENCE_SCHEMAS = (1, 2)


def leaf_data(key: str, sha256_hex: str, schema: int = 1, size: int = 0) -> bytes:
    """The bytes of one evidence leaf: ``key NUL sha256-hex`` in UTF-8, and in schema 2 ``NUL size`` (decimal) after it."""
    data = key.encode("utf-8") + b"\x00" + sha256_hex.lower().encode("ascii")
    return data + b"\x00" + str(size).encode("ascii") if schema == 2 else data


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _levels(leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
    """All levels of the tree, leaves first; an unpaired last node moves up unchanged."""
    levels = [list(leaf_hashes)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        above = [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
        if len(below) % 2:
            above.append(below[-1])
        levels.append(above)
    return levels


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """Merkle tree hash of already hashed leaves."""
    if not leaf_hashes:
        return bytes.fromhex(EMPTY_ROOT)
    return _levels(leaf_hashes)[-1][0]


def merkle_root(leaves: Iterable[bytes]) -> str:
    """Merkle tree hash (hex) of the leaf data ``leaves`` in the given order."""
    return root_from_leaf_hashes([leaf_hash(d) for d in leaves]).hex()


def evidence_leaf_hashes(entries: Iterable[tuple[str, str]]) -> list[bytes]:
    """Leaf hashes of ``(key, sha256_hex)`` pairs, sorted by key."""
    return [leaf_hash(leaf_data(key, digest)) for key, digest in sorted(entries)]


def evidence_root(entries: Iterable[tuple[str, str]]) -> str:
    """Merkle root (hex) of evidence bundles given as ``(key, sha256_hex)`` pairs (any order)."""
    return root_from_leaf_hashes(evidence_leaf_hashes(entries)).hex()


def audit_path(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 6962 audit path (``PATH(m, D[n])``) of the leaf at ``index``, bottom up."""
    if not 0 <= index < len(leaf_hashes):
        raise StellaOpsError(f"Leaf index {index} is outside a tree of {len(leaf_hashes)} leaves.")
    path: list[bytes] = []
    position = index
    for level in _levels(leaf_hashes)[:-1]:
        sibling = position ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        position >>= 1
    return path


def root_from_path(leaf: bytes, index: int, tree_size: int, path: Sequence[bytes]) -> bytes:
    """Root implied by a leaf hash and its audit path (RFC 9162 section 2.1.3.2); raises on a malformed path."""
    if not 0 <= index < tree_size:
        raise StellaOpsError(f"Leaf index {index} is outside a tree of {tree_size} leaves.")
    fn, sn, result = index, tree_size - 1, leaf
    for sibling in path:
        if sn == 0:
            raise StellaOpsError("The audit path is longer than the tree allows.")
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise StellaOpsError("The audit path is shorter than the tree requires.")
    return result


def verify_inclusion(leaf: bytes, index: int, tree_size: int, path: Sequence[bytes], root: bytes) -> bool:
    """True when ``path`` proves the leaf hash ``leaf`` at ``index`` in the tree of ``tree_size`` with ``root``."""
    try:
        return root_from_path(leaf, index, tree_size, path) == root
    except StellaOpsError:
        return False


@dataclass(frozen=True)
class InclusionProof:
    """Proof that one bundle (key, sha256, and in evidence schema 2 its size) is leaf ``index`` of a tree of ``tree_size`` leaves with ``root``."""

    key: str
    sha256: str
    index: int
    tree_size: int
    path: tuple[str, ...]
    root: str
    schema: int = 1
    size: int = 0

    def as_dict(self) -> dict[str, object]:
        leaf = "utf8(key) || 0x00 || ascii(sha256_hex)" + (" || 0x00 || ascii(size)" if self.schema == 2 else "")
        # a proof in schema 1 is the same document as before evidence schemas
        schema_fields: dict[str, object] = {"evidence_schema": self.schema, "size": self.size} if self.schema != 1 else {}
        return {
            "algorithm": "rfc6962-sha256",
            "leaf_data": leaf,
            **schema_fields,
            "key": self.key,
            "sha256": self.sha256,
            "index": self.index,
            "tree_size": self.tree_size,
            "audit_path": list(self.path),
            "root": self.root,
        }

    def verify(self) -> bool:
        try:
            path = [bytes.fromhex(p) for p in self.path]
            root = bytes.fromhex(self.root)
        except ValueError:
            return False
        return verify_inclusion(leaf_hash(leaf_data(self.key, self.sha256, self.schema, self.size)), self.index, self.tree_size, path, root)


def prove(entries: Iterable[tuple[str, str]], key: str, schema: int = 1, sizes: Optional[Mapping[str, int]] = None) -> InclusionProof:
    """Inclusion proof of bundle ``key`` among ``(key, sha256_hex)`` entries (sorted by key here), in evidence ``schema``
    (schema 2's leaves hold each bundle's size, from ``sizes``)."""
    ordered = sorted(entries)
    index = next((i for i, (k, _digest) in enumerate(ordered) if k == key), -1)
    if index < 0:
        raise StellaOpsError(f"The bundle {key!r} is not in the baseline; expected one of its keys.")
    size_of = sizes or {}
    if schema == 2 and any(k not in size_of for k, _digest in ordered):
        raise StellaOpsError("An inclusion proof in evidence schema 2 needs the size of every bundle.")
    hashes = [leaf_hash(leaf_data(k, d, schema, size_of.get(k, 0))) for k, d in ordered]
    levels_root = root_from_leaf_hashes(hashes)
    return InclusionProof(
        key=key,
        sha256=ordered[index][1],
        index=index,
        tree_size=len(ordered),
        path=tuple(h.hex() for h in audit_path(hashes, index)),
        root=levels_root.hex(),
        schema=schema,
        size=size_of.get(key, 0) if schema == 2 else 0,
    )


def proof_from_dict(data: object, source: str = "the proof") -> InclusionProof:
    """Read a proof written by :meth:`InclusionProof.as_dict`; raise a clear error on a malformed one."""
    if not isinstance(data, dict):
        raise StellaOpsError(f"{source}: expected a JSON object with key, sha256, index, tree_size, audit_path and root.")
    try:
        path = data["audit_path"]
        if not isinstance(path, list) or not all(isinstance(p, str) for p in path):
            raise TypeError("audit_path")
        # hex in either case is the same hash (the audit path check reads it so): compared as text, it was a
        # failure that named two equal hashes
        schema = data.get("evidence_schema", 1)
        if schema not in EVIDENCE_SCHEMAS or isinstance(schema, bool):
            raise ValueError("evidence_schema")
        return InclusionProof(
            key=str(data["key"]),
            sha256=str(data["sha256"]).lower(),
            index=int(data["index"]),
            tree_size=int(data["tree_size"]),
            path=tuple(p.lower() for p in path),
            root=str(data["root"]).lower(),
            schema=schema,
            size=int(data["size"]) if schema == 2 else 0,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StellaOpsError(
            f"{source}: field {exc.args[0]!s} is missing or malformed; expected an evidence inclusion proof."
        ) from exc


__all__ = [
    "EMPTY_ROOT",
    "InclusionProof",
    "audit_path",
    "evidence_leaf_hashes",
    "evidence_root",
    "leaf_data",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "proof_from_dict",
    "prove",
    "root_from_leaf_hashes",
    "root_from_path",
    "verify_inclusion",
]
